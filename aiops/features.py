"""The registered features, in the order ``AIOps.init_app`` builds them.

Adding a feature means adding its folder (with a ``feature.py`` declaring a
``aiops.registry.Feature``) and one line here.
"""
from __future__ import annotations

from aiops.advisors.feature import FEATURE as ADVISORS
from aiops.analysis.feature import FEATURE as ANALYSIS
from aiops.dashboard.feature import FEATURE as DASHBOARD
from aiops.documents.feature import FEATURE as DOCUMENTS
from aiops.metrics.feature import FEATURE as METRICS
from aiops.registry import Feature
from aiops.replay.feature import FEATURE as REPLAY
from aiops.slo.feature import FEATURE as SLO
from aiops.triage.feature import FEATURE as TRIAGE

FEATURES: tuple[Feature, ...] = (ANALYSIS, METRICS, SLO, TRIAGE, ADVISORS, REPLAY, DOCUMENTS, DASHBOARD)


def enabled(settings: dict) -> list[Feature]:
    """The features ``settings`` leave on (a feature with an ``enabled_key`` set false is left out)."""
    return [f for f in FEATURES if f.enabled_key is None or settings.get(f.enabled_key, True)]


def all_endpoints() -> list[str]:
    """Every endpoint the features register (``"METHOD /path"``), for the 404 answer, the demo
    banner and the docs test."""
    return [line for feature in FEATURES for line in feature.endpoints]


def all_commands() -> dict:
    """Every ``aiops`` subcommand: name -> (add_arguments, run, help)."""
    commands: dict = {}
    for feature in FEATURES:
        for name, command in feature.commands.items():
            if name in commands:
                raise ValueError(f"two features define the command {name!r}")
            commands[name] = command
    return commands
