"""The replay in words: ``replay_facts(result) -> dict`` and ``write_narrative(facts) -> markdown``.

The facts dict holds every number and time the text uses (times as ISO 8601
UTC and ``HH:MM``); the writer is deterministic and invents nothing, so an
LLM given the same facts can be checked against it (task name
``replay_narrative``; this writer is its fallback).
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiops.replay.core import ReplayResult
from aiops.replay.zones import Zone
from telemetry.timefmt import iso

#: Metric names that count capacity (compared as whole units: "~6 pods").
CAPACITY_WORDS = ("pods", "replicas", "instances", "workers", "nodes", "tasks")
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
def _hhmm(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%H:%M")


def _is_capacity(metric: str) -> bool:
    return any(w in metric.lower() for w in CAPACITY_WORDS)


def _num(value: float) -> float:
    """Rounded for prose: 3 significant figures, whole numbers when >= 100."""
    if value is None:
        return None
    if abs(value) >= 100:
        return float(round(value))
    return float(f"{value:.3g}")


def _zone_fact(z: Zone, capacity: bool) -> dict:
    return {"service": z.service, "metric": z.metric, "direction": z.direction,
            "start": iso(z.start_s), "end": iso(z.end_s), "start_hhmm": _hhmm(z.start_s),
            "end_hhmm": _hhmm(z.end_s), "duration_min": round(z.duration_s / 60, 1),
            "expected_at_peak": round(z.peak_expected) if capacity else _num(z.peak_expected),
            "actual_at_peak": round(z.peak_actual) if capacity else _num(z.peak_actual),
            "peak_at_hhmm": _hhmm(z.peak_at_s),
            "peak_ratio": None if z.peak_ratio is None else round(z.peak_ratio, 1),
            "peak_excess": _num(z.peak_excess), "integrated_excess": _num(z.integrated_excess),
            "stayed_flat": abs(z.start_actual - z.peak_actual) <= 1e-9 * max(1.0, abs(z.peak_actual)),
            "capacity": capacity}


def replay_facts(result: ReplayResult) -> dict:
    """Everything the narrative may say, from the replay only."""
    inc = result.incident
    drivers = {m.key for m in result.metrics if m.driver}
    by_key = {}
    for z in result.zones:
        by_key.setdefault((z.service, z.metric), []).append(z)
    cascade = []
    for step in result.cascade:
        z = next(z for z in result.zones
                 if (z.service, z.metric, z.start_s) == (step.service, step.metric, step.start_s))
        cascade.append({**_zone_fact(z, _is_capacity(z.metric)), "lag_s": step.lag_s,
                        "deviating_metrics": step.metrics})
    zones = [_zone_fact(z, _is_capacity(z.metric)) for z in result.zones if (z.service, z.metric) not in drivers]
    load = [_zone_fact(z, False) for z in result.zones if (z.service, z.metric) in drivers]
    breaches = [{**b.to_dict(), "start_hhmm": _hhmm(b.start_s), "end_hhmm": _hhmm(b.end_s),
                 "duration_min": round(b.duration_s / 60, 1), "worst_actual": _num(b.worst_actual),
                 "expected_at_worst": _num(b.expected_at_worst)} for b in result.breaches]
    trust = [{"service": m.service, "metric": m.metric, "trust": m.forecast.backtest.trust,
              "mape_ratio": None if m.forecast.backtest.mape_ratio is None
              else round(m.forecast.backtest.mape_ratio, 3),
              "coverage_ratio": round(m.forecast.backtest.coverage_ratio, 3)} for m in result.metrics]
    insights = []
    if cascade:
        c = cascade[0]
        insights.append({"kind": "start_here", "service": c["service"], "metric": c["metric"],
                         "start_hhmm": c["start_hhmm"],
                         "lead_s": cascade[1]["lag_s"] if len(cascade) > 1 else None,
                         "next_service": cascade[1]["service"] if len(cascade) > 1 else None})
    for z in zones:
        if z["capacity"] and z["direction"] == "below":
            insights.append({"kind": "capacity_shortfall", "service": z["service"], "metric": z["metric"],
                             "expected": z["expected_at_peak"], "actual": z["actual_at_peak"],
                             "start_hhmm": z["start_hhmm"], "end_hhmm": z["end_hhmm"]})
    for c in cascade[1:]:
        insights.append({"kind": "downstream_impact", "service": c["service"], "metric": c["metric"],
                         "from_service": cascade[0]["service"], "lag_s": c["lag_s"], "peak_ratio": c["peak_ratio"]})
    for b in breaches:
        if not b["expected_would_breach"]:
            insights.append({"kind": "avoidable_breach", "sla": b["sla"], "duration_min": b["duration_min"],
                             "expected_at_worst": b["expected_at_worst"], "worst_actual": b["worst_actual"]})
    if load:
        insights.append({"kind": "unusual_load", "zones": [(z["service"], z["metric"], z["direction"],
                                                           z["peak_ratio"]) for z in load]})
    low = [t for t in trust if t["trust"] == "low"]
    if low:
        insights.append({"kind": "low_trust", "metrics": [f"{t['service']}:{t['metric']}" for t in low]})
    return {
        "incident": {"id": inc.incident_id, "title": inc.title, "start": iso(inc.start_s), "end": iso(inc.end_s),
                     "start_hhmm": _hhmm(inc.start_s), "end_hhmm": _hhmm(inc.end_s),
                     "date": datetime.fromtimestamp(inc.start_s, timezone.utc).strftime("%Y-%m-%d"),
                     "services": inc.services, "slas": [s.label() for s in inc.slas]},
        "window": {"start_hhmm": _hhmm(result.window_start_s), "end_hhmm": _hhmm(result.window_end_s),
                   "history_days": round((result.window_start_s - result.history_start_s) / 86400, 2),
                   "step_s": result.step_s},
        "model": {"name": _METHOD_NAMES.get(result.method, result.method),
                  "coverage": result.metrics[0].forecast.backtest.nominal_coverage if result.metrics else None,
                  "metrics": trust},
        "candidate_cause": cascade[0] if cascade else None,
        "cascade": cascade,
        "zones": zones,
        "load_deviations": load,
        "sla_breaches": breaches,
        "insights": insights,
        "skipped_metrics": result.skipped,
    }


_METHOD_NAMES = {"gradient_boosting": "HistGradientBoostingRegressor with a locally adaptive split-conformal band",
                 "seasonal_quantile": "seasonal-naive rolling-quantile band (7 days, same minute +-15)"}


def _lag_words(lag_s: float) -> str:
    minutes = round(lag_s / 60)
    if minutes == 0:
        return f"{lag_s:.0f} s later" if lag_s else "at the same time"
    word = _NUMBER_WORDS[minutes] if minutes < len(_NUMBER_WORDS) else str(minutes)
    return f"{word} minute{'s' if minutes != 1 else ''} later"


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
    return str(v)


def _ratio(v) -> str:
    return "n/a" if v is None else f"{_fmt(v)}x"


def _history(days: float) -> str:
    return f"{_fmt(days)} days" if days >= 2 else f"{_fmt(round(days * 24, 1))} hours"


def _expected_vs_actual(z: dict) -> str:
    """"inventory should have had ~6 pods; it stayed at 2" / "checkout's latency_p95_ms rose 4.6x"."""
    if z["capacity"]:
        verb = "stayed at" if z["stayed_flat"] else "had"
        return (f"{z['service']} should have had ~{_fmt(z['expected_at_peak'])} {z['metric']}; "
                f"it {verb} {_fmt(z['actual_at_peak'])}")
    change = (f"rose {_fmt(z['peak_ratio'])}x" if z["direction"] == "above" else
              f"fell to {_fmt(z['peak_ratio'])}x") if z["peak_ratio"] is not None else \
        ("rose" if z["direction"] == "above" else "fell")
    return (f"{z['service']}'s {z['metric']} {change} (expected ~{_fmt(z['expected_at_peak'])}, "
            f"actual {_fmt(z['actual_at_peak'])} at {z['peak_at_hhmm']})")


def write_narrative(facts: dict) -> str:
    """Deterministic markdown from :func:`replay_facts` output."""
    inc, win = facts["incident"], facts["window"]
    lines = [f"# Resilience replay: {inc['id']}", ""]
    if inc.get("title"):
        lines += [f"*{inc['title']}*", ""]
    lines += [f"Incident {inc['start_hhmm']}–{inc['end_hhmm']} UTC on {inc['date']} "
              f"(services: {', '.join(inc['services'])}). Replayed {win['start_hhmm']}–{win['end_hhmm']} "
              f"against a model trained on {_history(win['history_days'])} of history before it.", ""]
    lines += ["## What should have happened, and what did", ""]
    cascade = facts["cascade"]
    if not cascade:
        lines += ["No metric of the affected services left its expected band for long enough to form a "
                  "deviation zone: the replay finds the incident within normal behaviour.", ""]
    else:
        first = cascade[0]
        sentence = f"At {first['start_hhmm']} {_expected_vs_actual(first)}"
        if len(cascade) > 1:
            nxt = cascade[1]
            sentence += f", and {_lag_words(nxt['lag_s'])} {_expected_vs_actual(nxt)}"
        lines += [sentence + ".", ""]
        lines += [f"Candidate cause: **{first['service']} {first['metric']}** (the first to deviate). "
                  f"Cascade order: " + " → ".join(
                      f"{c['service']} ({c['metric']}, {c['start_hhmm']}"
                      + (f", +{_fmt(round(c['lag_s'] / 60, 1))} min" if c["lag_s"] else "") + ")" for c in cascade)
                  + ".", ""]
    if facts["zones"]:
        lines += ["| service | metric | deviation | from | to | expected | actual | peak ratio | "
                  "integrated excess |", "|---|---|---|---|---|---|---|---|---|"]
        for z in facts["zones"]:
            lines.append(f"| {z['service']} | {z['metric']} | {z['direction']} band | {z['start_hhmm']} | "
                         f"{z['end_hhmm']} | {_fmt(z['expected_at_peak'])} | {_fmt(z['actual_at_peak'])} | "
                         f"{_ratio(z['peak_ratio'])} | {_fmt(z['integrated_excess'])} |")
        lines.append("")
    if facts["load_deviations"]:
        lines += ["Load itself was unusual: " + "; ".join(
            f"{z['service']} {z['metric']} {z['direction']} its band {z['start_hhmm']}–{z['end_hhmm']} "
            f"(peak {_ratio(z['peak_ratio'])} expected)" for z in facts["load_deviations"]) + ".", ""]
    lines += ["## SLA breaches", ""]
    if not inc["slas"]:
        lines += ["No SLA was given for this incident.", ""]
    elif not facts["sla_breaches"]:
        lines += [f"None: {', '.join(inc['slas'])} held throughout the replay.", ""]
    else:
        for b in facts["sla_breaches"]:
            verdict = ("normal behaviour would have breached it too" if b["expected_would_breach"]
                       else "normal behaviour would have held it")
            lines.append(f"- `{b['sla']}` broken {b['start_hhmm']}–{b['end_hhmm']} ({_fmt(b['duration_min'])} min); "
                         f"worst {_fmt(b['worst_actual'])} where ~{_fmt(b['expected_at_worst'])} was expected: "
                         f"{verdict}.")
        total = sum(b["duration_min"] for b in facts["sla_breaches"])
        lines += ["", f"SLA time in breach: {_fmt(round(total, 1))} min in total.", ""]
    lines += ["## Actionable insights", ""]
    n = 0
    for item in facts["insights"]:
        text = _insight(item)
        if text:
            n += 1
            lines.append(f"{n}. {text}")
    if n == 0:
        lines.append("Nothing to act on: the replay found no deviation.")
    lines += ["", "## How far to trust the replay", ""]
    model = facts["model"]
    lines.append(f"Model: {model['name']}, nominal band coverage {_fmt(model['coverage'])}. "
                 "Backtest on held-out history:")
    lines.append("")
    lines += ["| service | metric | error (MAPE) | band coverage | trust |", "|---|---|---|---|---|"]
    for t in model["metrics"]:
        mape = "n/a" if t["mape_ratio"] is None else f"{t['mape_ratio']:.1%}"
        lines.append(f"| {t['service']} | {t['metric']} | {mape} | {t['coverage_ratio']:.1%} | {t['trust']} |")
    if facts.get("skipped_metrics"):
        lines += ["", "Not replayed: " + "; ".join(f"{s['service']}:{s['metric']} ({s['reason']})"
                                                    for s in facts["skipped_metrics"]) + "."]
    return "\n".join(lines) + "\n"


def _insight(item: dict) -> str | None:
    kind = item["kind"]
    if kind == "start_here":
        text = (f"Start the investigation at {item['service']} {item['metric']}: it deviated first, at "
                f"{item['start_hhmm']}")
        if item["next_service"]:
            text += f", {_fmt(round(item['lead_s'] / 60, 1))} min before {item['next_service']}"
        return text + "."
    if kind == "capacity_shortfall":
        return (f"{item['service']} ran {item['metric']} at {_fmt(item['actual'])} where ~{_fmt(item['expected'])} "
                f"were expected ({item['start_hhmm']}–{item['end_hhmm']}): check the autoscaler (its events, "
                "limits and quotas in that window) and alert when desired and actual capacity diverge.")
    if kind == "downstream_impact":
        ratio = f" ({_fmt(item['peak_ratio'])}x at peak)" if item["peak_ratio"] is not None else ""
        return (f"{item['service']} {item['metric']} followed {item['from_service']} after "
                f"{_fmt(round(item['lag_s'] / 60, 1))} min{ratio}: bound its calls to {item['from_service']} "
                "with timeouts and a circuit breaker so that a slow dependency cannot hold its workers.")
    if kind == "avoidable_breach":
        return (f"`{item['sla']}` was breached for {_fmt(item['duration_min'])} min although the model expected "
                f"~{_fmt(item['expected_at_worst'])} at its worst ({_fmt(item['worst_actual'])} observed): the "
                "breach was caused by the deviation, not by normal load.")
    if kind == "unusual_load":
        return "Load left its expected band (" + "; ".join(
            f"{s} {m} {d}, {_ratio(r)}" for s, m, d, r in item["zones"]) + "): review capacity planning for it."
    if kind == "low_trust":
        return ("Treat the replay of " + ", ".join(item["metrics"]) + " with care: its backtest error or "
                "coverage is poor (more or cleaner history helps).")
    return None
