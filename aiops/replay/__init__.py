"""Resilience replay: what the system should have done during an incident, against what it did.

``data`` (inputs, CSV loaders), ``model`` (expected behaviour), ``zones``
(deviation zones, cascade, SLA breaches), ``core`` (``run_replay``),
``narrative`` (facts and the deterministic writer), ``plots`` (PNG),
``source`` (inputs from the store), ``report`` (entry points for the API and
the CLI), ``api``, ``cli``, ``feature``. The seeded incident with ground truth
is ``aiops.testing.replay_sample``; its CSV files are ``samples/``.
"""
from aiops.replay.core import ReplayConfig, ReplayResult, run_replay
from aiops.replay.data import IncidentMeta, InsufficientHistory, ReplayInputError, Series

__all__ = ["ReplayConfig", "ReplayResult", "run_replay", "IncidentMeta", "InsufficientHistory",
           "ReplayInputError", "Series"]
