"""The analysis: spans -> per-route series, baselines, detectors, root-cause analysis, incidents, the pass
(``engine``), early passes, its API and ``aiops incidents``/``analyze``. Declared in ``feature.py``."""
