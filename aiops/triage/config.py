"""Settings of alert triage: dedup and correlation windows and the classifier (``TriageConfig``
declares those), service tiers, runbooks, routing and the deploys a brief names."""
from __future__ import annotations

from aiops.triage.correlate import TriageConfig
from aiops.triage.enrich import DEFAULT_RUNBOOKS_DIR
from telemetry.config import ConfigKey, as_bool, as_mapping, as_number, as_optional_str, config_keys, from_settings

TRIAGE_CONFIG = (
    *config_keys(TriageConfig),
    ConfigKey("AIOPS_ALERT_STALE_S", 86400.0, as_number(0.0, min_exclusive=True), "seconds",
              "A firing alert not seen again for this long expires (its source never sent a resolve); a group whose "
              "alerts are all resolved or expired resolves. Checked after each analysis pass, at most once a "
              "minute. Alertmanager re-sends firing alerts every `repeat_interval`."),
    ConfigKey("AIOPS_SERVICE_TIERS", "", as_mapping(as_number(1, 3, integer=True), "service=tier, tier 1-3"),
              "service=tier list", "Service tiers 1-3, e.g. `payment-gateway=1,search=3`; tier 1 escalates outages."),
    ConfigKey("AIOPS_RUNBOOKS_DIR", DEFAULT_RUNBOOKS_DIR, as_optional_str, "folder",
              "Markdown runbooks searched with TF-IDF for every alert group.",
              shown_default="the shipped `aiops/triage/runbooks/`"),
    ConfigKey("AIOPS_ALERT_ROUTING_FILE", None, as_optional_str, "file path",
              "JSON (or YAML with PyYAML installed) routing table labels → team.",
              shown_default="the shipped `aiops/triage/runbooks/routing.json`"),
    ConfigKey("AIOPS_DEPLOY_LOOKBACK_S", 7200.0, as_number(0.0, min_exclusive=True), "seconds",
              "A deploy this long before a group's first alert is named in its brief."),
    ConfigKey("AIOPS_ALERTS_FROM_INCIDENTS", True, as_bool, "bool",
              "Turn the analysis engine's opened, escalated and resolved incidents into alerts."),
)


def triage_config(settings: dict) -> TriageConfig:
    """``TriageConfig`` from ``read_config(app, TRIAGE_CONFIG)`` (a key absent keeps its default)."""
    return from_settings(TriageConfig, settings)
