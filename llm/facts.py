"""Facts for documents: pure functions from an incident to a plain dict.

Two sources give the same shape:

- ``incident_facts(body)``: an analysis-engine incident as the API returns it
  (``Incident.to_json``);
- ``user_incident_facts(body)``: a user's own incident in the product's
  postmortem format (title, severity, duration_minutes, services_affected,
  timeline, root_cause, fix_applied, data_points), validated by
  ``validate_user_incident`` (``InvalidIncident`` names the field).

Writers in ``llm.writers`` read only these dicts, so every number and name
in a document comes from here. Times are ISO 8601 UTC strings; durations
are minutes (float).
"""
from __future__ import annotations

import re

from telemetry.errors import PayloadError
from telemetry.timefmt import iso, parse_time

PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
SEVERITY_OF_PRIORITY = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low", "P5": "low"}
KIND = {"error_spike": "error spike", "latency_anomaly": "latency spike", "timeout": "timeouts",
        "traffic_surge": "traffic surge", "traffic_drop": "traffic drop"}
_TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def parse_iso(text: str | None) -> float | None:
    """Epoch seconds of a time the facts carry (``telemetry.timefmt.parse_time``), or None when absent or unreadable."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def _minutes(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) / 60.0, 1)


def incident_facts(body: dict) -> dict:
    """Facts of an analysis incident (the JSON of ``GET /aiops/incidents/<id>``)."""
    rc = body.get("root_cause") or {}
    anomalies = body.get("anomalies") or []
    first = parse_iso(body.get("first_detected"))
    last = parse_iso(body.get("last_detected"))
    acked = parse_iso(body.get("acknowledged_at"))
    resolved = parse_iso(body.get("resolved_at"))
    end = resolved if resolved is not None else last
    root_label = rc.get("endpoint")
    services = sorted({a["service"] for a in anomalies if a.get("service")}
                      | ({rc["service"]} if rc.get("service") else set()))
    signals = []
    for a in anomalies:
        label = a["endpoint"] if len(services) <= 1 else f"{a['service']} {a['endpoint']}"
        baseline_ms, current_ms = a.get("baseline_ms"), a.get("current_ms")
        signals.append({
            "type": a.get("type"), "kind": KIND.get(a.get("type"), a.get("type")), "endpoint": label,
            "service": a.get("service"), "route": a.get("endpoint"), "severity": a.get("severity"),
            "description": a.get("description"),
            "baseline_ms": baseline_ms, "current_ms": current_ms,
            # the engine's own ratio (deviation) for latency anomalies; recomputed from rounded ms otherwise
            "latency_ratio": (round(a["deviation"], 1) if a.get("type") == "latency_anomaly" and a.get("deviation")
                              else round(current_ms / baseline_ms, 1) if baseline_ms and current_ms is not None
                              else None),
            "error_ratio": a.get("error_ratio"), "baseline_error_ratio": a.get("baseline_error_ratio"),
            "request_count": a.get("request_count"), "rate_per_s": a.get("rate_per_s"),
            "baseline_rate_per_s": a.get("baseline_rate_per_s"),
            "deviation": a.get("deviation"), "peak_deviation": a.get("peak_deviation", a.get("deviation")),
            "first_detected_at": iso(a.get("first_detected_at")), "detected_at": iso(a.get("detected_at")),
            "is_root": a.get("service") == rc.get("service") and a.get("endpoint") == _route_of(root_label),
        })
    signals.sort(key=lambda s: (not s["is_root"], s["endpoint"] or "", s["type"] or ""))
    errors = []
    for s, a in zip_signals(signals, anomalies):
        for e in a.get("sample_errors") or []:
            errors.append({"endpoint": s["endpoint"], "type": e.get("type"), "message": e.get("message"),
                           "count": e.get("count")})
    errors.sort(key=lambda e: -(e["count"] or 0))
    traces = (body.get("trace_correlation") or {})
    samples = [{"trace_id": t.get("trace_id"), "entry_endpoint": t.get("entry_endpoint", t.get("root_endpoint")),
                "entry_status": t.get("entry_status", t.get("root_status")), "root_endpoint": t.get("root_endpoint"),
                "root_status": t.get("root_status"), "chain": list(t.get("affected_chain") or [])}
               for t in traces.get("sample_traces") or []]
    severity = body.get("severity", "medium")
    recurrence = body.get("recurrence") or {}
    return {
        "source": "aiops",
        "incident_id": body.get("id"),
        "title": body.get("title"),
        "severity": severity,
        "priority": PRIORITY.get(severity, "P3"),
        "status": body.get("status"),
        "services": services,
        "endpoints": list(body.get("affected_endpoints") or []),
        "entry_endpoints": sorted({s["entry_endpoint"] for s in samples if s["entry_endpoint"]}),
        "root_cause": {"endpoint": root_label, "service": rc.get("service"), "reason": rc.get("reason"),
                       "confidence": rc.get("confidence"), "description": rc.get("description")},
        "started_at": body.get("first_detected"),
        "last_detected_at": body.get("last_detected"),
        "acknowledged_at": body.get("acknowledged_at"),
        "resolved_at": body.get("resolved_at"),
        "duration_minutes": _minutes(first, end),
        "time_to_acknowledge_minutes": _minutes(first, acked),
        "ongoing": body.get("status") != "resolved",
        "signals": signals,
        "peak_error_ratio": max((s["peak_deviation"] / 100.0 for s in signals
                                 if s["type"] == "error_spike" and s["peak_deviation"] is not None), default=None),
        "peak_latency_ratio": max((s["latency_ratio"] for s in signals
                                   if s["type"] == "latency_anomaly" and s["latency_ratio"]), default=None),
        "errors": errors[:10],
        "total_traces": traces.get("total_traces", 0),
        "sample_traces": samples,
        "timeline": [{"at": e.get("at"), "event": e.get("event"), "detail": e.get("detail")}
                     for e in body.get("timeline") or []],
        "recurrence": {"count": recurrence.get("count"), "window_days": recurrence.get("window_days"),
                       "previous_incidents": recurrence.get("previous_incidents", []),
                       "summary": recurrence.get("summary")} if recurrence else None,
        "fix_applied": None,
        "data_points": {},
        "detection_method": "automated (aiops analysis)",
        "participants": [],
    }


def zip_signals(signals: list[dict], anomalies: list[dict]):
    """(signal, anomaly) pairs matched by type, service and route."""
    by_key = {(a.get("type"), a.get("service"), a.get("endpoint")): a for a in anomalies}
    for s in signals:
        a = by_key.get((s["type"], s["service"], s["route"]))
        if a is not None:
            yield s, a


def _route_of(label: str | None) -> str | None:
    """The route of an endpoint label (``"/x"`` or ``"service /x"``)."""
    return label.split(" ", 1)[1] if label and " " in label else label


# -- a user's own incident (POST /aiops/postmortems) ------------------------------------

class InvalidIncident(PayloadError):
    """A user incident field is missing or malformed (a ``PayloadError``: ``field`` and ``detail``)."""


_SEVERITIES = ("P1", "P2", "P3", "P4", "P5", "critical", "high", "medium", "low", "SEV1", "SEV2", "SEV3", "SEV4")
_MAX_TEXT = 4000
_MAX_EVENTS = 500


def _text(body: dict, name: str, required: bool = True, limit: int = _MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidIncident(name, "required: a non-empty string" if name not in body else
                              f"must be a non-empty string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidIncident(name, f"at most {limit} characters, got {len(value)}")
    return value.strip()


def validate_user_incident(body) -> dict:
    """The normalised incident, or ``InvalidIncident`` naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidIncident("body", "must be a JSON object with title, severity, duration_minutes, "
                                      "services_affected, timeline and root_cause")
    out: dict = {"title": _text(body, "title", limit=300)}
    severity = body.get("severity")
    if not isinstance(severity, str) or severity.strip().upper() not in {s.upper() for s in _SEVERITIES}:
        raise InvalidIncident("severity", f"must be one of {', '.join(_SEVERITIES)}, got {severity!r}")
    severity = severity.strip()
    upper = severity.upper()
    if upper.startswith("SEV"):
        upper = f"P{upper[3:]}"
    out["priority"] = upper if upper.startswith("P") else PRIORITY[severity.lower()]
    out["severity"] = SEVERITY_OF_PRIORITY[out["priority"]]
    duration = body.get("duration_minutes")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration <= 525600:
        raise InvalidIncident("duration_minutes", f"must be a number of minutes within [0, 525600], got {duration!r}")
    out["duration_minutes"] = float(duration)
    services = body.get("services_affected")
    if not isinstance(services, list) or not services:
        raise InvalidIncident("services_affected", "must be a non-empty list of service names")
    for i, s in enumerate(services):
        if not isinstance(s, str) or not s.strip() or len(s) > 200:
            raise InvalidIncident(f"services_affected[{i}]", "must be a non-empty string of at most 200 characters")
    out["services_affected"] = [s.strip() for s in services]
    timeline = body.get("timeline")
    if not isinstance(timeline, list) or not timeline:
        raise InvalidIncident("timeline", 'must be a non-empty list of {"time": "14:00", "event": "..."} objects')
    if len(timeline) > _MAX_EVENTS:
        raise InvalidIncident("timeline", f"at most {_MAX_EVENTS} events, got {len(timeline)}")
    events = []
    for i, e in enumerate(timeline):
        if not isinstance(e, dict):
            raise InvalidIncident(f"timeline[{i}]", 'must be an object {"time": "...", "event": "..."}')
        for name in ("time", "event"):
            value = e.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidIncident(f"timeline[{i}].{name}", "required: a non-empty string")
            if len(value) > _MAX_TEXT:
                raise InvalidIncident(f"timeline[{i}].{name}", f"at most {_MAX_TEXT} characters")
        events.append({"at": e["time"].strip(), "event": e["event"].strip()})
    out["timeline"] = events
    out["root_cause"] = _text(body, "root_cause")
    out["fix_applied"] = _text(body, "fix_applied", required=False)
    out["detection_method"] = _text(body, "detection_method", required=False, limit=300)
    points = body.get("data_points", {})
    if not isinstance(points, dict):
        raise InvalidIncident("data_points", "must be an object of name: number or string")
    for name, value in points.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                (isinstance(value, str) and len(value) > 500):
            raise InvalidIncident(f"data_points.{name}", "must be a number or a string of at most 500 characters")
    if len(points) > 100:
        raise InvalidIncident("data_points", f"at most 100 entries, got {len(points)}")
    out["data_points"] = dict(points)
    participants = body.get("participants", [])
    if not isinstance(participants, list) or not all(isinstance(p, str) for p in participants):
        raise InvalidIncident("participants", "must be a list of strings (roles, not names, keeps it blameless)")
    out["participants"] = participants[:50]
    return out


