"""Alert triage: intake validation, dedup, classification, correlation. Pure functions.

Times are epoch seconds (float). Nothing here touches Flask or SQLite: the
store (``aiops/triage_store.py``) loads the open alerts and groups, ``triage``
folds a validated batch into them and returns what changed, and the store
writes it back in one transaction.

Pipeline for every incoming ``Alert`` (oldest first):

1. **Dedup.** The same alert (equal fingerprint, or equal alert_name, service
   and label set) seen again within ``dedup_window_s`` (default 300 s) of its
   last sighting bumps ``count`` and ``last_seen`` of the open record. A
   resolved alert closes its open counterpart.
2. **Classify.** A registered classifier (``CLASSIFIERS``) gives priority
   P1-P4, category, users affected and confidence, each with its reasons. An
   optional ``refine(facts) -> dict`` hook (a configured model, see llm.features) may change
   the result; its answer is validated against ``CLASSIFICATION_SCHEMA`` and
   it can never lower a P1 that the rules found.
3. **Correlate.** A new alert joins the best open group whose first alert is
   within ``correlation_window_s`` (default 300 s): a known co-occurrence on the same
   service, then the same service, then a caller/callee edge of the trace
   dependency graph, then the same namespace. Otherwise it opens a group.
   Every decision carries its reason.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

PRIORITIES = ("P1", "P2", "P3", "P4")
CATEGORIES = ("outage", "degradation", "resource_pressure", "configuration", "security", "info")
USERS_AFFECTED = ("none", "few", "many", "all")
ALERT_STATUSES = ("firing", "resolved")
#: Monitor severities a RawAlert may carry (case-insensitive), and the priority each implies on its own.
SEVERITY_PRIORITY = {"critical": "P2", "page": "P2", "error": "P2", "high": "P2", "warning": "P3", "warn": "P3",
                     "medium": "P3", "low": "P4", "info": "P4", "informational": "P4", "none": "P4"}
#: Alertmanager writes this for "no end time".
_ZERO_TIME = "0001-01-01T00:00:00Z"
#: Label names that name the service, in order of preference (Alertmanager alerts carry no service field).
SERVICE_LABELS = ("service", "service_name", "app", "application", "job", "container", "deployment")

#: JSON schema an LLM refinement must satisfy (``structured`` output of the LLM layer).
CLASSIFICATION_SCHEMA = {
    "type": "object",
    "properties": {
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "users_affected": {"type": "string", "enum": list(USERS_AFFECTED)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
    },
    "required": ["priority", "category", "users_affected", "confidence"],
    "additionalProperties": False,
}


class PayloadError(ValueError):
    """A rejected payload: ``field`` is the JSON path, the message says what is valid."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# -- time ------------------------------------------------------------------------

