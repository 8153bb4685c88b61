"""Alert intake: every source's alert as one validated ``Alert``. Pure functions.

Sources: Alertmanager's webhook (version 4), the generic RawAlert
(``POST /aiops/alerts``), the analysis' incidents and SLO burn-rate alerts
(both arrive as plain dicts on the context's events). A parser validates the
whole payload before it returns anything and raises ``PayloadError`` naming
the first wrong field and what is valid, so nothing of a rejected payload is
stored. Times are epoch seconds (float).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from telemetry.errors import PayloadError
from telemetry.timefmt import parse_time_field

ALERT_STATUSES = ("firing", "resolved")
#: Monitor severities a RawAlert may carry (case-insensitive), and the priority each implies on its own.
SEVERITY_PRIORITY = {"critical": "P2", "page": "P2", "error": "P2", "high": "P2", "warning": "P3", "warn": "P3",
                     "medium": "P3", "low": "P4", "info": "P4", "informational": "P4", "none": "P4"}
#: Alertmanager writes this for "no end time".
_ZERO_TIME = "0001-01-01T00:00:00Z"
#: Label names that name the service, in order of preference (Alertmanager alerts carry no service field).
SERVICE_LABELS = ("service", "service_name", "app", "application", "job", "container", "deployment")


@dataclass
class Alert:
    """One alert as received, whatever its source (validated)."""

    alert_name: str
    service: str
    severity: str
    message: str
    at: float                      #: when it fired (or resolved), epoch seconds
    status: str = "firing"
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    value: float | None = None
    fingerprint: str | None = None
    source: str = "api"            #: alertmanager, api, aiops, slo
    generator_url: str | None = None
    ends_at: float | None = None

    @property
    def label_key(self) -> str:
        """Identity when there is no fingerprint: alert_name, service and the label set."""
        labels = {k: v for k, v in self.labels.items() if k not in ("severity",)}
        text = json.dumps([self.alert_name, self.service, sorted(labels.items())], separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def namespace(self) -> str | None:
        return self.labels.get("namespace")


def _obj(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _str_map(value, field: str) -> dict:
    if value is None:
        return {}
    value = _obj(value, field)
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise PayloadError(f"{field}.{k}", f"label values must be strings (or numbers), got {v!r}")
        out[str(k)] = str(v)
    return out


def _text(value, field: str, required: bool = True, max_len: int = 2000) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PayloadError(field, "is required and must be a non-empty string" if required
                           else "must be a string")
    return value.strip()[:max_len]


def _severity(value, field: str) -> str:
    raw = _text(value, field)
    if raw.lower() not in SEVERITY_PRIORITY:
        raise PayloadError(field, f"unknown severity {raw!r}; valid: {', '.join(SEVERITY_PRIORITY)}")
    return raw.lower()


def _status(value, field: str) -> str:
    if value is None:
        return "firing"
    if value not in ALERT_STATUSES:
        raise PayloadError(field, f"must be one of {', '.join(ALERT_STATUSES)}, got {value!r}")
    return value


def service_of(labels: dict) -> str | None:
    for name in SERVICE_LABELS:
        if labels.get(name):
            return labels[name]
    return None


def parse_raw_alert(obj, now_s: float, field: str = "alert", source: str = "api") -> Alert:
    """The generic RawAlert: alert_name, service, severity, message, timestamp, labels, value
    (plus optional status, fingerprint, annotations). ``timestamp`` defaults to now."""
    obj = _obj(obj, field)
    known = {"alert_name", "service", "severity", "message", "timestamp", "labels", "value", "status",
             "fingerprint", "annotations"}
    unknown = sorted(set(obj) - known)
    if unknown:
        raise PayloadError(f"{field}.{unknown[0]}", f"unknown field; valid fields: {', '.join(sorted(known))}")
    value = obj.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise PayloadError(f"{field}.value", f"must be a finite number or null, got {value!r}")
    fingerprint = obj.get("fingerprint")
    if fingerprint is not None:
        fingerprint = _text(fingerprint, f"{field}.fingerprint", max_len=200)
    return Alert(
        alert_name=_text(obj.get("alert_name"), f"{field}.alert_name", max_len=200),
        service=_text(obj.get("service"), f"{field}.service", max_len=200),
        severity=_severity(obj.get("severity"), f"{field}.severity"),
        message=_text(obj.get("message"), f"{field}.message", required=False),
        at=parse_time_field(obj["timestamp"], f"{field}.timestamp") if obj.get("timestamp") is not None else now_s,
        status=_status(obj.get("status"), f"{field}.status"),
        labels=_str_map(obj.get("labels"), f"{field}.labels"),
        annotations=_str_map(obj.get("annotations"), f"{field}.annotations"),
        value=float(value) if value is not None else None,
        fingerprint=fingerprint, source=source)


def parse_raw_alerts(body, now_s: float, source: str = "api") -> list[Alert]:
    """One RawAlert object or a non-empty list of them (at most 1000)."""
    if isinstance(body, list):
        if not body:
            raise PayloadError("body", "an empty list; send one alert object or a list of 1 to 1000")
        if len(body) > 1000:
            raise PayloadError("body", f"at most 1000 alerts per request, got {len(body)}")
        return [parse_raw_alert(item, now_s, f"[{i}]", source) for i, item in enumerate(body)]
    if isinstance(body, dict):
        return [parse_raw_alert(body, now_s, "alert", source)]
    raise PayloadError("body", "must be a JSON alert object or a list of them")


def parse_alertmanager(payload, now_s: float) -> list[Alert]:
    """Alertmanager's webhook payload, version 4 -> alerts (all validated before any is returned)."""
    payload = _obj(payload, "body")
    version = payload.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError("version", f"only Alertmanager webhook version 4 is supported, got {version!r}")
    if "status" in payload:
        _status(payload["status"], "status")
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        if name in payload:
            _str_map(payload[name], name)
    common = _str_map(payload.get("commonLabels"), "commonLabels")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError("alerts", "must be a non-empty list of alerts (each with status, labels, annotations, "
                                     "startsAt, endsAt, generatorURL, fingerprint)")
    out = []
    for i, raw in enumerate(alerts):
        where = f"alerts[{i}]"
        raw = _obj(raw, where)
        status = raw.get("status")
        if status not in ALERT_STATUSES:
            raise PayloadError(f"{where}.status", f"must be one of {', '.join(ALERT_STATUSES)}, got {status!r}")
        labels = _str_map(raw.get("labels"), f"{where}.labels")
        annotations = _str_map(raw.get("annotations"), f"{where}.annotations")
        name = labels.get("alertname")
        if not name:
            raise PayloadError(f"{where}.labels.alertname", "every Alertmanager alert needs an alertname label")
        if "startsAt" not in raw:
            raise PayloadError(f"{where}.startsAt", "is required (ISO 8601 time the alert started firing)")
        starts = parse_time_field(raw["startsAt"], f"{where}.startsAt")
        ends_raw = raw.get("endsAt")
        ends = None
        if ends_raw and not str(ends_raw).startswith("0001-01-01"):
            ends = parse_time_field(ends_raw, f"{where}.endsAt")
        fingerprint = raw.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise PayloadError(f"{where}.fingerprint", f"must be a string, got {fingerprint!r}")
        generator = raw.get("generatorURL")
        if generator is not None and not isinstance(generator, str):
            raise PayloadError(f"{where}.generatorURL", f"must be a string, got {generator!r}")
        severity = labels.get("severity", common.get("severity", "warning")).lower()
        if severity not in SEVERITY_PRIORITY:
            severity = "warning"
        value = None
        for key in ("value", "current_value"):
            try:
                value = float(annotations[key]) if key in annotations else value
            except ValueError:
                pass
        at = ends if status == "resolved" and ends is not None else starts
        out.append(Alert(
            alert_name=name, service=service_of(labels) or labels.get("namespace") or "unknown",
            severity=severity,
            message=annotations.get("summary") or annotations.get("description") or annotations.get("message", ""),
            at=at, status=status, labels={k: v for k, v in labels.items() if k != "alertname"},
            annotations=annotations, value=value, fingerprint=fingerprint or None, source="alertmanager",
            generator_url=generator or None, ends_at=ends))
    return out


