"""Incidents: grouping, dedup, severity, lifecycle, recurrence. Pure functions.

``correlate`` folds one pass's findings into the open incidents: a finding
joins an open incident seen within the correlation window when their root
causes match or are linked by the dependency graph (the incident grows
instead of a duplicate opening); otherwise a new incident opens, linked to
earlier incidents with the same root cause ("seen 3 times in 7 days").
``auto_resolve`` closes incidents that stayed healthy long enough.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.rca import DependencyGraph, Finding
from aiops.records import from_known, json_object
from aiops.signals import Anomaly, SeriesKey
from telemetry.timefmt import iso

SEVERITY_RANK = {"medium": 1, "high": 2, "critical": 3}
OPEN_STATUSES = ("active", "acknowledged")
STATUSES = ("active", "acknowledged", "resolved")
_TITLES = {"latency_anomaly": "Latency spike", "error_spike": "Error spike", "timeout": "Timeouts",
           "traffic_surge": "Traffic surge", "traffic_drop": "Traffic drop",
           "metric_spike": "Metric spike", "metric_drop": "Metric drop"}


@dataclass
class Incident:
    """An incident. Times are epoch seconds; ``to_json`` renders the API shape."""

    id: str
    severity: str
    status: str
    title: str
    root_cause: dict                       # endpoint, service, confidence, description, reason
    affected: list[list[str]]              # [service, route] pairs, root cause first
    anomalies: list[dict]                  # latest finding per (type, service, endpoint)
    total_traces: int
    sample_traces: list[dict]
    first_detected: float
    last_detected: float
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    timeline: list[dict] = field(default_factory=list)
    recurrence: dict = field(default_factory=dict)
    passes: int = 1                        # analysis passes that saw it

    @property
    def root_key(self) -> SeriesKey:
        return (self.root_cause["service"], self.root_cause["endpoint"])

    @property
    def keys(self) -> set[SeriesKey]:
        return {tuple(k) for k in self.affected} | {(a["service"], a["endpoint"]) for a in self.anomalies}

    def add_event(self, at_s: float, event: str, detail: str) -> None:
        self.timeline.append({"at": iso(at_s), "event": event, "detail": detail})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Incident":
        """The incident of a stored dict: unknown fields dropped, missing optional ones defaulted;
        ``ValueError`` when a required one is missing, or the root cause or an anomaly lacks its series."""
        incident = from_known(cls, data)
        json_object(incident.root_cause, "service", "endpoint", what="incident root cause")
        if not isinstance(incident.anomalies, list) or not isinstance(incident.affected, list):
            raise ValueError("a stored Incident's anomalies and affected must be lists")
        for anomaly in incident.anomalies:
            json_object(anomaly, "type", "service", "endpoint", what="incident anomaly")
        return incident

    def to_json(self, single_service: bool = True) -> dict:
        """The API shape of the product description (a superset)."""
        def label(key) -> str:
            return key[1] if single_service else f"{key[0]} {key[1]}"
        return {
            "id": self.id,
            "severity": self.severity,
            "status": self.status,
            "title": self.title,
            "root_cause": {**self.root_cause,
                           "endpoint": label(self.root_key) if not single_service else self.root_cause["endpoint"]},
            "affected_endpoints": [label(k) for k in self.affected],
            "anomalies": self.anomalies,
            "trace_correlation": {"total_traces": self.total_traces, "sample_traces": self.sample_traces},
            "first_detected": iso(self.first_detected),
            "last_detected": iso(self.last_detected),
            "acknowledged_at": iso(self.acknowledged_at),
            "resolved_at": iso(self.resolved_at),
            "recurrence": self.recurrence,
            "timeline": self.timeline,
        }


def severity_for(anomalies: list[dict]) -> str:
    return max((a["severity"] for a in anomalies), key=lambda s: SEVERITY_RANK.get(s, 0), default="medium")


def _title(finding: Finding) -> str:
    """Named after the root cause's most severe current anomaly."""
    own = [a for a in finding.anomalies if a.key == finding.root_cause] or finding.anomalies
    kind = max(own, key=lambda a: (SEVERITY_RANK[a.severity], a.score)).type
    if finding.reason == "no_response":
        kind = "timeout"
    return f"{_TITLES.get(kind, 'Anomaly')} detected in {finding.root_cause[1]}"


def _anomaly_key(a: dict) -> tuple:
    return (a["type"], a["service"], a["endpoint"])


def _merge_anomalies(existing: list[dict], new: list[Anomaly]) -> list[dict]:
    """Latest finding per (type, series), keeping the peak deviation seen."""
    merged = {_anomaly_key(a): a for a in existing}
    for anomaly in new:
        data = anomaly.to_dict()
        old = merged.get(_anomaly_key(data))
        if old is not None:
            data["peak_deviation"] = round(max(old.get("peak_deviation", old["deviation"]), data["deviation"]), 2)
            data["first_detected_at"] = old.get("first_detected_at", old["detected_at"])
        else:
            data["peak_deviation"] = data["deviation"]
            data["first_detected_at"] = data["detected_at"]
        merged[_anomaly_key(data)] = data
    return list(merged.values())


@dataclass
class Change:
    """What a pass did to an incident, for notifications: opened, escalated, updated, resolved."""

    event: str
    incident: Incident


