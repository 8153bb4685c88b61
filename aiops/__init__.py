"""Analysis for Flask apps: baselines, detectors, root-cause analysis, incidents and the features on them.

``from aiops import AIOps; AIOps(app)`` on an app with ``Telemetry``. Importing
a module of a feature (``aiops.analysis.series``, say) loads only what it
needs: the extension is imported on first use of ``aiops.AIOps``.
"""
from __future__ import annotations

__all__ = ["AIOps"]


def __getattr__(name: str):
    if name == "AIOps":
        from aiops.extension import AIOps
        return AIOps
    raise AttributeError(f"module 'aiops' has no attribute {name!r}")