def user_incident_facts(body) -> dict:
    """Facts of a user's incident (validated; ``InvalidIncident`` on bad input)."""
    inc = validate_user_incident(body)
    return {
        "source": "user",
        "incident_id": None,
        "title": inc["title"],
        "severity": inc["severity"],
        "priority": inc["priority"],
        "status": "resolved",
        "services": inc["services_affected"],
        "endpoints": [],
        "entry_endpoints": [],
        "root_cause": {"endpoint": None, "service": inc["services_affected"][0], "reason": None,
                       "confidence": None, "description": inc["root_cause"]},
        "started_at": inc["timeline"][0]["at"],
        "last_detected_at": inc["timeline"][-1]["at"],
        "acknowledged_at": None,
        "resolved_at": inc["timeline"][-1]["at"],
        "duration_minutes": inc["duration_minutes"],
        "time_to_acknowledge_minutes": None,
        "ongoing": False,
        "signals": [],
        "peak_error_ratio": None,
        "peak_latency_ratio": None,
        "errors": [],
        "total_traces": None,
        "sample_traces": [],
        "timeline": [{"at": e["at"], "event": "", "detail": e["event"]} for e in inc["timeline"]],
        "recurrence": None,
        "fix_applied": inc["fix_applied"],
        "data_points": inc["data_points"],
        "detection_method": inc["detection_method"],
        "participants": inc["participants"],
    }


