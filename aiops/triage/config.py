"""Settings of alert triage: dedup and correlation windows, the classifier, service tiers,
runbooks, routing and the deploys a brief names."""
from __future__ import annotations

from aiops.triage.classify import get_classifier
from aiops.triage.enrich import DEFAULT_RUNBOOKS_DIR
from telemetry.config import ConfigKey, as_bool, as_mapping, as_number, as_optional_str


def _as_classifier(raw) -> str:
    get_classifier(str(raw))
    return str(raw)


TRIAGE_CONFIG = (
    ConfigKey("AIOPS_ALERT_DEDUP_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
              "The same alert repeating within this long of its last sighting is counted, not stored again."),
    ConfigKey("AIOPS_ALERT_STALE_S", 86400.0, as_number(0.0, min_exclusive=True), "seconds",
              "A firing alert not seen again for this long expires (no resolve ever came); a group whose alerts "
              "are all resolved or expired resolves. Alertmanager re-sends firing alerts every repeat_interval."),
    ConfigKey("AIOPS_ALERT_CORRELATION_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
              "A related alert joins a group when it fires within this long of the group's first alert."),
    ConfigKey("AIOPS_ALERT_CLASSIFIER", "rules", _as_classifier, "name",
              "Alert classifier: rules (status, severity, patterns, tier, burn rate) or severity (label only)."),
    ConfigKey("AIOPS_SERVICE_TIERS", "", as_mapping(as_number(1, 3, integer=True), "service=tier, tier 1-3"),
              "service=tier list", "Service tiers, e.g. payment-gateway=1,search=3; tier 1 escalates outages."),
    ConfigKey("AIOPS_RUNBOOKS_DIR", DEFAULT_RUNBOOKS_DIR, as_optional_str, "folder",
              "Markdown runbooks searched with TF-IDF for every alert group; default: the shipped runbooks/."),
    ConfigKey("AIOPS_ALERT_ROUTING_FILE", None, as_optional_str, "file path",
              "JSON (or YAML) routing table labels -> team; default: the shipped runbooks/routing.json."),
    ConfigKey("AIOPS_DEPLOY_LOOKBACK_S", 7200.0, as_number(0.0, min_exclusive=True), "seconds",
              "A deploy this long before a group's first alert is named in its brief."),
    ConfigKey("AIOPS_ALERTS_FROM_INCIDENTS", True, as_bool, "bool",
              "Turn the analysis engine's opened/escalated/resolved incidents into alerts."),
)
