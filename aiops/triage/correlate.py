"""Alert correlation: dedup, grouping and the triage of one batch. Pure functions.

Pipeline for every incoming ``Alert`` (oldest first):

1. **Dedup.** The same alert (equal fingerprint, or equal alert_name, service
   and label set) seen again within ``dedup_window_s`` (default 300 s) of its
   last sighting bumps ``count`` and ``last_seen`` of the open record. A
   resolved alert closes its open counterpart.
2. **Classify** (``aiops.triage.classify``).
3. **Correlate.** A new alert joins the best open group whose first alert is
   within ``correlation_window_s`` (default 300 s): a known co-occurrence on the same
   service, then the same service, then a caller/callee edge of the trace
   dependency graph, then the same namespace. Otherwise it opens a group.
   Every decision carries its reason.

The store (``aiops/triage/store.py``) loads the open alerts and groups,
``triage`` folds a validated batch into them and returns what changed, and
the store writes it back in one transaction.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from aiops.triage.classify import CO_OCCURRENCES, PRIORITIES, USERS_AFFECTED, ClassifyContext, as_classifier, classify
from aiops.triage.intake import Alert
from aiops.triage.records import AlertGroup, AlertRecord
from telemetry.config import as_number, setting


@dataclass
class TriageConfig:
    """The dedup and correlation windows and the classifier; each field is its config key."""

    dedup_window_s: float = setting(
        "AIOPS_ALERT_DEDUP_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
        "The same alert repeating within this long of its last sighting is counted, not stored again.")
    correlation_window_s: float = setting(
        "AIOPS_ALERT_CORRELATION_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
        "A related alert joins a group when it fires within this long of the group's first alert.")
    classifier: str = setting(
        "AIOPS_ALERT_CLASSIFIER", "rules", as_classifier, "name",
        "`rules` (status, severity, patterns, tier, burn rate) or `severity` (the severity label only).")


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
        started = time.perf_counter()
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
        record.triage_ms = (time.perf_counter() - started) * 1000.0
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
