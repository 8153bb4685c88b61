"""Capacity advisor: headroom, 7-day trends, time to each limit, URGENT/PLANNED/WATCH. Pure.

Two inputs:

* the product description's ``service_metrics`` (POST /aiops/capacity):
  ``current`` utilisations in percent (``"65%"`` or 65), ``trend_7d`` relative
  changes over 7 days (``"+8%"``: the average grows 8 % of itself a week), an
  optional ``history_7d`` of daily values per metric (then the trend is a
  least-squares line through them), ``upcoming`` free text (``"3x"`` and
  ``"in 6 weeks"`` are read from it) and ``slo``;
* observed request rates (GET /aiops/capacity): hourly request counts from
  spans; the trend is a least-squares line through them.

Limits: CPU and memory 100 % of the pods' limits (the danger zone starts at
80 %), disk 90 %, connections ``connections_max``. Pods are sized so the
peak sits at ``target_util_pct`` (default 70 %).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from aiops.stats import linear_fit
from telemetry.config import as_number, setting
from telemetry.errors import PayloadError

#: metric -> (current key used for the projection, hard limit, what hitting it means)
LIMITS = {"cpu": ("cpu_peak", 100.0, "CPU saturation"), "memory": ("memory_peak", 100.0, "OOM kills"),
          "disk": ("disk_usage", 90.0, "disk full"), "connections": ("connections_avg", None, "connection pool full")}
DANGER_PCT = 80.0
_TREND_KEYS = {"cpu": "cpu_avg_change", "memory": "memory_avg_change", "disk": "disk_usage_change",
               "connections": "traffic_change"}


@dataclass
class AdvisorConfig:
    target_util_pct: float = setting("AIOPS_CAPACITY_TARGET_UTIL_PCT", 70.0, as_number(1.0, 100.0), "percent",
                                     "Peak utilisation the capacity advisor sizes pod counts for.")
    urgent_days: float = 7.0         #: a limit this close is URGENT
    planned_days: float = 42.0       #: a limit this close (or an upcoming event) is PLANNED


def _percent(value, field: str) -> float:
    if isinstance(value, bool):
        raise PayloadError(field, f"must be a percentage like \"65%\" or 65, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?)\s*%?\s*", value)
        if m:
            return float(m.group(1))
    raise PayloadError(field, f"must be a percentage like \"65%\" or 65, got {value!r}")


def _number(value, field: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise PayloadError(field, f"must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def slope_per_day(values: list[float]) -> float:
    """Least-squares slope of evenly spaced daily values (units per day)."""
    if len(values) < 2:
        return 0.0
    return linear_fit(range(len(values)), [float(v) for v in values])[0]


def parse_upcoming(text: str) -> dict:
    """``"Black Friday in 6 weeks — expected 3x traffic"`` -> {multiplier: 3.0, in_days: 42}."""
    out = {"multiplier": None, "in_days": None}
    m = re.search(r"(\d+(?:\.\d+)?)\s*x\b", text, re.IGNORECASE)
    if m:
        out["multiplier"] = float(m.group(1))
    m = re.search(r"(\d+(?:\.\d+)?)\s*(day|week|month)s?", text, re.IGNORECASE)
    if m:
        out["in_days"] = float(m.group(1)) * {"day": 1, "week": 7, "month": 30}[m.group(2).lower()]
    return out


def pods_for(pods: int, util_pct: float, target_pct: float) -> int:
    """Pods needed so that ``util_pct`` on ``pods`` pods becomes at most ``target_pct``."""
    return max(1, math.ceil(pods * util_pct / target_pct - 1e-9))


def analyse_service(metrics: dict, config: AdvisorConfig, where: str = "service_metrics") -> dict:
    """One service_metrics dict -> headroom, trends, days to each limit, recommendations."""
    if not isinstance(metrics, dict):
        raise PayloadError(where, "must be a JSON object with service and current")
    service = metrics.get("service")
    if not isinstance(service, str) or not service:
        raise PayloadError(f"{where}.service", "is required")
    current = metrics.get("current")
    if not isinstance(current, dict) or not current:
        raise PayloadError(f"{where}.current", "is required: pods, cpu_avg, cpu_peak, memory_avg, memory_peak, "
                                               "disk_usage, connections_avg, connections_max, requests_per_second")
    pods = current.get("pods")
    if pods is not None and (isinstance(pods, bool) or not isinstance(pods, int) or pods < 1):
        raise PayloadError(f"{where}.current.pods", f"must be a whole number >= 1, got {pods!r}")
    pct = {}
    for key in ("cpu_avg", "cpu_peak", "memory_avg", "memory_peak", "disk_usage"):
        if key in current:
            pct[key] = _percent(current[key], f"{where}.current.{key}")
            if not 0 <= pct[key] <= 1000:
                raise PayloadError(f"{where}.current.{key}", f"must be within 0-1000 %, got {current[key]!r}")
    conn_avg = _number(current["connections_avg"], f"{where}.current.connections_avg") \
        if "connections_avg" in current else None
    conn_max = _number(current["connections_max"], f"{where}.current.connections_max", 1) \
        if "connections_max" in current else None
    rps = _number(current["requests_per_second"], f"{where}.current.requests_per_second") \
        if "requests_per_second" in current else None
    trend = metrics.get("trend_7d") or {}
    history = metrics.get("history_7d") or {}
    if not isinstance(trend, dict) or not isinstance(history, dict):
        raise PayloadError(f"{where}.trend_7d", "trend_7d and history_7d must be JSON objects")
    upcoming_text = " ".join(str(v) for v in (metrics.get("upcoming") or {}).values()) \
        if isinstance(metrics.get("upcoming"), dict) else str(metrics.get("upcoming") or "")
    upcoming = parse_upcoming(upcoming_text)

    resources, recs = [], []
    for name, (key, limit, meaning) in LIMITS.items():
        if name == "connections":
            if conn_avg is None or conn_max is None:
                continue
            level, limit = conn_avg / conn_max * 100.0, 100.0
            unit_now = f"{conn_avg:g} of {conn_max:g} connections"
        else:
            if key not in pct:
                continue
            level = pct[key]
            unit_now = f"{level:g}%"
        avg_key = {"cpu": "cpu_avg", "memory": "memory_avg"}.get(name)
        hist = history.get(avg_key or key) if isinstance(history, dict) else None
        if isinstance(hist, list) and len(hist) >= 2:
            values = [_percent(v, f"{where}.history_7d.{avg_key or key}[{i}]") for i, v in enumerate(hist)]
            base = values[-1] or 1.0
            rel_per_day = slope_per_day(values) / base
            trend_source = f"least-squares line through {len(values)} daily values"
        elif _TREND_KEYS[name] in trend:
            rel_per_day = _percent(trend[_TREND_KEYS[name]], f"{where}.trend_7d.{_TREND_KEYS[name]}") / 100.0 / 7.0
            trend_source = f"{trend[_TREND_KEYS[name]]} over 7 days"
        else:
            rel_per_day, trend_source = 0.0, "no trend given"
        growth_per_day = level * rel_per_day           # percentage points per day
        if level >= limit:
            days = 0.0
        elif growth_per_day > 0:
            days = (limit - level) / growth_per_day
        else:
            days = None
        days_danger = 0.0 if level >= DANGER_PCT else ((DANGER_PCT - level) / growth_per_day
                                                       if growth_per_day > 0 else None)
        resources.append({"resource": name, "level_pct": round(level, 1), "now": unit_now, "limit_pct": limit,
                          "headroom_pct": round(limit - level, 1), "trend_pct_per_day": round(rel_per_day * 100, 2),
                          "growth_points_per_day": round(growth_per_day, 2), "trend_source": trend_source,
                          "days_to_80pct": None if days_danger is None else round(days_danger, 1),
                          "days_to_limit": None if days is None else round(days, 1), "limit_means": meaning})

    def scale_text(util: float, why: str) -> str:
        if pods is None:
            return f"add capacity: {why}"
        need = pods_for(pods, util, config.target_util_pct)
        if need <= pods:
            return f"raise per-pod limits: {why}"
        cost = metrics.get("cost_per_pod_month")
        cost_text = f" (≈ +${(need - pods) * float(cost):,.0f}/month)" if isinstance(cost, (int, float)) \
            and not isinstance(cost, bool) else ""
        return f"scale from {pods} to {need} pods{cost_text}: {why}"

    for r in resources:
        name, level, days = r["resource"], r["level_pct"], r["days_to_limit"]
        if name in ("cpu", "memory") and (level >= 90 or (days is not None and days <= config.urgent_days)):
            when = "already at the limit" if days == 0 else f"{days:g} days to {r['limit_pct']:g}%" \
                if days is not None else "no growth"
            recs.append({"level": "URGENT", "resource": name, "action": scale_text(
                level, f"{name} peak {level:g}% ({when}, {r['limit_means']}); sized for a "
                       f"{config.target_util_pct:g}% peak")})
        elif name in ("disk", "connections") and (level >= 85 or (days is not None and days <= config.urgent_days)):
            recs.append({"level": "URGENT", "resource": name,
                         "action": f"{name} at {r['now']} ({'%g days' % days if days is not None else 'flat'} to "
                                   f"{r['limit_pct']:g}%): expand before {r['limit_means']}"})
        elif level >= DANGER_PCT or (days is not None and days <= config.planned_days):
            action = scale_text(level, f"{name} {level:g}%, {days:g} days to the limit at "
                                       f"{r['trend_pct_per_day']:g}%/day") \
                if name in ("cpu", "memory") and days is not None else \
                f"{name} at {r['now']} is in the danger zone (>= {DANGER_PCT:g}%): schedule headroom"
            recs.append({"level": "PLANNED", "resource": name, "action": action})
        elif level >= 60 or r["trend_pct_per_day"] > 0.5:
            recs.append({"level": "WATCH", "resource": name,
                         "action": f"{name} at {r['now']}, {r['trend_pct_per_day']:+g}%/day"
                                   + (f": {days:g} days to the limit" if days is not None else "")})
    if upcoming["multiplier"] and pods is not None:
        peaks = [(n, pct[k]) for n, k in (("cpu", "cpu_peak"), ("memory", "memory_peak")) if k in pct]
        if peaks:
            name, peak = max(peaks, key=lambda p: p[1])
            need = pods_for(pods, peak * upcoming["multiplier"], config.target_util_pct)
            in_days = upcoming["in_days"]
            level = "URGENT" if in_days is not None and in_days <= config.urgent_days else "PLANNED"
            recs.append({"level": level, "resource": name,
                         "action": f"scale from {pods} to {need} pods before the expected {upcoming['multiplier']:g}x "
                                   f"traffic{' in %g days' % in_days if in_days is not None else ''}: {name} peak "
                                   f"{peak:g}% x {upcoming['multiplier']:g} = {peak * upcoming['multiplier']:g}% of "
                                   f"today's pods, sized for {config.target_util_pct:g}%"})
    order = {"URGENT": 0, "PLANNED": 1, "WATCH": 2}
    recs.sort(key=lambda r: order[r["level"]])
    soonest = min((r["days_to_limit"] for r in resources if r["days_to_limit"] is not None), default=None)
    return {"service": service, "pods": pods, "requests_per_second": rps, "resources": resources,
            "upcoming": {**upcoming, "text": upcoming_text or None}, "recommendations": recs,
            "status": recs[0]["level"] if recs else "OK", "soonest_limit_days": soonest}


def team_summary(analyses: list[dict]) -> dict:
    """Across services: counts per level, services near limits, the prioritised action list."""
    counts = {level: sum(1 for a in analyses for r in a["recommendations"] if r["level"] == level)
              for level in ("URGENT", "PLANNED", "WATCH")}
    hot = sorted({a["service"] for a in analyses for r in a["resources"]
                  if r["resource"] in ("cpu", "memory") and r["level_pct"] >= DANGER_PCT})
    actions = [{"service": a["service"], **r} for a in analyses for r in a["recommendations"]
               if r["level"] != "WATCH"]
    actions.sort(key=lambda r: {"URGENT": 0, "PLANNED": 1}[r["level"]])
    return {"services": len(analyses), "counts": counts, "services_above_80pct": hot,
            "cross_service_risk": (f"{len(hot)} services run above {DANGER_PCT:g}% at peak ({', '.join(hot)}): "
                                   "a shared traffic event would hit all of them at once") if len(hot) >= 2 else None,
            "actions": actions}


def analyse(body, config: AdvisorConfig) -> dict:
    """POST body: one service_metrics object, a list of them, or {"services": [...]}."""
    if isinstance(body, dict) and "services" in body:
        items, prefix = body["services"], "services"
    elif isinstance(body, list):
        items, prefix = body, ""
    else:
        items, prefix = [body], None
    if not isinstance(items, list) or not items:
        raise PayloadError("services", "must be a non-empty list of service_metrics objects")
    analyses = [analyse_service(m, config, f"{prefix}[{i}]" if prefix is not None else "service_metrics")
                for i, m in enumerate(items)]
    return {"services": analyses, "summary": team_summary(analyses)}


def observed_metrics(hourly: list[tuple[str, int, int, int, float]], now_s: float, days: float = 7.0,
                     limits_rps: dict | None = None) -> list[dict]:
    """Hourly (service, hour_s, requests, errors, mean_ms) rows -> per-service rate trend and time to limit.

    Missing hours count as zero requests. ``limits_rps``: service -> the highest sustainable rate.
    """
    by_service: dict[str, dict[int, tuple[int, int, float]]] = {}
    for service, hour_s, n, errors, mean_ms in hourly:
        by_service.setdefault(service, {})[hour_s] = (n, errors or 0, mean_ms or 0.0)
    out = []
    last_hour = int(now_s // 3600) * 3600
    first_hour = last_hour - int(days * 24 - 1) * 3600
    for service, hours in sorted(by_service.items()):
        start = max(first_hour, min(hours))
        xs = list(range(start, last_hour + 1, 3600))
        rates = [hours.get(h, (0, 0, 0.0))[0] / 3600.0 for h in xs]
        # the current hour is partial: judge its rate over the elapsed part
        elapsed = max(60.0, now_s - last_hour)
        if xs and xs[-1] == last_hour:
            rates[-1] = hours.get(last_hour, (0, 0, 0.0))[0] / elapsed
        slope_per_hour = slope_per_day(rates) if len(rates) >= 2 else 0.0
        current = rates[-1] if rates else 0.0
        peak = max(rates) if rates else 0.0
        total = sum(h[0] for h in hours.values())
        errors = sum(h[1] for h in hours.values())
        mean_ms = sum(h[0] * h[2] for h in hours.values()) / total if total else 0.0
        limit = (limits_rps or {}).get(service)
        days_to_limit = None
        if limit:
            if peak >= limit:
                days_to_limit = 0.0
            elif slope_per_hour > 0:
                days_to_limit = round((limit - peak) / slope_per_hour / 24.0, 1)
        level = "OK"
        if limit:
            headroom = (limit - peak) / limit * 100.0
            level = "URGENT" if days_to_limit is not None and days_to_limit <= 7 or headroom < 10 else \
                "PLANNED" if days_to_limit is not None and days_to_limit <= 42 or headroom < 20 else \
                "WATCH" if headroom < 40 else "OK"
        out.append({"service": service, "hours_observed": len(xs), "requests": total,
                    "error_ratio": round(errors / total, 4) if total else 0.0, "mean_latency_ms": round(mean_ms, 2),
                    "current_rps": round(current, 3), "peak_hourly_rps": round(peak, 3),
                    "trend_rps_per_day": round(slope_per_hour * 24.0, 4),
                    "trend_pct_per_day": round(slope_per_hour * 24.0 / peak * 100.0, 2) if peak else 0.0,
                    "limit_rps": limit, "headroom_pct": round((limit - peak) / limit * 100.0, 1) if limit else None,
                    "days_to_limit": days_to_limit, "status": level})
    return out
