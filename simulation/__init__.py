"""Chaos fault injection and incident scenarios."""
from simulation.chaos import Chaos, InjectedFault

__all__ = ["Chaos", "InjectedFault"]
