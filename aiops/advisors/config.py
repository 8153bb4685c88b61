"""Settings of the advisors: peak hours for change risk, capacity limits and the target utilisation
(``AdvisorConfig`` declares that one)."""
from __future__ import annotations

from aiops.advisors.capacity import AdvisorConfig
from telemetry.config import ConfigKey, as_mapping, as_number, config_keys, from_settings


def _as_hours(raw) -> tuple[int, int]:
    text = str(raw)
    try:
        start, end = (int(x) for x in text.split("-"))
    except ValueError:
        raise ValueError("must be START-END local hours, e.g. 9-17") from None
    if not 0 <= start < end <= 24:
        raise ValueError("must be START-END local hours with 0 <= START < END <= 24, e.g. 9-17")
    return start, end


ADVISORS_CONFIG = (
    ConfigKey("AIOPS_CHANGE_PEAK_HOURS", "9-17", _as_hours, "local hours",
              "Peak traffic hours START-END in the deploy's local time; deploying then adds risk."),
    ConfigKey("AIOPS_CAPACITY_LIMITS_RPS", "", as_mapping(as_number(0.0, min_exclusive=True), "service=rps"),
              "service=req/s list", "Highest sustainable request rate per service, for `GET /aiops/capacity`."),
    *config_keys(AdvisorConfig),
)


def advisor_config(settings: dict) -> AdvisorConfig:
    """``AdvisorConfig`` from ``read_config(app, ADVISORS_CONFIG)`` (a key absent keeps its default)."""
    return from_settings(AdvisorConfig, settings)
