"""Error budgets and burn rates: pure maths over request counts. No Flask, no SQL.

The *allowed bad ratio* (the error budget as a ratio) is ``1 - target`` for
availability and latency SLOs and ``target`` for error-rate SLOs. A burn
rate over a window is the window's bad ratio divided by the allowed bad
ratio: 1 spends the budget exactly over the SLO window, 14.4 spends 2 % of a
30-day budget in an hour. Here: burn snapshots, the multi-window alert
rules and their state machine, the exhaustion forecast, the release gate
and the heatmap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from aiops.slo.definitions import DAY_S, DEFAULT_WINDOW_S, SLODefinition, format_duration
from aiops.stats import linear_fit
from telemetry.timefmt import iso

#: Windows every burn snapshot reports (name -> seconds).
REPORT_WINDOWS = {"5m": 300.0, "30m": 1800.0, "1h": 3600.0, "6h": 21600.0, "24h": DAY_S, "3d": 3 * DAY_S}
#: The composite burn rate: 40 % of the 5m rate, 35 % of the 1h rate, 25 % of the 24h rate.
COMPOSITE_WEIGHTS = {"5m": 0.40, "1h": 0.35, "24h": 0.25}
RISK_LEVELS = ("SAFE", "OBSERVE", "DANGER", "FREEZE")


@dataclass(frozen=True)
class WindowCounts:
    """Requests in a window: ``total`` and ``bad`` (not good for the SLO)."""

    window_s: float
    total: int
    bad: int


def burn_rate(bad: int, total: int, allowed_bad_ratio: float) -> float:
    """(bad / total) / allowed_bad_ratio; 0 when the window saw no request."""
    if total <= 0:
        return 0.0
    return (bad / total) / allowed_bad_ratio


def error_budget(slo: SLODefinition, counts: WindowCounts) -> dict:
    """The budget over the SLO window, as ratios and as minutes of full outage.

    ``consumed_ratio`` is the share of the budget spent (bad / allowed bad
    requests); ``remaining_ratio`` = 1 - consumed (negative when overspent).
    A full outage spends the budget ``1 / allowed_bad_ratio`` times faster
    than its window, so the budget is worth ``allowed_bad_ratio * window``
    minutes of full outage (43.2 min for 99.9 % over 30 days).
    """
    allowed = slo.allowed_bad_ratio
    consumed = burn_rate(counts.bad, counts.total, allowed)  # over the whole window, burn == share consumed
    remaining = 1.0 - consumed
    total_minutes = allowed * slo.window_s / 60.0
    return {
        "window_s": slo.window_s,
        "requests": counts.total,
        "bad_requests": counts.bad,
        "sli": round(1.0 - counts.bad / counts.total, 9) if counts.total else None,
        "budget_total_ratio": round(allowed, 9),
        "allowed_bad_requests": round(allowed * counts.total, 3),
        "consumed_ratio": round(consumed, 6),
        "remaining_ratio": round(remaining, 6),
        "exhausted": consumed >= 1.0,
        "full_outage_minutes_total": round(total_minutes, 3),
        "full_outage_minutes_left": round(max(0.0, remaining) * total_minutes, 3),
    }


def composite_burn_rate(rates: Mapping[str, float]) -> float:
    """0.4 x 5m + 0.35 x 1h + 0.25 x 24h."""
    return sum(weight * rates[name] for name, weight in COMPOSITE_WEIGHTS.items())


def risk_level(composite: float) -> str:
    """SAFE below 1, OBSERVE in [1, 1.5), DANGER in [1.5, 2], FREEZE above 2."""
    if composite < 1.0:
        return "SAFE"
    if composite < 1.5:
        return "OBSERVE"
    if composite <= 2.0:
        return "DANGER"
    return "FREEZE"


# -- multi-window, multi-burn-rate alerts ----------------------------------------------------


@dataclass(frozen=True)
class AlertRule:
    """Fires when the burn rate over both windows is at least ``burn_rate``."""

    name: str
    severity: str       # "page" or "ticket"
    burn_rate: float
    long_s: float
    short_s: float

    def to_json(self) -> dict:
        return {"name": self.name, "severity": self.severity, "burn_rate": self.burn_rate,
                "long_window": format_duration(self.long_s), "short_window": format_duration(self.short_s)}


#: The SRE Workbook's rules for a 30-day SLO, most urgent first.
BASE_RULES = (
    AlertRule("page-fast", "page", 14.4, 3600.0, 300.0),
    AlertRule("page-slow", "page", 6.0, 6 * 3600.0, 1800.0),
    AlertRule("ticket", "ticket", 1.0, 3 * DAY_S, 6 * 3600.0),
)


def alert_rules(window_s: float) -> tuple[AlertRule, ...]:
    """``BASE_RULES`` with windows scaled by window_s / 30 days, in whole minutes
    (at least one): a 7-day SLO pages on 14.4x over 14m and 1m."""
    factor = window_s / DEFAULT_WINDOW_S

    def scale(s: float) -> float:
        return max(60.0, round(s * factor / 60.0) * 60.0)

    return tuple(AlertRule(r.name, r.severity, r.burn_rate, scale(r.long_s), scale(r.short_s)) for r in BASE_RULES)


@dataclass
class RuleEvaluation:
    rule: AlertRule
    long_rate: float
    short_rate: float
    long_requests: int
    long_bad: int
    condition_met: bool
    firing: bool
    reason: str

    def to_json(self) -> dict:
        return {**self.rule.to_json(), "long_burn_rate": round(self.long_rate, 4),
                "short_burn_rate": round(self.short_rate, 4), "long_window_requests": self.long_requests,
                "long_window_bad_requests": self.long_bad, "condition_met": self.condition_met,
                "firing": self.firing, "reason": self.reason}


def evaluate_rules(rules: Sequence[AlertRule], counts: Mapping[float, WindowCounts], allowed_bad_ratio: float,
                   min_requests: int, min_bad_events: int) -> list[RuleEvaluation]:
    """Each rule's verdict. A rule's condition is met when BOTH windows burn at
    least its rate; it fires only with enough traffic (``min_requests`` and
    ``min_bad_events`` in the long window) and when no more urgent rule fires
    (suppression: one incident pages once). ``reason`` says why in words."""
    out: list[RuleEvaluation] = []
    fired: AlertRule | None = None
    for rule in rules:
        long_c, short_c = counts[rule.long_s], counts[rule.short_s]
        long_rate = burn_rate(long_c.bad, long_c.total, allowed_bad_ratio)
        short_rate = burn_rate(short_c.bad, short_c.total, allowed_bad_ratio)
        lw, sw = format_duration(rule.long_s), format_duration(rule.short_s)
        met = long_rate >= rule.burn_rate and short_rate >= rule.burn_rate
        firing = False
        if not met:
            below = [f"{w} burn {r:.2f}" for w, r in ((lw, long_rate), (sw, short_rate)) if r < rule.burn_rate]
            reason = f"not met: {' and '.join(below)} below {rule.burn_rate:g}x"
        elif long_c.total < min_requests or long_c.bad < min_bad_events:
            reason = (f"low traffic: {long_c.bad} bad of {long_c.total} requests in {lw} "
                      f"(needs at least {min_requests} requests and {min_bad_events} bad ones before it alerts)")
        elif fired is not None:
            reason = f"suppressed by {fired.name}: the same burn already alerts"
        else:
            firing, fired = True, rule
            reason = f"{lw} burn {long_rate:.2f} and {sw} burn {short_rate:.2f} both at least {rule.burn_rate:g}x"
        out.append(RuleEvaluation(rule, long_rate, short_rate, long_c.total, long_c.bad, met, firing, reason))
    return out


_SEVERITY_RANK = {"ticket": 1, "page": 2}


def next_alert(current: dict | None, evaluations: Sequence[RuleEvaluation], now_s: float,
               cooldown_s: float) -> tuple[dict | None, str | None]:
    """The SLO's alert after this evaluation, and the event to notify (or None).

    One alert per SLO at a time (``current`` is its latest, any status):

    * a firing rule opens an alert ("opened"), or reopens a resolved one
      silently within ``cooldown_s`` of its resolution; a more urgent rule
      escalates an open one ("escalated"); a less urgent one never pages again;
    * a low-traffic condition opens a ``suppressed`` alert that says why and
      notifies nothing; it becomes ``firing`` ("opened") once traffic suffices;
    * when no rule's condition is met, an open alert resolves ("resolved").
    """
    firing = next((e for e in evaluations if e.firing), None)
    low = next((e for e in evaluations if e.condition_met and not e.firing and e.reason.startswith("low traffic")),
               None)
    is_open = current is not None and current["status"] in ("firing", "acknowledged", "suppressed")
    if firing is None and low is None:
        if is_open:
            resolved = {**current, "status": "resolved", "resolved_at": now_s, "last_evaluated": now_s,
                        "reason": "every burn-rate condition is below its threshold"}
            return resolved, ("resolved" if current["status"] != "suppressed" else None)
        return current, None
    chosen = firing or low
    update = {"rule": chosen.rule.name, "long_burn_rate": round(chosen.long_rate, 4),
              "short_burn_rate": round(chosen.short_rate, 4), "long_window": format_duration(chosen.rule.long_s),
              "short_window": format_duration(chosen.rule.short_s), "threshold": chosen.rule.burn_rate,
              "reason": chosen.reason, "last_evaluated": now_s,
              "evaluations": [e.to_json() for e in evaluations]}
    if firing is None:  # low traffic only
        if is_open and current["status"] != "suppressed":
            return {**current, "last_evaluated": now_s}, None  # an open alert keeps its state
        if is_open:
            return {**current, **update}, None
        return {"status": "suppressed", "severity": chosen.rule.severity, "fired_at": now_s, "resolved_at": None,
                "acknowledged_at": None, "acknowledged_by": None, **update}, None
    severity = firing.rule.severity
    if is_open and current["status"] != "suppressed":
        if _SEVERITY_RANK[severity] > _SEVERITY_RANK[current["severity"]]:
            return {**current, **update, "severity": severity, "status": "firing"}, "escalated"
        return {**current, **update, "severity": current["severity"]}, None
    if (current is not None and current["status"] == "resolved" and current.get("resolved_at") is not None
            and now_s - current["resolved_at"] < cooldown_s
            and _SEVERITY_RANK[severity] <= _SEVERITY_RANK[current["severity"]]):
        return {**current, **update, "status": "firing", "resolved_at": None,
                "reopened": current.get("reopened", 0) + 1}, None
    base = current if is_open else {}  # a suppressed alert turns into a firing one (same id)
    return {**base, **update, "status": "firing", "severity": severity, "fired_at": now_s, "resolved_at": None,
            "acknowledged_at": None, "acknowledged_by": None, "reopened": 0}, "opened"


def windows_needed_s(slo: SLODefinition) -> list[float]:
    """Every window (seconds) a snapshot of ``slo`` counts requests over."""
    rules = alert_rules(slo.window_s)
    return sorted(set(REPORT_WINDOWS.values()) | {slo.window_s} | {r.long_s for r in rules}
                  | {r.short_s for r in rules})


def burn_snapshot(slo: SLODefinition, counts: Mapping[float, WindowCounts], now_s: float,
                  min_requests: int, min_bad_events: int) -> tuple[dict, list[RuleEvaluation]]:
    """Burn rates over every report window, the composite, the risk level and
    the budget of ``slo`` from ``counts`` (window seconds -> counts, for
    every window of ``windows_needed_s``), and the alert rules' verdicts."""
    allowed = slo.allowed_bad_ratio
    rates = {name: burn_rate(counts[w].bad, counts[w].total, allowed) for name, w in REPORT_WINDOWS.items()}
    composite = composite_burn_rate(rates)
    budget = error_budget(slo, counts[slo.window_s])
    evaluations = evaluate_rules(alert_rules(slo.window_s), counts, allowed, min_requests, min_bad_events)
    snapshot = {
        "slo_id": slo.id, "slo_name": slo.name, "service_name": slo.service, "route": slo.route,
        "indicator": slo.indicator, "target": slo.target, "timestamp": iso(now_s), "at": now_s,
        **{f"burn_rate_{name}": round(rate, 6) for name, rate in rates.items()},
        "burn_rates": {name: round(rate, 6) for name, rate in rates.items()},
        "window_requests": {name: counts[w].total for name, w in REPORT_WINDOWS.items()},
        "window_bad_requests": {name: counts[w].bad for name, w in REPORT_WINDOWS.items()},
        "composite_burn_rate": round(composite, 6),
        "risk_level": risk_level(composite),
        "error_budget_consumed": budget["consumed_ratio"],
        "error_budget_remaining": budget["remaining_ratio"],
        "error_budget": budget,
        "alerts": [e.to_json() for e in evaluations],
    }
    return snapshot, evaluations


