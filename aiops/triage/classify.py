"""Alert classification: priority P1-P4, category, users affected and confidence, with reasons.

A registered classifier (``CLASSIFIERS``) decides; an optional
``refine(facts) -> dict`` hook (a configured model, see ``llm.features``) may
change its answer, validated against ``CLASSIFICATION_SCHEMA``, and can
never lower a P1 the rules found. Pure functions.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from aiops.triage.intake import SEVERITY_PRIORITY, Alert

PRIORITIES = ("P1", "P2", "P3", "P4")
CATEGORIES = ("outage", "degradation", "resource_pressure", "configuration", "security", "info")
USERS_AFFECTED = ("none", "few", "many", "all")
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


def as_classifier(raw) -> str:
    """Parser of ``AIOPS_ALERT_CLASSIFIER``: a name of ``CLASSIFIERS``."""
    get_classifier(str(raw))
    return str(raw)


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