def customer_facts(facts: dict) -> dict:
    """What a customer may be told: times, status and the kind and size of
    the impact. No service, route, host, trace id or error text."""
    kinds = {s["type"] for s in facts.get("signals") or []}
    if "timeout" in kinds or facts["root_cause"].get("reason") == "no_response":
        impact = "unavailable"
    elif "error_spike" in kinds:
        impact = "errors"
    elif "latency_anomaly" in kinds:
        impact = "slow"
    elif facts.get("source") == "user":
        impact = "errors" if any("error" in str(k).lower() for k in facts.get("data_points") or {}) else "degraded"
    else:
        impact = "degraded"
    peak = facts.get("peak_error_ratio")
    return {
        "status": "resolved" if not facts.get("ongoing") else "investigating",
        "priority": facts.get("priority"),
        "started_at": facts.get("started_at") if facts.get("source") == "aiops" else None,
        "resolved_at": facts.get("resolved_at") if facts.get("source") == "aiops" else None,
        "duration_minutes": facts.get("duration_minutes"),
        "impact": impact,
        "peak_failed_share": round(peak, 2) if peak is not None else None,
        "features_affected": len(facts.get("entry_endpoints") or facts.get("endpoints") or facts.get("services") or []),
        "recurring": bool(facts.get("recurrence")),
    }


