"""Resilience replay: what the system should have done during an incident, against what it did.

``data`` (inputs, CSV loaders), ``model`` (expected behaviour), ``zones``
(deviation zones, cascade, SLA breaches), ``core`` (``run_replay``),
``narrative`` (facts and the deterministic writer), ``plots`` (PNG),
``source`` (inputs from the analysis store), ``sample`` (seeded incident with
ground truth), ``report`` (entry points for the API and the CLI).
"""
from aiops.replay.core import ReplayConfig, ReplayResult, run_replay
from aiops.replay.data import IncidentMeta, InsufficientHistory, ReplayInputError, Series

__all__ = ["ReplayConfig", "ReplayResult", "run_replay", "IncidentMeta", "InsufficientHistory",
           "ReplayInputError", "Series"]
