"""AIOPS_REPLAY_* settings (read once by ``AIOps.init_app``; the CLI reads the environment)."""
from __future__ import annotations

from aiops.replay.core import ReplayConfig
from aiops.replay.model import FORECASTERS, ModelConfig
from telemetry.config import ConfigKey, as_number


def _method(raw) -> str:
    if not isinstance(raw, str) or raw.strip() not in FORECASTERS:
        raise ValueError(f"must be one of: {', '.join(FORECASTERS)}")
    return raw.strip()


REPLAY_CONFIG = (
    ConfigKey("AIOPS_REPLAY_METHOD", "gradient_boosting", _method, "name",
              "Expected-behaviour model: gradient_boosting, or the seasonal_quantile baseline."),
    ConfigKey("AIOPS_REPLAY_HISTORY_S", 3 * 86400.0, as_number(3600.0, 31 * 86400.0), "seconds",
              "History before the replay window that trains the expected-behaviour models (store replays)."),
    ConfigKey("AIOPS_REPLAY_MARGIN_S", 1800.0, as_number(0.0, 86400.0), "seconds",
              "Time replayed before and after an incident from the store."),
    ConfigKey("AIOPS_REPLAY_STEP_S", 60.0, as_number(1.0, 3600.0), "seconds",
              "Bucket of the replay's time grid for store replays (spans are rolled up per bucket)."),
    ConfigKey("AIOPS_REPLAY_COVERAGE", 0.95, as_number(0.5, 0.999), "ratio",
              "Nominal coverage of the expected band (0.95: 95 % of normal values fall inside)."),
    ConfigKey("AIOPS_REPLAY_MIN_HISTORY_POINTS", 180, as_number(120, integer=True), "grid points",
              "History a metric needs before it is modelled (180 = 3 h at 60 s steps)."),
)


def replay_config(settings: dict, store: bool = True) -> ReplayConfig:
    """The ReplayConfig of these settings (``store``: use the store's step and margin)."""
    model = ModelConfig(coverage=settings["AIOPS_REPLAY_COVERAGE"], method=settings["AIOPS_REPLAY_METHOD"],
                        min_history_points=int(settings["AIOPS_REPLAY_MIN_HISTORY_POINTS"]))
    if store:
        return ReplayConfig(step_s=settings["AIOPS_REPLAY_STEP_S"], margin_s=settings["AIOPS_REPLAY_MARGIN_S"],
                            model=model)
    return ReplayConfig(model=model)