# -- forecast ---------------------------------------------------------------------------


def forecast(points: Sequence[tuple[float, float, float]], now_s: float) -> dict:
    """Budget exhaustion from ``(at_s, remaining_ratio, composite_burn)`` points.

    A least-squares line through remaining budget over time says when it
    reaches 0 (``time_to_exhaustion_hours``, None when the budget is not
    falling). ``burn_rate_trend`` comes from a line through the composite
    burn: stable unless it moves by more than 10 % of its mean (at least
    0.05) over the span. ``confidence_level``: high with >= 30 points and
    R^2 >= 0.8 on the budget line, medium with >= 10 points and R^2 >= 0.5,
    else low.
    """
    pts = sorted(points)
    n = len(pts)
    out = {"data_points_used": n, "time_to_exhaustion_hours": None, "projected_exhaustion_time": None,
           "burn_rate_trend": "stable", "confidence_level": "low", "budget_remaining_ratio": None,
           "budget_slope_per_hour": None, "r_squared": None}
    if n == 0:
        out["forecast_message"] = ("No burn history yet: the forecast needs burn-rate snapshots "
                                   "(POST /aiops/burn/compute).")
        return out
    remaining = pts[-1][1]
    out["budget_remaining_ratio"] = round(remaining, 6)
    if n < 3:
        out["forecast_message"] = f"Only {n} burn snapshot(s): at least 3 are needed for a trend."
        return out
    hours = [(p[0] - pts[0][0]) / 3600.0 for p in pts]
    slope, intercept, r2 = linear_fit(hours, [p[1] for p in pts])
    b_slope, _, _ = linear_fit(hours, [p[2] for p in pts])
    span_h = hours[-1] or 1e-9
    mean_burn = sum(p[2] for p in pts) / n
    change = b_slope * span_h
    if abs(change) > max(0.05, 0.1 * mean_burn):
        out["burn_rate_trend"] = "increasing" if change > 0 else "decreasing"
    out["budget_slope_per_hour"] = round(slope, 8)
    out["r_squared"] = round(r2, 4)
    out["confidence_level"] = "high" if n >= 30 and r2 >= 0.8 else "medium" if n >= 10 and r2 >= 0.5 else "low"
    if remaining <= 0:
        out["time_to_exhaustion_hours"] = 0.0
        out["projected_exhaustion_time"] = iso(now_s)
        out["forecast_message"] = "The error budget is exhausted."
    elif slope < 0:
        fitted_now = intercept + slope * ((now_s - pts[0][0]) / 3600.0)
        hours_left = max(0.0, min(remaining, fitted_now) / -slope)
        out["time_to_exhaustion_hours"] = round(hours_left, 2)
        out["projected_exhaustion_time"] = iso(now_s + hours_left * 3600.0)
        out["forecast_message"] = (f"At the current trend the error budget ({remaining:.1%} left) runs out in "
                                   f"{_hours_text(hours_left)} ({out['confidence_level']} confidence, {n} points).")
    else:
        out["forecast_message"] = (f"The error budget ({remaining:.1%} left) is not shrinking over the last "
                                   f"{_hours_text(span_h)}; no exhaustion is projected.")
    return out


