"""The SLO part's settings, declared once: ``SLOSettings`` fields are their config keys.

``SLO_CONFIG`` (read once by ``AIOps.init_app``; ``aiops slo`` reads the
environment) is the settings' keys plus the two that are not engine
parameters: the definitions file and ``GET /metrics``.
"""
from __future__ import annotations

from dataclasses import dataclass

from telemetry.config import ConfigKey, as_bool, as_number, as_optional_str, config_keys, from_settings, setting


@dataclass
class SLOSettings:
    """What the SLO engine needs to know, typed (defaults are the keys' defaults)."""

    min_requests: int = setting("AIOPS_SLO_MIN_REQUESTS", 100, as_number(1, integer=True), "requests",
                                "Requests an alert's long window needs before it may page or open a ticket.")
    min_bad_events: int = setting("AIOPS_SLO_MIN_BAD_EVENTS", 5, as_number(1, integer=True), "requests",
                                  "Bad requests an alert's long window needs before it may page or open a ticket.")
    alert_cooldown_s: float = setting(
        "AIOPS_SLO_ALERT_COOLDOWN_S", 3600.0, as_number(0.0), "seconds",
        "A resolved SLO alert whose condition returns within this time reopens without a new page.")
    history_interval_s: float = setting(
        "AIOPS_SLO_HISTORY_INTERVAL_S", 60.0, as_number(1.0), "seconds",
        "Least time between two stored burn snapshots of one SLO (forecast and heatmap data).")
    retention_days: float = setting(
        "AIOPS_SLO_RETENTION_DAYS", 35.0, as_number(1.0), "days",
        "Per-minute and hourly counts and burn history older than this are deleted (keep it above your longest "
        "SLO window).")
    forecast_lookback_h: float = setting("AIOPS_FORECAST_LOOKBACK_HOURS", 24.0, as_number(0.0, min_exclusive=True),
                                         "hours", "Burn history the exhaustion forecast fits its line to.")
    max_override_h: float = setting("AIOPS_RELEASE_MAX_OVERRIDE_HOURS", 72.0, as_number(0.0, min_exclusive=True),
                                    "hours", "Longest expiry a release-gate override may ask for.")

    @classmethod
    def from_config(cls, settings: dict) -> "SLOSettings":
        """From what ``read_config(app, SLO_CONFIG)`` returned."""
        return from_settings(cls, settings)


SLO_CONFIG = (
    ConfigKey("AIOPS_SLO_FILE", None, as_optional_str, "file path",
              "YAML (`.yaml`/`.yml`) or JSON file of services and SLOs, loaded at start-up and upserted by name; an "
              "invalid one raises `ValueError` naming the field (`slos[2].target`)."),
    *config_keys(SLOSettings),
    ConfigKey("AIOPS_METRICS_ENABLED", True, as_bool, "bool",
              "Serve `GET /metrics` (Prometheus text format, computed from the shared store at scrape time)."),
)