def alerts_from_incident(event: str, incident: dict, now_s: float) -> list[Alert]:
    """The analysis engine's incident (``Incident.to_json``) -> one alert per anomaly.

    ``event`` is the engine's notify event: opened/escalated fire, resolved resolves.
    """
    severity = {"critical": "critical", "high": "critical", "medium": "warning"}
    out = []
    for a in incident.get("anomalies", []):
        kind = a.get("type", "anomaly")
        name = "AIOps" + "".join(part.capitalize() for part in kind.split("_"))
        endpoint = str(a.get("endpoint", ""))
        out.append(Alert(
            alert_name=name, service=str(a.get("service", "unknown")),
            severity=severity.get(a.get("severity"), "warning"),
            message=str(a.get("description", ""))[:2000], at=now_s,
            status="resolved" if event == "resolved" else "firing",
            labels={"route": endpoint, "incident_id": str(incident.get("id")), "anomaly_type": kind,
                    "source": "aiops"},
            value=a.get("error_ratio") if kind == "error_spike" else a.get("current_ms"),
            fingerprint=f"aiops:{incident.get('id')}:{kind}:{a.get('service')}:{endpoint}", source="aiops"))
    return out


def alerts_from_slo_alert(event: str, alert: dict, now_s: float) -> list[Alert]:
    """An SLO burn-rate alert (``aiops.slo_engine.alert_json``) -> one alert.

    ``event`` is the SLO engine's notify event: opened/escalated fire,
    resolved resolves, anything else (acknowledged) enters nothing. The burn
    rate travels in the ``burn_rate`` label, which the rules use for priority.
    """
    if event not in ("opened", "escalated", "resolved"):
        return []
    burn = alert.get("long_burn_rate")
    labels = {"slo": str(alert.get("slo_name")), "rule": str(alert.get("rule")), "source": "slo",
              "route": str(alert.get("route") or "")}
    if isinstance(burn, (int, float)):
        labels["burn_rate"] = f"{burn:g}"
    return [Alert(
        alert_name="SLOErrorBudgetBurn", service=str(alert.get("service", "unknown")),
        severity="critical" if alert.get("severity") == "page" else "warning",
        message=str(alert.get("reason") or alert.get("title") or "")[:2000], at=now_s,
        status="resolved" if event == "resolved" else "firing", labels=labels,
        value=float(burn) if isinstance(burn, (int, float)) else None,
        fingerprint=f"slo:{alert.get('id')}", source="slo")]