def _hours_text(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    if hours >= 1:
        return f"{hours:.1f} hours"
    return f"{hours * 60:.0f} minutes"


# -- release gate ---------------------------------------------------------------------------

_RISK_RANK = {level: i for i, level in enumerate(RISK_LEVELS)}


def release_decision(risk: str, open_incidents: Sequence[Mapping], firing_alerts: Sequence[Mapping],
                     override: Mapping | None = None) -> dict:
    """``approved``, ``caution`` or ``blocked``, with every reason.

    Blocked: risk FREEZE, a paging SLO alert firing, or a critical/high open
    incident. Caution: risk DANGER or OBSERVE, a ticket alert, or another
    open incident. An unexpired ``override`` turns blocked or caution into
    approved and says so.
    """
    blockers, cautions = [], []
    if risk == "FREEZE":
        blockers.append("risk level FREEZE: the composite burn rate is above 2")
    elif risk in ("DANGER", "OBSERVE"):
        cautions.append(f"risk level {risk}")
    for alert in firing_alerts:
        text = f"SLO alert {alert['id']} ({alert['slo_name']}, {alert['rule']}) is {alert['status']}"
        (blockers if alert["severity"] == "page" else cautions).append(text)
    for incident in open_incidents:
        text = f"incident {incident['id']} ({incident['severity']}) is {incident['status']}"
        (blockers if incident["severity"] in ("critical", "high") else cautions).append(text)
    decision = "blocked" if blockers else "caution" if cautions else "approved"
    out = {"decision": decision, "gate_decision": decision, "risk_level": risk, "blockers": blockers,
           "cautions": cautions, "overridden": False, "override": None}
    if override is not None and decision != "approved":
        out.update(decision="approved", overridden=True, override=dict(override))
    return out


# -- summaries ------------------------------------------------------------------------------


def worst_risk(levels: Iterable[str]) -> str:
    return max(levels, key=lambda level: _RISK_RANK[level], default="SAFE")


def heatmap(rows: Iterable[tuple[str, float, float]], start_s: float, end_s: float, bucket_s: float) -> dict:
    """Risk per service per time bucket from ``(service, at_s, composite)``
    snapshots: the highest composite of the bucket decides; None: no data."""
    n = max(1, math.ceil((end_s - start_s) / bucket_s))
    cells: dict[str, list] = {}
    for service, at, composite in rows:
        i = int((at - start_s) // bucket_s)
        if 0 <= i < n:
            row = cells.setdefault(service, [None] * n)
            row[i] = composite if row[i] is None else max(row[i], composite)
    return {"buckets": [iso(start_s + i * bucket_s) for i in range(n)], "bucket_s": bucket_s,
            "services": [{"service": s, "risk": [None if c is None else risk_level(c) for c in row],
                          "composite_burn_rate": [None if c is None else round(c, 4) for c in row]}
                         for s, row in sorted(cells.items())]}
