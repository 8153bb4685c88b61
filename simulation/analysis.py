"""Hypotheses, actions and a what-if comparison, from evidence. Pure and deterministic.

Evidence comes from what the analysis detected (the anomalies of the
incident: pushed-metric anomalies with their deviation in σ, span anomalies
such as latency, errors and timeouts) and from the context an on-call
engineer has (recent deployments, dependency states). It never reads a
scenario's expected outcome.

1. ``evidence_from(anomalies, context, onset_s)`` turns each into an
   ``Evidence`` with a *signal* (memory, cpu, db, restarts, ...), a direction
   and a strength in [0, 1]. A metric's signal comes from its name through
   the ``SIGNALS`` registry of patterns.
2. Each hypothesis in ``HYPOTHESES`` weighs the signals it explains;
   its confidence is the noisy-OR ``1 - Π(1 - weight · strength)`` of its
   supporting evidence. Ranking: confidence, then the catalogue order.
3. Each action in ``ACTIONS`` fits some hypotheses; its score is the best
   ``confidence · fit``. It carries a risk level, a blast radius and whether a
   human must approve it.
4. ``what_if`` compares the actions: for each anomalous metric its expected
   value after the action (the deviation shrinks by the action's efficacy on
   that signal) and the time to recover.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from simulation.writers import hypothesis_text

# -- evidence -------------------------------------------------------------------------

#: signal -> metric-name pattern; the first match wins, so specific signals come first.
SIGNALS: dict[str, re.Pattern] = {
    "circuit_breaker": re.compile(r"circuit|breaker"),
    "external": re.compile(r"external|upstream|gateway|third_party|vendor"),
    "db_connections": re.compile(r"(db|database|pool).*conn|conn.*(db|database|pool)"),
    "db": re.compile(r"\bdb|db_|database|query|sql"),
    "restarts": re.compile(r"restart|crash|oom_kill"),
    "ready": re.compile(r"ready|available_(pods|replicas)|replicas_available"),
    "gc": re.compile(r"(^|_)gc(_|$)|garbage"),
    "memory": re.compile(r"mem|heap|rss|alloc"),
    "cpu": re.compile(r"cpu"),
    "errors": re.compile(r"5xx|error|fail"),
    "traffic": re.compile(r"requests?_per_s|request_rate|rps|qps|throughput"),
    "latency": re.compile(r"latency|duration|response_time|p9\d"),
}
#: span anomaly type -> (signal, direction)
SPAN_SIGNALS = {"latency_anomaly": ("latency", "up"), "error_spike": ("errors", "up"),
                "timeout": ("timeouts", "up"), "traffic_surge": ("traffic", "up"),
                "traffic_drop": ("traffic", "down")}
#: deployments older than this (minutes before onset) are no evidence
DEPLOYMENT_HORIZON_MIN = 60.0


def signal_of(metric_name: str) -> str | None:
    """The signal a metric name speaks to, or None."""
    name = metric_name.lower()
    for signal, pattern in SIGNALS.items():
        if pattern.search(name):
            return signal
    return None


@dataclass(frozen=True)
class Evidence:
    """One observation: ``kind`` metric|span|context, the ``signal`` it speaks to,
    ``direction`` up|down|present, ``strength`` in [0, 1], a ``detail`` sentence."""

    kind: str
    signal: str
    direction: str
    strength: float
    detail: str
    source: str = ""
    value: float | None = None
    baseline: float | None = None
    deviation_sigma: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def evidence_from(anomalies: list[dict], context: dict, onset_s: float | None = None) -> list[Evidence]:
    """Evidence from incident anomalies (``Anomaly.to_dict`` shapes) and the
    scenario context (``recent_deployments``, ``dependencies``)."""
    out: list[Evidence] = []
    for a in sorted(anomalies, key=lambda a: (a.get("service", ""), a.get("endpoint", ""), a.get("type", ""))):
        metric = a.get("metric")
        if metric:
            signal = signal_of(metric["name"])
            if signal is None:
                continue
            sigma = metric.get("deviation_sigma")
            strength = 1.0 if sigma is None else min(1.0, abs(sigma) / 5.0)
            out.append(Evidence("metric", signal, metric["direction"], round(strength, 3), a["description"],
                                f"{a['service']}/{metric['name']}", metric["value"], metric["baseline_mean"],
                                sigma))
        elif a.get("type") in SPAN_SIGNALS:
            signal, direction = SPAN_SIGNALS[a["type"]]
            strength = min(1.0, max(0.3, math.log10(max(a.get("score", 1.0), 1.0)) / 2.0 + 0.3))
            out.append(Evidence("span", signal, direction, round(strength, 3), a.get("description", a["type"]),
                                f"{a['service']} {a['endpoint']}"))
    for d in context.get("recent_deployments", []):
        minutes = float(d.get("minutes_before", DEPLOYMENT_HORIZON_MIN))
        if minutes < DEPLOYMENT_HORIZON_MIN:
            strength = round(1.0 - minutes / DEPLOYMENT_HORIZON_MIN, 3)
            out.append(Evidence("context", "deployment", "present", strength,
                                f"deployment {d['version']} {minutes:g} min before the onset: {d.get('change', '')}",
                                d["version"]))
    for dep in context.get("dependencies", []):
        if dep.get("state", "healthy") != "healthy":
            out.append(Evidence("context", "dependency_state", "present", 1.0,
                                f"{'external ' if dep.get('external') else ''}dependency {dep['name']}: "
                                f"{dep['state'].replace('_', ' ')}", dep["name"]))
    return out


# -- hypotheses -----------------------------------------------------------------------


@dataclass(frozen=True)
class HypothesisRule:
    """A root-cause category and the (signal, direction, weight) it explains."""

    category: str
    title: str
    supports: tuple[tuple[str, str, float], ...]


HYPOTHESES: dict[str, HypothesisRule] = {r.category: r for r in (
    HypothesisRule("memory_leak", "Memory leak", (
        ("memory", "up", 0.6), ("gc", "up", 0.35), ("restarts", "up", 0.15), ("deployment", "present", 0.2))),
    HypothesisRule("capacity_saturation", "Capacity saturation from a traffic surge", (
        ("cpu", "up", 0.45), ("traffic", "up", 0.5), ("latency", "up", 0.2))),
    HypothesisRule("database_performance", "Database performance degradation", (
        ("db", "up", 0.6), ("db_connections", "up", 0.35), ("latency", "up", 0.2),
        ("deployment", "present", 0.1))),
    HypothesisRule("bad_deployment", "Bad deployment", (
        ("restarts", "up", 0.5), ("ready", "down", 0.45), ("traffic", "down", 0.2),
        ("deployment", "present", 0.45), ("errors", "up", 0.1))),
    HypothesisRule("external_dependency_failure", "External dependency failure", (
        ("external", "up", 0.55), ("circuit_breaker", "up", 0.4), ("dependency_state", "present", 0.3),
        ("timeouts", "up", 0.4), ("errors", "up", 0.25))),
)}


@dataclass
class Hypothesis:
    category: str
    title: str
    confidence: float
    rank: int
    evidence: list[dict] = field(default_factory=list)
    explanation: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def rank_hypotheses(evidence: list[Evidence], min_confidence: float = 0.1) -> list[Hypothesis]:
    """Every hypothesis with confidence >= ``min_confidence``, best first."""
    out = []
    for order, rule in enumerate(HYPOTHESES.values()):
        used, miss = [], 1.0
        for signal, direction, weight in rule.supports:
            best = max((e for e in evidence if e.signal == signal and e.direction == direction),
                       key=lambda e: e.strength, default=None)
            if best is None:
                continue
            contribution = weight * best.strength
            miss *= 1.0 - contribution
            used.append({**best.to_dict(), "weight": weight, "contribution": round(contribution, 3)})
        confidence = round(1.0 - miss, 3)
        if confidence >= min_confidence:
            out.append((confidence, order, rule, used))
    out.sort(key=lambda t: (-t[0], t[1]))
    hypotheses = []
    for rank, (confidence, _, rule, used) in enumerate(out, 1):
        used.sort(key=lambda u: -u["contribution"])
        h = Hypothesis(rule.category, rule.title, confidence, rank, used)
        h.explanation = hypothesis_text(hypothesis_facts(h))
        hypotheses.append(h)
    return hypotheses


def hypothesis_facts(h: Hypothesis) -> dict:
    """The facts ``writers.hypothesis_text`` (or an LLM) writes from."""
    return {"title": h.title, "category": h.category, "confidence": h.confidence, "rank": h.rank,
            "evidence": [{"detail": e["detail"], "signal": e["signal"], "contribution": e["contribution"]}
                         for e in h.evidence]}


def refinement_schema(hypotheses: list[dict]) -> dict:
    """JSON Schema of a model's re-ranking of ``hypotheses``: an ``order`` of their categories."""
    categories = [h["category"] for h in hypotheses]
    return {"type": "object", "required": ["order"], "additionalProperties": False,
            "properties": {"order": {"type": "array", "items": {"type": "string", "enum": categories},
                                     "minItems": len(categories), "maxItems": len(categories)},
                           "reason": {"type": "string", "maxLength": 2000}}}


