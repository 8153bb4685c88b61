"""Chaos fault injection and incident scenarios.

``from simulation import Chaos`` imports the chaos extension (and Flask) on
first use only, so that the scenario, generator and analysis modules stay
free of Flask.
"""
from __future__ import annotations

__all__ = ["Chaos", "InjectedFault"]


def __getattr__(name: str):
    if name in __all__:
        from simulation import chaos
        return getattr(chaos, name)
    raise AttributeError(f"module 'simulation' has no attribute {name!r}")
