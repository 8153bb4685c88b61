"""Change risk scoring: a proposed change -> risk score 1-10, factors, recommendation, checklist. Pure.

Input (the product description's change format): service, change_type,
description, files_changed, tests_added, rollback_plan, deploy_time; plus
optional ``error_budget_remaining`` (ratio of the SLO error budget left, 0-1,
negative when overspent). ``RiskContext`` carries what the store knows: open
incidents and alert groups of the service, recent deploys, the baseline.

Score = 1 + the points of every factor, capped at 10. Recommendation:
<= 3 GO, <= 6 GO with monitoring, <= 8 DELAY, else NO-GO; an exhausted error
budget is NO-GO and an open P1/critical incident on the service at least DELAY.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from telemetry.errors import PayloadError
from telemetry.timefmt import parse_time_field as parse_time

CHANGE_TYPES = {"deployment": 1.0, "config": 1.0, "feature_flag": 0.5, "database_migration": 2.5,
                "infrastructure": 2.0, "dependency_upgrade": 1.5, "hotfix": 1.0, "rollback": 0.0}
RECOMMENDATIONS = ("GO", "GO with monitoring", "DELAY", "NO-GO")
_TZ = {"UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
       "PDT": -7, "CET": 1, "CEST": 2, "BST": 1, "IST": 5.5, "JST": 9, "AEST": 10}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RISKY_WORDS = ("migration", "schema", "payment", "auth", "database", "batch", "cache", "billing", "delete",
                "drop", "encryption", "certificate", "dns", "network", "memory")


@dataclass
class ChangeRequest:
    service: str
    change_type: str
    description: str
    files_changed: int
    tests_added: int
    rollback_plan: str
    deploy_local: datetime          #: local wall-clock time of the deploy (weekday and hour matter)
    deploy_at_s: float | None       #: epoch seconds when the input names an absolute time
    error_budget_remaining: float | None = None


@dataclass
class RiskContext:
    open_incidents: list[dict] = field(default_factory=list)   #: {id, severity} on this service
    other_open_incidents: int = 0
    open_groups: list[dict] = field(default_factory=list)      #: {id, priority} alert groups on this service
    recent_deploys: list[dict] = field(default_factory=list)   #: deploys of this service in the last 24 h
    baseline: dict | None = None                               #: {error_ratio, p95_ms, requests_per_s}
    peak_hours: tuple[int, int] = (9, 17)                      #: local [start, end) hours of peak traffic


def parse_deploy_time(value, now_s: float) -> tuple[datetime, float | None]:
    """ISO 8601, or ``"Tuesday 14:00 EST"`` (the next such day), or None/"now" -> (local time, epoch s)."""
    if value is None or value == "now":
        return datetime.fromtimestamp(now_s, timezone.utc), now_s
    if not isinstance(value, str):
        raise PayloadError("deploy_time", f"must be ISO 8601 or like 'Tuesday 14:00 EST', got {value!r}")
    m = re.fullmatch(r"\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*([A-Za-z]+)?\s*", value)
    if m:
        day, hour, minute, tz = m.group(1).lower(), int(m.group(2)), int(m.group(3)), (m.group(4) or "UTC").upper()
        matches = [d for d in _DAYS if d.startswith(day[:3])] if len(day) >= 3 else []
        if len(matches) != 1 or hour > 23 or minute > 59:
            raise PayloadError("deploy_time", f"could not read {value!r}: use a weekday, HH:MM and a time zone "
                                              "(e.g. 'Friday 17:30 EST') or ISO 8601")
        if tz not in _TZ:
            raise PayloadError("deploy_time", f"unknown time zone {tz!r}; valid: {', '.join(sorted(_TZ))}")
        offset = timezone(timedelta(hours=_TZ[tz]))
        now_local = datetime.fromtimestamp(now_s, offset)
        days_ahead = (_DAYS.index(matches[0]) - now_local.weekday()) % 7
        local = (now_local + timedelta(days=days_ahead)).replace(hour=hour, minute=minute, second=0, microsecond=0)
        if local.timestamp() < now_s - 60:
            local += timedelta(days=7)
        return local, local.timestamp()
    at = parse_time(value, "deploy_time")
    raw = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = datetime.fromtimestamp(at, timezone.utc)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed, at


def parse_change(body, now_s: float) -> ChangeRequest:
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object with service, change_type, description, files_changed, "
                                   "tests_added, rollback_plan, deploy_time")
    service = body.get("service")
    if not isinstance(service, str) or not service.strip():
        raise PayloadError("service", "is required: the service the change goes to")
    change_type = body.get("change_type", "deployment")
    if change_type not in CHANGE_TYPES:
        raise PayloadError("change_type", f"unknown change type {change_type!r}; valid: {', '.join(CHANGE_TYPES)}")
    counts = {}
    for name in ("files_changed", "tests_added"):
        value = body.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PayloadError(name, f"must be a whole number >= 0, got {value!r}")
        counts[name] = value
    for name in ("description", "rollback_plan"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise PayloadError(name, f"must be a string, got {body[name]!r}")
    budget = body.get("error_budget_remaining")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget > 1
                               or budget < -10):
        raise PayloadError("error_budget_remaining", f"must be the ratio of error budget left, at most 1 "
                                                     f"(negative when overspent), got {budget!r}")
    local, at = parse_deploy_time(body.get("deploy_time"), now_s)
    return ChangeRequest(service.strip(), change_type, (body.get("description") or "").strip(),
                         counts["files_changed"], counts["tests_added"], (body.get("rollback_plan") or "").strip(),
                         local, at, None if budget is None else float(budget))


def score_change(change: ChangeRequest, ctx: RiskContext) -> dict:
    """Factors, score, recommendation and monitoring checklist (see the module docstring)."""
    factors = []

    def add(name: str, points: float, detail: str):
        factors.append({"factor": name, "points": round(points, 2), "detail": detail})

    add("change_type", CHANGE_TYPES[change.change_type], f"{change.change_type} change")
    files = change.files_changed
    size = 2.0 if files > 50 else 1.5 if files > 20 else 1.0 if files > 10 else 0.5 if files > 3 else 0.0
    if size:
        add("change_size", size, f"{files} files changed")
    if files > 0 and change.tests_added == 0:
        add("no_tests", 1.5, f"{files} files changed and no tests added")
    elif files > 0 and change.tests_added / files < 0.25:
        add("few_tests", 0.75, f"{change.tests_added} tests for {files} files (< 1 per 4 files)")
    if not change.rollback_plan:
        add("no_rollback_plan", 2.0, "no rollback plan given")
    local = change.deploy_local
    day, hour = local.weekday(), local.hour + local.minute / 60
    when = f"{_DAYS[day].capitalize()} {local:%H:%M} (UTC{local:%z})"
    if (day == 4 and hour >= 15) or day >= 5:
        add("deploy_timing", 1.5, f"{when}: Friday evening or weekend, few people around if it breaks")
    elif hour < 6 or hour >= 22:
        add("deploy_timing", 1.0, f"{when}: night, a thin on-call bench")
    elif ctx.peak_hours[0] <= hour < ctx.peak_hours[1]:
        add("deploy_timing", 1.0, f"{when}: peak hours {ctx.peak_hours[0]:02d}-{ctx.peak_hours[1]:02d}, "
                                  "the most users see a failure")
    severe = [i for i in ctx.open_incidents if i.get("severity") in ("critical", "P1")]
    if ctx.open_incidents:
        add("open_incidents", min(3.0, 1.5 * len(ctx.open_incidents)),
            f"{len(ctx.open_incidents)} open incident(s) on {change.service}: "
            f"{', '.join(i['id'] for i in ctx.open_incidents[:5])}")
    urgent_groups = [g for g in ctx.open_groups if g.get("priority") in ("P1", "P2")]
    if urgent_groups:
        add("open_alerts", min(2.0, 1.0 * len(urgent_groups)),
            f"{len(urgent_groups)} open P1/P2 alert group(s) on {change.service}: "
            f"{', '.join(g['id'] for g in urgent_groups[:5])}")
    if ctx.other_open_incidents:
        add("other_incidents", 0.5, f"{ctx.other_open_incidents} open incident(s) elsewhere compete for attention")
    budget = change.error_budget_remaining
    if budget is not None:
        if budget <= 0:
            add("error_budget", 3.0, f"error budget exhausted ({budget:.0%} left): only reliability fixes should ship")
        elif budget < 0.25:
            add("error_budget", 2.0, f"{budget:.0%} of the error budget left")
        elif budget < 0.5:
            add("error_budget", 1.0, f"{budget:.0%} of the error budget left")
    if len(ctx.recent_deploys) >= 2:
        add("deploy_churn", 0.5, f"{len(ctx.recent_deploys)} deploys of {change.service} in the last 24 h")
    words = sorted({w for w in _RISKY_WORDS if re.search(rf"\b{w}", change.description, re.IGNORECASE)})
    if words:
        add("sensitive_area", 0.5, f"description touches {', '.join(words)}")
    score = round(min(10.0, max(1.0, 1.0 + sum(f["points"] for f in factors))), 1)
    recommendation = "GO" if score <= 3 else "GO with monitoring" if score <= 6 else "DELAY" if score <= 8 \
        else "NO-GO"
    overrides = []
    if budget is not None and budget <= 0 and change.change_type != "rollback":
        recommendation = "NO-GO"
        overrides.append("error budget exhausted")
    if severe and RECOMMENDATIONS.index(recommendation) < RECOMMENDATIONS.index("DELAY") \
            and change.change_type not in ("rollback", "hotfix"):
        recommendation = "DELAY"
        overrides.append(f"critical incident {severe[0]['id']} open on {change.service}")
    return {"service": change.service, "change_type": change.change_type, "risk_score": score,
            "risk_factors": sorted(factors, key=lambda f: -f["points"]), "recommendation": recommendation,
            "overrides": overrides, "deploy_time": change.deploy_local.isoformat(),
            "monitoring_checklist": monitoring_checklist(change, ctx, words)}


def monitoring_checklist(change: ChangeRequest, ctx: RiskContext, words: list[str]) -> list[str]:
    """Concrete things to watch, with the service's baseline numbers when known."""
    s = change.service
    b = ctx.baseline or {}
    items = []
    if b.get("error_ratio") is not None:
        items.append(f"Error rate of {s}: baseline {b['error_ratio']:.2%}; roll back above "
                     f"{max(0.01, 3 * b['error_ratio']):.2%} for 5 minutes")
    else:
        items.append(f"Error rate of {s}: roll back if it doubles for 5 minutes after the deploy")
    if b.get("p95_ms") is not None:
        items.append(f"p95 latency of {s}: baseline {b['p95_ms']:.0f} ms; investigate above "
                     f"{1.5 * b['p95_ms']:.0f} ms")
    else:
        items.append(f"p95 latency of {s} against its SLO for 30 minutes")
    if change.change_type == "database_migration" or "migration" in words or "schema" in words:
        items.append("Database lock waits, slow queries and replication lag during the migration")
    if "memory" in words or "batch" in words or "cache" in words:
        items.append(f"Memory of {s} pods (OOMKilled, restarts) for the first run of the new job")
    if change.change_type in ("config", "feature_flag"):
        items.append("Config reload errors; keep the previous value ready to restore")
    items.append(f"Pod restarts and readiness of {s} during the rollout")
    items.append(f"Rollback ready: {change.rollback_plan}" if change.rollback_plan
                 else "Write a rollback plan before deploying (e.g. kubectl rollout undo)")
    if ctx.open_incidents or ctx.open_groups:
        items.append("Confirm with the incident owner before deploying while incidents are open")
    return items
