"""Analysis: baselines, detectors, root-cause analysis and incidents."""