def apply_refinement(hypotheses: list[dict], refined: dict) -> list[dict]:
    """``hypotheses`` (ranked from the evidence) in the model's ``order``.

    The order must name every hypothesis exactly once, else ValueError. Only
    the ranks change: confidences and evidence stay what the evidence gave,
    and each hypothesis keeps its ``evidence_rank``.
    """
    order = refined.get("order")
    by_category = {h["category"]: h for h in hypotheses}
    if not isinstance(order, list) or sorted(order) != sorted(by_category):
        raise ValueError(f"order must name each of {sorted(by_category)} once, got {order!r}")
    out = []
    for rank, category in enumerate(order, 1):
        h = by_category[category]
        out.append({**h, "rank": rank, "evidence_rank": h["rank"], "ranked_by": "llm"})
    return out


# -- actions --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    """A remediation: ``fits`` its hypotheses (category -> fit in [0, 1]);
    ``efficacy`` per signal: share of the deviation it removes; ``recover_s``:
    time until the metrics are back; ``risk``: low|medium|high."""

    action_type: str
    title: str
    risk: str
    blast_radius: str
    recover_s: float
    fits: dict
    efficacy: dict
    caveat: str = ""
    requires_deployment: bool = False  #: only fits when a recent deployment is in evidence


ACTIONS: dict[str, ActionSpec] = {a.action_type: a for a in (
    ActionSpec("restart", "Rolling restart of {service}", "medium", "one pod of {service} at a time", 90.0,
               {"memory_leak": 0.9, "bad_deployment": 0.2},
               {"memory": 1.0, "gc": 1.0, "cpu": 0.3, "latency": 0.3},
               caveat="buys time only: a leak grows back at the rate observed"),
    ActionSpec("rollback", "Roll back {service} to the version before {deployment}", "medium",
               "every pod of {service} (reverts {deployment})", 300.0,
               {"bad_deployment": 1.0, "memory_leak": 0.8, "database_performance": 0.4},
               {"memory": 1.0, "gc": 1.0, "restarts": 1.0, "ready": 1.0, "traffic": 1.0, "errors": 0.9,
                "latency": 0.8, "cpu": 0.5, "db": 0.5, "db_connections": 0.5},
               requires_deployment=True),
    ActionSpec("scale", "Scale {service} out (add replicas)", "low", "adds capacity; no running pod is touched",
               180.0, {"capacity_saturation": 1.0, "memory_leak": 0.15},
               {"cpu": 0.7, "latency": 0.6, "errors": 0.3, "timeouts": 0.2}),
    ActionSpec("add_index", "Add the missing index on {database}", "high",
               "{database}: extra I/O and locks while the index builds", 600.0,
               {"database_performance": 0.9},
               {"db": 0.95, "db_connections": 0.85, "latency": 0.8}),
    ActionSpec("open_circuit_breaker", "Open the circuit breaker to {dependency}", "low",
               "calls to {dependency} fail fast and take the fallback path", 10.0,
               {"external_dependency_failure": 1.0},
               {"external": 0.95, "timeouts": 0.9, "latency": 0.8, "errors": 0.5}),
)}
RISK_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass
class Action:
    action_type: str
    title: str
    score: float
    rank: int
    risk_level: str
    blast_radius: str
    requires_approval: bool
    because: str
    time_to_recover_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def _names(context: dict, service: str) -> dict:
    deployments = sorted(context.get("recent_deployments", []), key=lambda d: d.get("minutes_before", 0))
    deps = context.get("dependencies", [])
    return {"service": service,
            "deployment": deployments[0]["version"] if deployments else "the last deployment",
            "database": next((d["name"] for d in deps if d.get("kind") == "database"), "the database"),
            "dependency": next((d["name"] for d in deps if d.get("external")),
                               next((d["name"] for d in deps), "the dependency"))}


def recommend_actions(hypotheses: list[Hypothesis], evidence: list[Evidence], context: dict, service: str,
                      min_score: float = 0.25, limit: int = 5) -> list[Action]:
    """Actions scored by the best ``confidence · fit`` over the hypotheses, best
    first (ties: lower risk, then catalogue order). Approval is required for
    high risk, and for anything that changes every pod (a rollback)."""
    names = _names(context, service)
    has_deployment = any(e.signal == "deployment" for e in evidence)
    scored = []
    for order, spec in enumerate(ACTIONS.values()):
        if spec.requires_deployment and not has_deployment:
            continue
        best = max(((h.confidence * spec.fits.get(h.category, 0.0), h) for h in hypotheses),
                   key=lambda t: t[0], default=(0.0, None))
        if best[1] is None or best[0] < min_score:
            continue
        scored.append((round(best[0], 3), RISK_RANK[spec.risk], order, spec, best[1]))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    actions = []
    for rank, (score, _, _, spec, h) in enumerate(scored[:limit], 1):
        blast = spec.blast_radius.format(**names)
        approval = spec.risk == "high" or spec.action_type == "rollback"
        actions.append(Action(spec.action_type, spec.title.format(**names), score, rank, spec.risk, blast, approval,
                              f"{h.title} ({h.confidence:.0%} confidence) x fit {spec.fits[h.category]:g}",
                              spec.recover_s))
    return actions


def what_if(actions: list[Action], evidence: list[Evidence]) -> list[dict]:
    """Per action: each anomalous metric's value now, expected after the action,
    the share of the total deviation it removes, and its time to recover."""
    metrics = [e for e in evidence if e.kind == "metric" and e.value is not None and e.baseline is not None]
    out = []
    for action in actions:
        spec = ACTIONS[action.action_type]
        effects, removed, total = [], 0.0, 0.0
        for e in metrics:
            efficacy = spec.efficacy.get(e.signal, 0.0)
            after = e.baseline + (e.value - e.baseline) * (1.0 - efficacy)
            effects.append({"metric": e.source, "now": round(e.value, 4), "baseline": round(e.baseline, 4),
                            "expected_after": round(after, 4), "efficacy": efficacy})
            removed += efficacy * e.strength
            total += e.strength
        spans = [e for e in evidence if e.kind == "span"]
        for e in spans:
            removed += spec.efficacy.get(e.signal, 0.0) * e.strength
            total += e.strength
        out.append({"action_type": action.action_type, "title": action.title, "risk_level": action.risk_level,
                    "time_to_recover_s": spec.recover_s,
                    "resolves_ratio": round(removed / total, 3) if total else 0.0,
                    "caveat": spec.caveat, "metrics": effects})
    return out


def analyse_evidence(anomalies: list[dict], context: dict, service: str) -> dict:
    """Evidence, hypotheses, actions and what-if in one JSON-ready dict."""
    evidence = evidence_from(anomalies, context)
    hypotheses = rank_hypotheses(evidence)
    actions = recommend_actions(hypotheses, evidence, context, service)
    return {"evidence": [e.to_dict() for e in evidence], "hypotheses": [h.to_dict() for h in hypotheses],
            "actions": [a.to_dict() for a in actions], "what_if": what_if(actions, evidence)}
