"""SLOs and error budgets: pure maths over counts. No Flask, no SQL.

An SLO says which requests of a service (or one route) are *good*:

* ``availability``: not an error (5xx or an exception); ``target`` is the
  good share, e.g. 0.999;
* ``latency``: finished within ``threshold_ms``; ``target`` is the good share;
* ``error_rate``: not an error; ``target`` is the highest error ratio
  allowed, e.g. 0.01.

The *allowed bad ratio* (the error budget as a ratio) is ``1 - target`` for
the first two and ``target`` for the third. A burn rate over a window is the
window's bad ratio divided by the allowed bad ratio: 1 spends the budget
exactly over the SLO window, 14.4 spends 2 % of a 30-day budget in an hour.

Budgets are request based ("Occurrences" in OpenSLO): every request counts
the same.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence

from telemetry.config import ConfigKey, as_bool, as_number, as_optional_str

DAY_S = 86400.0
DEFAULT_WINDOW_S = 30 * DAY_S
INDICATORS = ("availability", "latency", "error_rate")
BUDGETING_METHODS = ("Occurrences",)
TIERS = {1: "critical", 2: "important", 3: "standard"}
#: Latency buckets (ms) kept per minute and exported as the request histogram;
#: a latency SLO's ``threshold_ms`` must be one of them.
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500,
                      5000, 10000)
#: Windows every burn snapshot reports (name -> seconds).
REPORT_WINDOWS = {"5m": 300.0, "30m": 1800.0, "1h": 3600.0, "6h": 21600.0, "24h": DAY_S, "3d": 3 * DAY_S}
#: The composite burn rate: 40 % of the 5m rate, 35 % of the 1h rate, 25 % of the 24h rate.
COMPOSITE_WEIGHTS = {"5m": 0.40, "1h": 0.35, "24h": 0.25}
RISK_LEVELS = ("SAFE", "OBSERVE", "DANGER", "FREEZE")

SLO_CONFIG = (
    ConfigKey("AIOPS_SLO_FILE", None, as_optional_str, "file path",
              "YAML or JSON file of services and SLOs loaded at start-up (an invalid one raises ValueError)."),
    ConfigKey("AIOPS_SLO_MIN_REQUESTS", 100, as_number(1, integer=True), "requests",
              "Requests an alert's long window needs before the alert may page or open a ticket."),
    ConfigKey("AIOPS_SLO_MIN_BAD_EVENTS", 5, as_number(1, integer=True), "requests",
              "Bad requests an alert's long window needs before it may page or open a ticket."),
    ConfigKey("AIOPS_SLO_ALERT_COOLDOWN_S", 3600.0, as_number(0.0), "seconds",
              "A resolved SLO alert whose condition returns within this time reopens silently (no new page)."),
    ConfigKey("AIOPS_SLO_HISTORY_INTERVAL_S", 60.0, as_number(1.0), "seconds",
              "Least time between two stored burn-rate snapshots of one SLO (forecast and heatmap data)."),
    ConfigKey("AIOPS_SLO_RETENTION_DAYS", 35.0, as_number(1.0), "days",
              "Per-minute request counts and burn history older than this are deleted."),
    ConfigKey("AIOPS_FORECAST_LOOKBACK_HOURS", 24.0, as_number(0.0, min_exclusive=True), "hours",
              "Burn history the exhaustion forecast fits its regression to."),
    ConfigKey("AIOPS_RELEASE_MAX_OVERRIDE_HOURS", 72.0, as_number(0.0, min_exclusive=True), "hours",
              "Longest expiry a release-gate override may ask for."),
    ConfigKey("AIOPS_METRICS_ENABLED", True, as_bool, "bool",
              "Serve GET /metrics (Prometheus text format, computed from the shared store at scrape time)."),
)


class SLOValidationError(ValueError):
    """An invalid service or SLO definition; ``field`` names the culprit."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# -- definitions -----------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_duration_s(text, field_name: str = "timeWindow") -> float:
    """``"30d"``, ``"6h"``, ``"5m"``, ``"90s"``, ``"2w"`` -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text > 0:
        return float(text)
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise SLOValidationError(field_name, f"must be a duration such as 30d, 7d, 24h or 90m, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", DAY_S), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass
class Service:
    """A service: ``tier`` 1 (critical), 2 (important) or 3 (standard)."""

    name: str
    tier: int = 3
    owner: str | None = None
    description: str | None = None
    created_at: float | None = None
    updated_at: float | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "tier": self.tier, "tier_name": TIERS[self.tier], "owner": self.owner,
                "description": self.description, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


@dataclass
class SLODefinition:
    """One objective. ``window_s`` is the rolling SLO window (default 30 days)."""

    name: str
    service: str
    indicator: str
    target: float
    window_s: float = DEFAULT_WINDOW_S
    route: str | None = None
    threshold_ms: float | None = None
    budgeting_method: str = "Occurrences"
    description: str | None = None
    source: str = "api"
    id: int | None = None

    @property
    def allowed_bad_ratio(self) -> float:
        return self.target if self.indicator == "error_rate" else 1.0 - self.target

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "service": self.service, "route": self.route,
                "indicator": self.indicator, "threshold_ms": self.threshold_ms, "target": self.target,
                "timeWindow": format_duration(self.window_s), "window_s": self.window_s,
                "budgetingMethod": self.budgeting_method, "allowed_bad_ratio": round(self.allowed_bad_ratio, 9),
                "description": self.description, "source": self.source}

    def to_dict(self) -> dict:
        return asdict(self)


_SERVICE_FIELDS = {"name", "tier", "owner", "description"}
_SLO_FIELDS = {"name", "service", "route", "indicator", "threshold_ms", "thresholdMs", "target", "timeWindow",
               "window", "budgetingMethod", "description"}


def _text(raw: Mapping, key: str, required: bool = False, limit: int = 500) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise SLOValidationError(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise SLOValidationError(key, f"must be a non-empty string, got {value!r}")
    if len(value) > limit:
        raise SLOValidationError(key, f"must be at most {limit} characters")
    return value.strip()


def validate_service(raw, name: str | None = None, partial: bool = False) -> dict:
    """Fields of a service from a request body or file entry; raises ``SLOValidationError``.

    ``name`` (from the URL) wins over the body's; ``partial`` allows missing fields (updates).
    """
    if not isinstance(raw, Mapping):
        raise SLOValidationError("body", "must be a JSON object with name, tier, owner and description")
    unknown = set(raw) - _SERVICE_FIELDS
    if unknown:
        raise SLOValidationError(sorted(unknown)[0], f"unknown field; valid fields: {', '.join(sorted(_SERVICE_FIELDS))}")
    out: dict = {}
    if name is None:
        out["name"] = _text(raw, "name", required=True, limit=128)
        if not _NAME.match(out["name"]):
            raise SLOValidationError("name", "must be 1-128 characters of letters, digits and . _ : / -")
    if "tier" in raw or not partial:
        tier = raw.get("tier", 3)
        if isinstance(tier, bool) or tier not in TIERS:
            raise SLOValidationError("tier", f"must be 1 (critical), 2 (important) or 3 (standard), got {tier!r}")
        out["tier"] = int(tier)
    for key in ("owner", "description"):
        if key in raw:
            out[key] = _text(raw, key, limit=128 if key == "owner" else 2000)
    return out


def _time_window_s(raw) -> float:
    """OpenSLO ``timeWindow``: ``[{"duration": "30d", "isRolling": true}]``, or just ``"30d"``."""
    if isinstance(raw, list):
        if len(raw) != 1 or not isinstance(raw[0], Mapping):
            raise SLOValidationError("timeWindow", "must be one window, e.g. [{duration: 30d, isRolling: true}]")
        entry = raw[0]
        if entry.get("isRolling", True) is not True:
            raise SLOValidationError("timeWindow.isRolling", "only rolling windows are supported (isRolling: true)")
        return parse_duration_s(entry.get("duration"), "timeWindow.duration")
    if isinstance(raw, Mapping):
        return _time_window_s([raw])
    return parse_duration_s(raw, "timeWindow")


def validate_slo(raw, service: str | None = None, source: str = "api") -> SLODefinition:
    """An ``SLODefinition`` from a request body or a file entry; raises ``SLOValidationError``
    naming the field. ``service`` (from the URL) wins; the body may repeat it but not contradict it."""
    if not isinstance(raw, Mapping):
        raise SLOValidationError("body", "must be a JSON object (an SLO definition)")
    unknown = set(raw) - _SLO_FIELDS
    if unknown:
        raise SLOValidationError(sorted(unknown)[0], f"unknown field; valid fields: {', '.join(sorted(_SLO_FIELDS))}")
    body_service = _text(raw, "service", required=service is None, limit=128)
    if service is not None and body_service is not None and body_service != service:
        raise SLOValidationError("service", f"the body says {body_service!r} but the URL says {service!r}")
    service = service or body_service
    indicator = raw.get("indicator")
    if isinstance(indicator, Mapping):  # OpenSLO-like {type: latency, threshold_ms: 300}
        indicator, raw = indicator.get("type"), {**raw, **{k: v for k, v in indicator.items() if k != "type"}}
    if indicator not in INDICATORS:
        raise SLOValidationError("indicator", f"must be one of {', '.join(INDICATORS)}, got {indicator!r}")
    target = raw.get("target")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
        raise SLOValidationError("target", f"must be a number strictly between 0 and 1 (e.g. 0.999), got {target!r}")
    if indicator == "error_rate" and target > 0.5:
        raise SLOValidationError("target", "an error_rate target is the highest error ratio allowed "
                                           f"(e.g. 0.01); {target!r} allows more errors than successes")
    threshold = raw.get("threshold_ms", raw.get("thresholdMs"))
    if indicator == "latency":
        if threshold not in LATENCY_BUCKETS_MS or isinstance(threshold, bool):
            raise SLOValidationError("threshold_ms", "a latency SLO needs threshold_ms, one of the histogram "
                                     f"bucket bounds {', '.join(map(str, LATENCY_BUCKETS_MS))}; got {threshold!r}")
        threshold = float(threshold)
    elif threshold is not None:
        raise SLOValidationError("threshold_ms", f"only a latency SLO takes threshold_ms (indicator is {indicator})")
    window_raw = raw.get("timeWindow", raw.get("window"))
    window_s = DEFAULT_WINDOW_S if window_raw is None else _time_window_s(window_raw)
    if not 3600.0 <= window_s <= 90 * DAY_S:
        raise SLOValidationError("timeWindow", f"must be between 1h and 90d, got {format_duration(window_s)}")
    method = raw.get("budgetingMethod", "Occurrences")
    if method not in BUDGETING_METHODS:
        raise SLOValidationError("budgetingMethod", f"must be one of {', '.join(BUDGETING_METHODS)} "
                                 f"(request-based budgets), got {method!r}")
    route = _text(raw, "route", limit=512)
    name = _text(raw, "name", limit=128)
    if name is None:
        name = re.sub(r"[^A-Za-z0-9._:]+", "-", f"{service}-{route or ''}-{indicator}").strip("-")[:128]
    if not _NAME.match(name):
        raise SLOValidationError("name", "must be 1-128 characters of letters, digits and . _ : / -")
    return SLODefinition(name=name, service=service, indicator=indicator, target=float(target), window_s=window_s,
                         route=route, threshold_ms=threshold, budgeting_method=method,
                         description=_text(raw, "description", limit=2000), source=source)


def parse_definitions(doc) -> tuple[list[dict], list[SLODefinition]]:
    """Services and SLOs of an ``AIOPS_SLO_FILE`` document (already parsed from YAML or JSON).

    ``{"services": [...], "slos": [...]}``; field errors name their place, e.g. ``slos[2].target``.
    """
    if not isinstance(doc, Mapping):
        raise SLOValidationError("(file)", "must be a mapping with 'services' and/or 'slos' lists")
    unknown = set(doc) - {"services", "slos"}
    if unknown:
        raise SLOValidationError(sorted(unknown)[0], "unknown top-level key; valid keys: services, slos")
    services, slos, names = [], [], set()
    for section in ("services", "slos"):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            raise SLOValidationError(section, "must be a list")
        for i, entry in enumerate(entries):
            try:
                if section == "services":
                    services.append(validate_service(entry))
                else:
                    slo = validate_slo(entry, source="file")
                    if slo.name in names:
                        raise SLOValidationError("name", f"{slo.name!r} is defined twice")
                    names.add(slo.name)
                    slos.append(slo)
            except SLOValidationError as exc:
                raise SLOValidationError(f"{section}[{i}].{exc.field}", exc.message) from None
    return services, slos


# -- budgets and burn rates -------------------------------------------------------------


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
    return sorted(set(REPORT_WINDOWS.values()) | {slo.window_s} | {r.long_s for r in rules} | {r.short_s for r in rules})


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


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares ``(slope, intercept, r_squared)``; r_squared is 1 for a flat perfect fit."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my, 0.0
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys))
    r2 = 1.0 if ss_tot == 0 else max(0.0, 1.0 - ss_res / ss_tot)
    return slope, intercept, r2


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
        out["forecast_message"] = "No burn history yet: the forecast needs burn-rate snapshots (POST /aiops/burn/compute)."
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


def write_service_narrative(facts: Mapping) -> str:
    """Markdown about one service, every number and name from ``facts``
    (the dict ``GET /aiops/summary/<service>`` returns as ``facts``)."""
    name = facts["service"]
    lines = [f"## {name}: {facts['risk_level']}", ""]
    tier = facts.get("tier")
    owner = facts.get("owner")
    who = f"tier {tier} ({TIERS.get(tier, '?')})" if tier else "untiered"
    lines.append(f"{name} is a {who} service" + (f" owned by {owner}." if owner else " with no owner on record."))
    slos = facts.get("slos") or []
    if not slos:
        lines.append("")
        lines.append("No SLO is defined for it, so there is no error budget to report.")
    else:
        lines += ["", "| SLO | target | SLI | budget left | outage minutes left | composite burn | risk |",
                  "|---|---|---|---|---|---|---|"]
        for s in slos:
            sli = "n/a" if s["sli"] is None else f"{s['sli']:.4%}"
            lines.append(f"| {s['name']} | {s['target']:g} | {sli} | {s['remaining_ratio']:.1%} | "
                         f"{s['full_outage_minutes_left']:g} | {s['composite_burn_rate']:.2f} | {s['risk_level']} |")
        worst = max(slos, key=lambda s: s["composite_burn_rate"])
        lines += ["", f"The fastest burn is {worst['name']} at {worst['composite_burn_rate']:.2f}x "
                      f"(5m {worst['burn_rates']['5m']:.2f}, 1h {worst['burn_rates']['1h']:.2f}, "
                      f"24h {worst['burn_rates']['24h']:.2f})."]
    fc = facts.get("forecast")
    if fc:
        lines += ["", f"Forecast: {fc['forecast_message']} Burn trend: {fc['burn_rate_trend']}."]
    alerts = facts.get("firing_alerts") or []
    if alerts:
        lines += ["", f"{len(alerts)} SLO alert(s) open:"]
        lines += [f"- {a['id']}: {a['severity']} alert (rule {a['rule']}) on {a['slo_name']}, {a['status']}: "
                  f"{a['reason']}" for a in alerts]
    incidents = facts.get("open_incidents") or []
    if incidents:
        lines += ["", f"{len(incidents)} open incident(s):"]
        lines += [f"- {i['id']} ({i['severity']}, {i['status']}): {i.get('title') or ''}".rstrip(": ")
                  for i in incidents]
    gate = facts.get("release")
    if gate:
        why = "; ".join(gate["blockers"] + gate["cautions"]) or "no risk, alert or incident stands in the way"
        override = gate.get("override")
        if gate.get("overridden") and override:
            lines += ["", f"Release gate: **{gate['decision']}** by {override['who']}'s override until "
                          f"{override['expires_at']} ({override['reason']}); without it: "
                          f"**{gate['gate_decision']}** ({why})."]
        else:
            lines += ["", f"Release gate: **{gate['decision']}** ({why})."]
    return "\n".join(lines) + "\n"


def iso(epoch_s: float | None) -> str | None:
    """ISO 8601 UTC, or None."""
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