def iso(epoch_s: float | None) -> str | None:
    """ISO 8601 UTC (seconds precision, ``Z``), or None."""
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text, field: str) -> float:
    """ISO 8601 (``Z`` or an offset; naive means UTC) or epoch seconds -> epoch seconds."""
    if isinstance(text, bool):
        raise PayloadError(field, "must be an ISO 8601 time such as 2024-10-15T14:23:00Z or epoch seconds")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise PayloadError(field, f"epoch seconds must be a finite number >= 0, got {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise PayloadError(field, f"must be an ISO 8601 time such as 2024-10-15T14:23:00Z, got {text!r}")
    raw = text.strip()
    # Alertmanager sends nanoseconds; Python parses at most microseconds.
    raw = re.sub(r"(\.\d{6})\d+", r"\1", raw)
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(field, f"must be an ISO 8601 time such as 2024-10-15T14:23:00Z, got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


# -- the alert -----------------------------------------------------------------------

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
        at=parse_time(obj["timestamp"], f"{field}.timestamp") if obj.get("timestamp") is not None else now_s,
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
        starts = parse_time(raw["startsAt"], f"{where}.startsAt")
        ends_raw = raw.get("endsAt")
        ends = None
        if ends_raw and not str(ends_raw).startswith("0001-01-01"):
            ends = parse_time(ends_raw, f"{where}.endsAt")
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


# -- classification ----------------------------------------------------------------------

@dataclass
class Pattern:
    """A known alert pattern: a regex over alert_name and message."""

    name: str
    regex: str
    category: str
    priority: str
    family: str            #: co-occurrence family name
    standalone: bool = False  #: a slow-burning condition that never shares a root cause by proximity


#: Known patterns, first match wins. Priorities are what the pattern means on its own.
PATTERNS = (
    Pattern("watchdog", r"watchdog|heartbeat|infoinhibitor|deadmansswitch", "info", "P4", "meta", True),
    Pattern("certificate", r"cert|tls|ssl|x509", "security", "P3", "certificate", True),
    Pattern("security", r"unauthori[sz]ed|forbidden|auth.?fail|brute|intrusion|cve|vulnerab|suspicious",
            "security", "P2", "security"),
    Pattern("service_down", r"instancedown|targetdown|hostdown|servicedown|endpointdown|\bdown\b|unavailable|"
                            r"unreachable|outage|no.?healthy|health.?check.?fail", "outage", "P1", "availability"),
    Pattern("oom", r"oom|outofmemory|out of memory", "resource_pressure", "P2", "crash"),
    Pattern("crashloop", r"crashloop|backoff|podrestart|restarting|container.?restart", "outage", "P2", "crash"),
    Pattern("slo_burn", r"burn.?rate|error.?budget|slo", "degradation", "P2", "errors"),
    Pattern("errors", r"error.?rate|errors?high|5xx|http.?errors|error.?spike|failure.?rate|errorspike",
            "degradation", "P2", "errors"),
    Pattern("timeout", r"timeout|timed.?out|deadline", "degradation", "P2", "latency"),
    Pattern("latency", r"latency|slow|p9\d|response.?time", "degradation", "P3", "latency"),
    Pattern("traffic", r"traffic|surge|drop|requests?.?rate", "degradation", "P3", "traffic"),
    Pattern("saturation", r"cpu|memory|mem.?high|disk|filesystem|inode|throttl|saturat|pressure|"
                          r"connections|pool.?exhaust|queue", "resource_pressure", "P3", "saturation"),
    Pattern("configuration", r"config|misconfig|reload|flag|replicas.?mismatch|version.?mismatch",
            "configuration", "P3", "configuration"),
)
_COMPILED = tuple((p, re.compile(p.regex, re.IGNORECASE)) for p in PATTERNS)

#: Alert families that are known to share one root cause when they hit one service together.
CO_OCCURRENCES = (
    ("crash", "errors", "latency", "availability"),    # OOMKilled + CrashLoopBackOff + HighErrorRate (+ latency)
    ("saturation", "latency", "errors", "crash"),      # saturation slows, then fails, then restarts
    ("latency", "errors", "traffic"),                  # a surge slows and fails a service
)


def match_pattern(alert: Alert) -> Pattern | None:
    text = f"{alert.alert_name} {alert.labels.get('reason', '')} {alert.message}"
    # the name decides first; the message only when the name says nothing
    for pattern, regex in _COMPILED:
        if regex.search(alert.alert_name) or regex.search(alert.labels.get("reason", "")):
            return pattern
    for pattern, regex in _COMPILED:
        if regex.search(text):
            return pattern
    return None


@dataclass
class Classification:
    priority: str
    category: str
    users_affected: str
    confidence: float
    reasons: list[str] = field(default_factory=list)
    source: str = "rules"           #: rules, or refined when a refine hook changed it
    pattern: str | None = None
    family: str | None = None
    standalone: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassifyContext:
    """What the rules know beyond the alert: ``tiers`` service -> 1 (most critical) .. 3."""

    tiers: dict = field(default_factory=dict)
    default_tier: int = 2


def _more_urgent(a: str, b: str) -> str:
    return min(a, b, key=PRIORITIES.index)


def _bump(priority: str) -> str:
    return PRIORITIES[max(0, PRIORITIES.index(priority) - 1)]


def burn_rate_of(alert: Alert) -> float | None:
    """SLO burn rate from a ``burn_rate`` label/annotation, or the value of a burn-rate alert."""
    for source in (alert.labels, alert.annotations):
        if "burn_rate" in source:
            try:
                return float(source["burn_rate"])
            except ValueError:
                return None
    if re.search(r"burn.?rate", alert.alert_name, re.IGNORECASE) and alert.value is not None:
        return alert.value
    return None


def classify_rules(alert: Alert, ctx: ClassifyContext) -> Classification:
    """Deterministic rules: status, severity label, known pattern, service tier, SLO burn rate."""
    reasons = []
    pattern = match_pattern(alert)
    if alert.status == "resolved":
        return Classification("P4", pattern.category if pattern else "info", "none", 0.95,
                              ["resolved: no action needed"], pattern=pattern.name if pattern else None,
                              family=pattern.family if pattern else None,
                              standalone=pattern.standalone if pattern else False)
    by_severity = SEVERITY_PRIORITY[alert.severity]
    reasons.append(f"severity {alert.severity} -> {by_severity}")
    priority = by_severity
    confidence = 0.55
    category = "degradation" if by_severity in ("P1", "P2") else "info" if by_severity == "P4" else "degradation"
    if pattern is not None:
        category = pattern.category
        confidence += 0.2
        if pattern.standalone:
            # slow-burning conditions: the pattern decides, a loud severity label cannot make them a page
            priority = pattern.priority if by_severity != "P4" else "P4"
            reasons.append(f"matches known pattern {pattern.name} ({category}, {pattern.priority}): not urgent "
                           f"by itself")
        else:
            if PRIORITIES.index(pattern.priority) < PRIORITIES.index(priority) and (
                    pattern.priority != "P1" or by_severity in ("P1", "P2")):
                priority = pattern.priority
            elif pattern.priority == "P1" and by_severity not in ("P1", "P2"):
                priority = _more_urgent(priority, "P2")
            reasons.append(f"matches known pattern {pattern.name} ({category}, {pattern.priority} by itself)")
    else:
        reasons.append("no known pattern matched")
    tier = ctx.tiers.get(alert.service, ctx.default_tier)
    if alert.service in ctx.tiers:
        confidence += 0.1
    if tier == 1 and category in ("outage", "degradation") and by_severity in ("P1", "P2") \
            and not (pattern and pattern.standalone):
        bumped = _bump(priority)
        if bumped != priority:
            reasons.append(f"{alert.service} is a tier-1 service: {priority} -> {bumped}")
            priority = bumped
    elif tier >= 3 and priority in ("P1", "P2") and category != "outage":
        reasons.append(f"{alert.service} is a tier-{tier} service: {priority} -> P3")
        priority = "P3"
    burn = burn_rate_of(alert)
    if burn is not None:
        confidence += 0.1
        by_burn = "P1" if burn >= 14.4 else "P2" if burn >= 6 else "P3" if burn >= 1 else "P4"
        reasons.append(f"SLO burn rate {burn:g}x -> {by_burn} (14.4x pages as P1, 6x as P2)")
        priority = _more_urgent(priority, by_burn) if by_burn != "P4" else priority
    if category == "outage":
        users = "all" if tier == 1 or priority == "P1" else "many"
    elif category == "degradation":
        users = "many" if priority in ("P1", "P2") else "few"
    elif category == "resource_pressure":
        users = "few" if priority in ("P1", "P2") else "none"
    else:
        users = "none"
    return Classification(priority, category, users, round(min(confidence, 0.95), 2), reasons,
                          pattern=pattern.name if pattern else None, family=pattern.family if pattern else None,
                          standalone=bool(pattern and pattern.standalone))


def classify_severity_only(alert: Alert, ctx: ClassifyContext) -> Classification:
    """The naive peer: the monitor's severity label alone."""
    priority = SEVERITY_PRIORITY[alert.severity] if alert.status == "firing" else "P4"
    return Classification(priority, "info" if priority == "P4" else "degradation", "none", 0.5,
                          [f"severity {alert.severity} -> {priority}"])


#: Classifier registry: name -> function(alert, ctx) -> Classification.
CLASSIFIERS: dict[str, Callable[[Alert, ClassifyContext], Classification]] = {
    "rules": classify_rules, "severity": classify_severity_only}


def get_classifier(name: str):
    try:
        return CLASSIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown alert classifier {name!r}; valid: {', '.join(sorted(CLASSIFIERS))}") from None


def validate_refinement(data) -> dict:
    """Check a refinement against ``CLASSIFICATION_SCHEMA``; raises ValueError naming the field."""
    if not isinstance(data, dict):
        raise ValueError("refinement must be a JSON object")
    extra = set(data) - set(CLASSIFICATION_SCHEMA["properties"])
    if extra:
        raise ValueError(f"unknown field {sorted(extra)[0]!r}")
    for name, allowed in (("priority", PRIORITIES), ("category", CATEGORIES), ("users_affected", USERS_AFFECTED)):
        if data.get(name) not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {data.get(name)!r}")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise ValueError(f"confidence must be a number within [0, 1], got {confidence!r}")
    if "reason" in data and not isinstance(data["reason"], str):
        raise ValueError("reason must be a string")
    return data


def classification_facts(alert: Alert, rules: Classification, ctx: ClassifyContext) -> dict:
    """What a refinement (the LLM) sees: the alert and the rules' answer."""
    return {"alert_name": alert.alert_name, "service": alert.service, "severity": alert.severity,
            "status": alert.status, "message": alert.message, "labels": alert.labels, "value": alert.value,
            "service_tier": ctx.tiers.get(alert.service, ctx.default_tier), "rules": rules.to_dict(),
            "schema": CLASSIFICATION_SCHEMA}


def classify(alert: Alert, ctx: ClassifyContext, classifier="rules", refine=None) -> Classification:
    """Rules first; then ``refine(facts) -> dict`` if given. A refinement that fails, does not
    validate, or tries to lower a rules P1 is ignored (with the reason recorded)."""
    rules_fn = get_classifier(classifier) if isinstance(classifier, str) else classifier
    result = rules_fn(alert, ctx)
    if refine is None or alert.status != "firing":
        return result
    try:
        refined = validate_refinement(refine(classification_facts(alert, result, ctx)))
    except Exception as exc:  # a broken refinement never breaks triage
        result.reasons.append(f"refinement ignored: {type(exc).__name__}: {exc}")
        return result
    priority = refined["priority"]
    if result.priority == "P1" and priority != "P1":
        result.reasons.append(f"refinement proposed {priority}; a P1 found by the rules is never lowered")
        priority = "P1"
    out = Classification(priority, refined["category"], refined["users_affected"],
                         round(float(refined["confidence"]), 2), result.reasons + [
                             f"refined: {refined.get('reason') or 'no reason given'}"],
                         source="refined", pattern=result.pattern, family=result.family,
                         standalone=result.standalone)
    return out


# -- records -----------------------------------------------------------------------------

@dataclass
class AlertRecord:
    """One deduplicated alert: what the API lists. Times are epoch seconds."""

    id: str
    alert_name: str
    service: str
    severity: str
    message: str
    status: str                 #: firing, resolved, expired (superseded after the dedup window)
    labels: dict
    annotations: dict
    fingerprint: str | None
    label_key: str
    source: str
    first_seen: float
    last_seen: float
    count: int = 1
    value: float | None = None
    resolved_at: float | None = None
    received_at: float = 0.0
    triage_ms: float = 0.0
    classification: dict = field(default_factory=dict)
    group_id: str | None = None
    team: str | None = None
    route_reason: str | None = None
    generator_url: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlertRecord":
        return cls(**data)

    def to_json(self) -> dict:
        out = self.to_dict()
        for name in ("first_seen", "last_seen", "resolved_at", "received_at"):
            out[name] = iso(out[name])
        out["triage_ms"] = round(self.triage_ms, 3)
        return out


@dataclass
class AlertGroup:
    """Alerts that probably share one root cause."""

    id: str
    status: str                 #: open, resolved
    first_at: float
    last_at: float
    alert_ids: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    priority: str = "P4"
    category: str = "info"
    users_affected: str = "none"
    decisions: list[dict] = field(default_factory=list)   #: {alert_id, alert_name, service, action, reason}
    incident_id: str | None = None
    incident_reason: str | None = None
    team: str | None = None
    standalone: bool = False
    resolved_at: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlertGroup":
        return cls(**data)

    def to_json(self) -> dict:
        out = self.to_dict()
        for name in ("first_at", "last_at", "resolved_at"):
            out[name] = iso(out[name])
        out["alert_count"] = len(self.alert_ids)
        return out


# -- correlation -------------------------------------------------------------------------

@dataclass
class TriageConfig:
    dedup_window_s: float = 300.0
    correlation_window_s: float = 300.0
    classifier: str = "rules"


def service_edges(graph) -> set[tuple[str, str]]:
    """(caller service, callee service) pairs of a ``DependencyGraph`` (or an iterable of pairs)."""
    if hasattr(graph, "edges"):
        return {(caller[0], callee[0]) for caller, callee in graph.edges if caller[0] != callee[0]}
    return set(graph or ())


def _gap_s(t: float, group: AlertGroup) -> float:
    """Seconds between ``t`` and the group's onset: a cascade follows its first symptom within
    minutes, while re-sent notifications keep a group's last sighting fresh for as long as it fires."""
    return abs(t - group.first_at)


#: Alert families that travel along a call edge (a slow or failing callee makes its caller slow or fail).
_CASCADE = frozenset({"latency", "errors", "availability", "crash", "saturation"})


def _co_occurs(family: str | None, families: Iterable[str]) -> tuple[str, ...] | None:
    if family is None:
        return None
    others = set(families)
    for combo in CO_OCCURRENCES:
        if family in combo and others & set(combo):
            return combo
    return None


def choose_group(record: AlertRecord, groups: list[AlertGroup], edges: set[tuple[str, str]],
                 window_s: float, members: dict[str, AlertRecord]) -> tuple[AlertGroup | None, str]:
    """The open group ``record`` joins (or None) and why. Signals, strongest first: known
    co-occurrence on the same service, same service, trace dependency edge, same namespace."""
    cls = record.classification
    t = record.first_seen
    if cls.get("standalone"):
        for g in groups:
            if g.status == "open" and g.standalone and _gap_s(t, g) <= window_s and any(
                    members[a].alert_name == record.alert_name and members[a].service == record.service
                    for a in g.alert_ids if a in members):
                return g, f"same standalone condition {record.alert_name} on {record.service}"
        return None, (f"{record.alert_name} is a slow-burning {cls.get('pattern') or 'standalone'} condition: it "
                      f"does not share a root cause with nearby alerts, so it stays in its own group")
    incident_id = record.labels.get("incident_id") if record.source == "aiops" else None
    if incident_id:
        for g in groups:
            if g.status == "open" and g.incident_id == incident_id:
                return g, f"same analysis incident {incident_id}"
    best, best_rank, best_reason = None, 99, ""
    ns = record.labels.get("namespace")
    for g in groups:
        if g.status != "open" or g.standalone:
            continue
        gap = _gap_s(t, g)
        if gap > window_s:
            continue
        rank, reason = 99, ""
        if record.service in g.services:
            combo = _co_occurs(cls.get("family"), g.families)
            if combo is not None:
                names = sorted({members[a].alert_name for a in g.alert_ids if a in members
                                and members[a].classification.get("family") in combo})
                rank, reason = 0, (f"{record.alert_name} co-occurs with {', '.join(names)} on {record.service} "
                                   f"(known pattern: {' + '.join(combo)}), {gap:.0f} s apart")
            else:
                rank, reason = 1, f"same service {record.service}, {gap:.0f} s from the group"
        else:
            linked = [(a, b) for a, b in edges if (a == record.service and b in g.services)
                      or (b == record.service and a in g.services)]
            symptoms = cls.get("family") in _CASCADE and bool(set(g.families) & _CASCADE)
            if linked and symptoms:
                a, b = sorted(linked)[0]
                caller_sym = "calls"
                rank, reason = 2, (f"trace dependency: {a} {caller_sym} {b} "
                                   f"({record.alert_name} on {record.service}), {gap:.0f} s apart")
            elif ns and ns in g.namespaces:
                rank, reason = 3, f"same namespace {ns}, {gap:.0f} s from the group"
        if rank < best_rank or (rank == best_rank and best is not None and g.last_at > best.last_at):
            best, best_rank, best_reason = g, rank, reason
    if best is None:
        return None, (f"no open group within {window_s:.0f} s shares its service {record.service}"
                      + (f", namespace {ns}" if ns else "") + ", a trace dependency or a known co-occurrence")
    return best, best_reason


def expire_stale(records: list[AlertRecord], groups: list[AlertGroup], stale_after_s: float,
                 now_s: float) -> tuple[list[AlertRecord], list[AlertGroup]]:
    """Firing alerts not seen for ``stale_after_s`` seconds expire (their source never
    sent a resolve); a group whose alerts are then all resolved or expired resolves.
    Mutates and returns (the changed records, the changed groups)."""
    members = {r.id: r for r in records}
    stale = [r for r in records if r.status == "firing" and now_s - r.last_seen >= stale_after_s]
    for record in stale:
        record.status = "expired"
    touched = {r.group_id for r in stale if r.group_id}
    changed_groups = []
    for group in groups:
        if group.id in touched:
            refresh_group(group, members)
            changed_groups.append(group)
    return stale, changed_groups


def refresh_group(group: AlertGroup, members: dict[str, AlertRecord]) -> None:
    """Recompute a group's services, times, priority and status from its member records."""
    records = [members[a] for a in group.alert_ids if a in members]
    if not records:
        return
    group.services = sorted({r.service for r in records})
    group.namespaces = sorted({r.labels["namespace"] for r in records if r.labels.get("namespace")})
    group.families = sorted({r.classification.get("family") for r in records if r.classification.get("family")})
    group.first_at = min(r.first_seen for r in records)
    group.last_at = max(r.last_seen for r in records)
    firing = [r for r in records if r.status == "firing"] or records
    worst = min(firing, key=lambda r: (PRIORITIES.index(r.classification.get("priority", "P4")),
                                       -USERS_AFFECTED.index(r.classification.get("users_affected", "none"))))
    group.priority = min((r.classification.get("priority", "P4") for r in firing), key=PRIORITIES.index)
    group.category = worst.classification.get("category", "info")
    group.users_affected = max((r.classification.get("users_affected", "none") for r in firing),
                               key=USERS_AFFECTED.index)
    if group.team is None:
        group.team = worst.team
    if all(r.status != "firing" for r in records):
        if group.status == "open":
            group.status = "resolved"
            group.resolved_at = max((r.resolved_at or r.last_seen) for r in records)
    elif group.status == "resolved":
        group.status, group.resolved_at = "open", None


def link_incident(group: AlertGroup, incidents: Iterable[dict], slack_s: float) -> tuple[str, str] | None:
    """The analysis incident a group overlaps: services in common and times within ``slack_s``.

    ``incidents`` are dicts with id, services, first_s, last_s (open or recent incidents).
    """
    best = None
    for inc in incidents:
        common = sorted(set(group.services) & set(inc["services"]))
        if not common:
            continue
        end = inc["last_s"] if inc.get("last_s") is not None else math.inf
        if group.first_at <= end + slack_s and inc["first_s"] <= group.last_at + slack_s:
            if best is None or inc["first_s"] > best[0]["first_s"]:
                best = (inc, common)
    if best is None:
        return None
    inc, common = best
    return inc["id"], f"incident {inc['id']} affects {', '.join(common)} in the same period"


@dataclass
class TriageResult:
    records: list[AlertRecord] = field(default_factory=list)     #: every record created or changed
    groups: list[AlertGroup] = field(default_factory=list)       #: every group created or changed
    outcomes: list[dict] = field(default_factory=list)           #: one per incoming alert


def triage(batch: list[Alert], open_records: list[AlertRecord], open_groups: list[AlertGroup],
           config: TriageConfig, now_s: float, new_id: Callable[[str], str], ctx: ClassifyContext | None = None,
           edges=(), route=None, refine=None, incidents: Iterable[dict] = ()) -> TriageResult:
    """Fold ``batch`` into the open records and groups (both mutated) and return what changed.

    ``new_id(kind)`` makes ids ("alert", "group"); ``route(alert) -> (team, reason)``;
    ``incidents`` as for ``link_incident``.
    """
    import time as _time
    ctx = ctx or ClassifyContext()
    edges = service_edges(edges)
    by_fp = {r.fingerprint: r for r in open_records if r.fingerprint and r.status == "firing"}
    by_key = {r.label_key: r for r in open_records if r.status == "firing"}
    members = {r.id: r for r in open_records}
    groups = {g.id: g for g in open_groups}
    changed_r: dict[str, AlertRecord] = {}
    changed_g: dict[str, AlertGroup] = {}
    outcomes = []
    incidents = list(incidents)
    for alert in sorted(batch, key=lambda a: a.at):
        started = _time.perf_counter()
        key = alert.label_key
        existing = (by_fp.get(alert.fingerprint) if alert.fingerprint else None) or by_key.get(key)
        if alert.status == "resolved":
            if existing is None:
                outcomes.append({"action": "ignored", "alert_name": alert.alert_name, "service": alert.service,
                                 "reason": "resolved alert with no open counterpart"})
                continue
            existing.status, existing.resolved_at = "resolved", alert.ends_at or alert.at
            existing.last_seen = max(existing.last_seen, alert.at)
            by_key.pop(existing.label_key, None)
            if existing.fingerprint:
                by_fp.pop(existing.fingerprint, None)
            changed_r[existing.id] = existing
            outcomes.append({"action": "resolved", "alert_id": existing.id, "group_id": existing.group_id})
            group = groups.get(existing.group_id)
            if group is not None:
                refresh_group(group, members)
                changed_g[group.id] = group
            continue
        if existing is not None and alert.at - existing.last_seen <= config.dedup_window_s:
            existing.count += 1
            existing.last_seen = max(existing.last_seen, alert.at)
            existing.message = alert.message or existing.message
            if alert.value is not None:
                existing.value = alert.value
            # A repeat may raise the priority (a higher severity, or a burn rate that crossed 14.4x);
            # it never lowers it.
            again = classify(alert, ctx, config.classifier, refine)
            escalated = PRIORITIES.index(again.priority) < PRIORITIES.index(
                existing.classification.get("priority", "P4"))
            if escalated:
                again.reasons.insert(0, f"severity changed {existing.severity} -> {alert.severity}"
                                     if alert.severity != existing.severity else "a repeat raised the priority")
                existing.classification = again.to_dict()
            existing.severity = alert.severity
            changed_r[existing.id] = existing
            outcomes.append({"action": "deduplicated", "alert_id": existing.id, "count": existing.count,
                             "group_id": existing.group_id, "escalated": escalated})
            group = groups.get(existing.group_id)
            if group is not None:
                refresh_group(group, members)
                changed_g[group.id] = group
            continue
        if existing is not None:  # still firing, but not seen for longer than the window: a new episode
            existing.status = "expired"
            by_key.pop(existing.label_key, None)
            if existing.fingerprint:
                by_fp.pop(existing.fingerprint, None)
            changed_r[existing.id] = existing
        classification = classify(alert, ctx, config.classifier, refine)
        team, route_reason = route(alert) if route is not None else (None, None)
        record = AlertRecord(
            id=new_id("alert"), alert_name=alert.alert_name, service=alert.service, severity=alert.severity,
            message=alert.message, status="firing", labels=alert.labels, annotations=alert.annotations,
            fingerprint=alert.fingerprint, label_key=key, source=alert.source, first_seen=alert.at,
            last_seen=alert.at, value=alert.value, received_at=now_s, classification=classification.to_dict(),
            team=team, route_reason=route_reason, generator_url=alert.generator_url)
        members[record.id] = record
        by_key[key] = record
        if record.fingerprint:
            by_fp[record.fingerprint] = record
        group, reason = choose_group(record, list(groups.values()), edges, config.correlation_window_s, members)
        if group is None:
            group = AlertGroup(id=new_id("group"), status="open", first_at=record.first_seen,
                               last_at=record.last_seen, standalone=classification.standalone, team=team)
            groups[group.id] = group
            action = "opened"
        else:
            action = "joined"
        group.alert_ids.append(record.id)
        group.decisions.append({"alert_id": record.id, "alert_name": record.alert_name, "service": record.service,
                                "action": action, "reason": reason})
        record.group_id = group.id
        refresh_group(group, members)
        incident_label = alert.labels.get("incident_id") if alert.source == "aiops" else None
        if group.incident_id is None:
            if incident_label:
                group.incident_id, group.incident_reason = incident_label, \
                    f"raised by the analysis engine for incident {incident_label}"
            else:
                linked = link_incident(group, incidents, config.correlation_window_s)
                if linked:
                    group.incident_id, group.incident_reason = linked
        record.triage_ms = (_time.perf_counter() - started) * 1000.0
        changed_r[record.id] = record
        changed_g[group.id] = group
        outcomes.append({"action": "created", "alert_id": record.id, "group_id": group.id,
                         "group_action": action, "priority": classification.priority, "reason": reason})
    return TriageResult(list(changed_r.values()), list(changed_g.values()), outcomes)


def alert_of(record: AlertRecord) -> Alert:
    """The ``Alert`` a record was created from (for re-classifying it)."""
    return Alert(alert_name=record.alert_name, service=record.service, severity=record.severity,
                 message=record.message, at=record.first_seen, status="firing", labels=record.labels,
                 annotations=record.annotations, value=record.value, fingerprint=record.fingerprint,
                 source=record.source, generator_url=record.generator_url)


def refine_records(records: list[AlertRecord], ctx: ClassifyContext, classifier, refine) -> dict[str, dict]:
    """New classifications (id -> classification dict) of ``records`` with ``refine`` applied.

    Run outside the store's write transaction: a refinement may be a slow LLM call.
    """
    out = {}
    for record in records:
        refined = classify(alert_of(record), ctx, classifier, refine)
        if refined.source == "refined" or refined.reasons != record.classification.get("reasons"):
            out[record.id] = refined.to_dict()
    return out
