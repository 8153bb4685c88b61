"""AIOPS_REPLAY_* settings (read once by ``AIOps.init_app``; the CLI reads the environment).

Declared once: the store replay's own settings are ``ReplaySettings`` fields, the
model's are ``ModelConfig`` fields (``aiops.replay.model``); ``REPLAY_CONFIG`` lists both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from aiops.replay.core import ReplayConfig
from aiops.replay.model import ModelConfig
from telemetry.config import as_number, config_keys, from_settings, setting


@dataclass(frozen=True)
class ReplaySettings:
    """What a replay from the store needs: its history, margin and grid, and the model's settings."""

    history_s: float = setting(
        "AIOPS_REPLAY_HISTORY_S", 3 * 86400.0, as_number(3600.0, 31 * 86400.0), "seconds",
        "History before the replay window read from the store to train the models (3 days; spans are rolled up "
        "per step an hour at a time).")
    margin_s: float = setting(
        "AIOPS_REPLAY_MARGIN_S", 1800.0, as_number(0.0, 86400.0), "seconds",
        "Time replayed before and after a stored incident (CSV replays: half the incident, 15 min to 2 h).")
    step_s: float = setting("AIOPS_REPLAY_STEP_S", 60.0, as_number(1.0, 3600.0), "seconds",
                            "Grid step of store replays (CSV replays use the data's median spacing).")
    model: ModelConfig = field(default_factory=ModelConfig)

    def replay_config(self, store: bool = True) -> ReplayConfig:
        """The ReplayConfig of these settings (``store``: use the store's step and margin; else the
        CSV replay's, from the data)."""
        if store:
            return ReplayConfig(step_s=self.step_s, margin_s=self.margin_s, model=self.model)
        return ReplayConfig(model=self.model)


#: Every AIOPS_REPLAY_* key: the model's, then the store replay's.
REPLAY_CONFIG = (*config_keys(ModelConfig), *config_keys(ReplaySettings))


def replay_settings(settings: dict) -> ReplaySettings:
    """``ReplaySettings`` from ``read_config(app, REPLAY_CONFIG)`` (a key absent keeps its default)."""
    return from_settings(ReplaySettings, settings, model=from_settings(ModelConfig, settings))


def replay_config(settings: dict, store: bool = True) -> ReplayConfig:
    """The ReplayConfig of these settings (``store``: use the store's step and margin)."""
    return replay_settings(settings).replay_config(store)
