"""Analysis: baselines, detectors, root-cause analysis and incidents.

``from aiops import AIOps; AIOps(app)`` on an app with ``Telemetry``.
"""
from aiops.extension import AIOps

__all__ = ["AIOps"]