def correlate(open_incidents: list[Incident], findings: list[Finding], history: list[Incident], now_s: float,
              config: AnalysisConfig, graph: DependencyGraph, new_id) -> list[Change]:
    """Fold ``findings`` into ``open_incidents`` (modified in place; new ones
    are returned as ``opened`` changes). ``history`` holds earlier incidents
    for recurrence; ``new_id()`` makes an incident id."""
    changes: list[Change] = []
    for finding in findings:
        target = None
        for incident in open_incidents:
            if incident.status not in OPEN_STATUSES:
                continue
            if now_s - incident.last_detected > config.correlation_window_s:
                continue
            if graph.related(finding.root_cause, incident.root_key) or finding.root_cause in incident.keys:
                target = incident
                break
            # Traffic that fell or rose around an incident's failing callers is its symptom.
            if all(a.type.startswith("traffic") for a in finding.anomalies) and \
                    any(graph.related(finding.root_cause, key) for key in incident.keys):
                target = incident
                break
        if target is None:
            incident = _open(finding, history, now_s, config, new_id())
            open_incidents.append(incident)
            changes.append(Change("opened", incident))
        else:
            changes.append(_grow(target, finding, now_s))
    return changes


def _root_cause(finding: Finding) -> dict:
    return {"endpoint": finding.root_cause[1], "service": finding.root_cause[0],
            "confidence": finding.confidence, "description": finding.description, "reason": finding.reason}


def _open(finding: Finding, history: list[Incident], now_s: float, config: AnalysisConfig,
          incident_id: str) -> Incident:
    anomalies = _merge_anomalies([], finding.anomalies)
    incident = Incident(
        id=incident_id, severity=severity_for(anomalies), status="active", title=_title(finding),
        root_cause=_root_cause(finding), affected=[list(k) for k in finding.affected], anomalies=anomalies,
        total_traces=finding.total_traces, sample_traces=finding.sample_traces,
        first_detected=now_s, last_detected=now_s,
    )
    since = now_s - config.recurrence_days * 86400
    earlier = sorted((i for i in history if i.root_key == finding.root_cause and i.first_detected >= since),
                     key=lambda i: i.first_detected)
    if earlier:
        count = len(earlier) + 1
        incident.recurrence = {
            "count": count, "window_days": config.recurrence_days,
            "previous_incidents": [i.id for i in earlier][-10:],
            "summary": f"seen {count} times in {config.recurrence_days:g} days",
        }
    incident.add_event(now_s, "opened", f"{incident.title}: {finding.description}")
    return incident


def _grow(incident: Incident, finding: Finding, now_s: float) -> Change:
    before = incident.severity
    known = {_anomaly_key(a) for a in incident.anomalies}
    for anomaly in finding.anomalies:
        if (anomaly.type, anomaly.service, anomaly.endpoint) not in known:
            incident.add_event(now_s, "anomaly_added", f"{anomaly.type} on {anomaly.endpoint}: {anomaly.description}")
    incident.anomalies = _merge_anomalies(incident.anomalies, finding.anomalies)
    incident.severity = max(before, severity_for(incident.anomalies), key=lambda s: SEVERITY_RANK[s])
    for key in finding.affected:
        if list(key) not in incident.affected:
            incident.affected.append(list(key))
    # A finding backed by more traces refines the root cause.
    if finding.total_traces >= incident.total_traces:
        if finding.root_cause != incident.root_key:
            incident.add_event(now_s, "root_cause_changed",
                               f"root cause {incident.root_key[1]} -> {finding.root_cause[1]}")
            incident.affected.sort(key=lambda k: tuple(k) != finding.root_cause)
            incident.title = _title(finding)
        incident.root_cause = _root_cause(finding)
        incident.total_traces = finding.total_traces
        incident.sample_traces = finding.sample_traces
    incident.last_detected = now_s
    incident.passes += 1
    if SEVERITY_RANK[incident.severity] > SEVERITY_RANK[before]:
        incident.title = _title(finding) if finding.root_cause == incident.root_key else incident.title
        incident.add_event(now_s, "escalated", f"severity {before} -> {incident.severity}: {incident.title}")
        return Change("escalated", incident)
    return Change("updated", incident)


def auto_resolve(open_incidents: list[Incident], now_s: float, config: AnalysisConfig) -> list[Change]:
    """Resolve open incidents with no anomaly for ``auto_resolve_s``."""
    changes = []
    for incident in open_incidents:
        if incident.status in OPEN_STATUSES and now_s - incident.last_detected >= config.auto_resolve_s:
            incident.status = "resolved"
            incident.resolved_at = now_s
            incident.add_event(now_s, "resolved",
                               f"auto-resolved: healthy for {now_s - incident.last_detected:.0f}s")
            changes.append(Change("resolved", incident))
    return changes


class TransitionError(ValueError):
    """An incident cannot move to the requested status."""


def transition(incident: Incident, action: str, now_s: float, note: str | None = None) -> Incident:
    """``acknowledge`` (active -> acknowledged) or ``resolve`` (open -> resolved),
    on a copy; raises ``TransitionError`` saying what is allowed."""
    updated = copy.deepcopy(incident)
    if action == "acknowledge":
        if incident.status != "active":
            raise TransitionError(f"incident {incident.id} is {incident.status}; only an active incident "
                                  "can be acknowledged")
        updated.status, updated.acknowledged_at = "acknowledged", now_s
        updated.add_event(now_s, "acknowledged", note or "acknowledged")
    elif action == "resolve":
        if incident.status == "resolved":
            raise TransitionError(f"incident {incident.id} is already resolved")
        updated.status, updated.resolved_at = "resolved", now_s
        updated.add_event(now_s, "resolved", note or "resolved by a user")
    else:
        raise TransitionError(f"unknown action {action!r}; valid: acknowledge, resolve")
    return updated