_HOST = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}\b|\b\d{1,3}(?:\.\d{1,3}){3}\b", re.I)
_URL_PATH = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+(/[^\s?#;,)]*)", re.I)
_ROUTE = re.compile(r"(?<![\w.])/[A-Za-z0-9_.~%-]+(?:/[A-Za-z0-9_.~%<>:-]*)*")


def internal_terms(facts: dict) -> set[str]:
    """Every internal detail of ``facts`` a customer text must not contain:
    routes, services, hosts, trace ids, error types and messages."""
    terms: set[str] = set()
    strings: list[str] = []

    def walk(value):
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(facts)
    for text in strings:
        terms.update(_TRACE_ID.findall(text))
        terms.update(h for h in _HOST.findall(text) if not h.replace(".", "").isdigit() or h.count(".") == 3)
        terms.update(r for r in _ROUTE.findall(text) if len(r) > 1)
        terms.update(p for p in _URL_PATH.findall(text) if len(p) > 1)
    for e in facts.get("errors") or []:
        terms.update(t for t in (e.get("type"), e.get("message")) if t)
    terms.update(s for s in facts.get("services") or [] if len(s) >= 3)
    terms.update(s["route"] for s in facts.get("signals") or [] if s.get("route"))
    return {t for t in terms if t and len(t) >= 2}


def leaked_terms(text: str, facts: dict) -> list[str]:
    """Internal terms of ``facts`` that appear in ``text`` (case-insensitive; services as whole words)."""
    lowered = text.lower()
    leaks = []
    services = {s.lower() for s in facts.get("services") or []}
    for term in sorted(internal_terms(facts)):
        t = term.lower()
        if t in services:
            if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", lowered):
                leaks.append(term)
        elif t in lowered:
            leaks.append(term)
    leaks.extend(_TRACE_ID.findall(text))
    return sorted(set(leaks))
