"""Deterministic writers: pure functions ``facts -> markdown``.

Every number, name, time and id in their output comes from the facts dict
(``llm.facts``); the fixed words are the document's frame and generic
first-response guidance chosen by the kind of failure. They are the
fallback of every LLM call and what a user without a model reads.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from llm.facts import customer_facts, parse_iso

AUDIENCES = ("engineering", "management", "customer")
POSTMORTEM_SECTIONS = ("Summary", "Impact", "Timeline", "Root Cause Analysis", "What Went Well",
                       "What Didn't Go Well", "Action Items", "Lessons Learned")


# -- formatting helpers -----------------------------------------------------------------

def pct(ratio: float | None, digits: int = 1) -> str:
    if ratio is None:
        return "n/a"
    text = f"{ratio * 100:.{digits}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def minutes(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value < 1:
        return f"{value * 60:.0f} s"
    if value < 120:
        return f"{value:g} min"
    return f"{value / 60:.1f} h"


def clock(iso: str | None) -> str:
    """``HH:MM:SS UTC`` of an ISO time (the text as given when it is not ISO)."""
    epoch = parse_iso(iso)
    if epoch is None:
        return iso or "unknown"
    return datetime.fromtimestamp(epoch, tz=_utc()).strftime("%H:%M:%S UTC")


def stamp(iso: str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` of an ISO time (as given when not ISO)."""
    epoch = parse_iso(iso)
    if epoch is None:
        return iso or "unknown"
    return datetime.fromtimestamp(epoch, tz=_utc()).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utc():
    return timezone.utc


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def root_label(facts: dict) -> str:
    rc = facts["root_cause"]
    if rc.get("endpoint"):
        return rc["endpoint"] if " " in rc["endpoint"] or not rc.get("service") or len(facts["services"]) <= 1 \
            else f"{rc['service']} {rc['endpoint']}"
    return rc.get("service") or ", ".join(facts["services"])


def signal_line(s: dict) -> str:
    """One anomaly with its numbers."""
    if s["type"] == "error_spike":
        peak = s["peak_deviation"]
        return (f"{s['kind']} on {s['endpoint']}: {pct(s['error_ratio'])} of {s['request_count']} requests failing "
                f"in the last window (baseline {pct(s['baseline_error_ratio'])}"
                + (f", peak {peak:g}%" if peak is not None else "") + ")")
    if s["type"] == "latency_anomaly":
        return (f"{s['kind']} on {s['endpoint']}: median {_ms(s['current_ms'])} vs baseline {_ms(s['baseline_ms'])} "
                f"({s['latency_ratio']:g}x" + (f", peak {s['peak_deviation']:g}x" if s["peak_deviation"] else "") + ")")
    if s["type"] == "timeout":
        return f"{s['kind']} on {s['endpoint']}: {s['description']}"
    return f"{s['kind']} on {s['endpoint']}: {s['description']}"


def _top_error(facts: dict) -> dict | None:
    errors = facts.get("errors") or []
    root = root_label(facts)
    own = [e for e in errors if e["endpoint"] == root]
    return (own or errors or [None])[0]


def top_errors(facts: dict, limit: int = 5) -> list[dict]:
    """The most frequent error of each endpoint (errors are sorted by count)."""
    seen, out = set(), []
    for e in facts.get("errors") or []:
        if e["endpoint"] not in seen:
            seen.add(e["endpoint"])
            out.append(e)
    return out[:limit]


def _chain(t: dict) -> str:
    return " → ".join(t["chain"]) if t["chain"] else t["root_endpoint"] or "?"


def first_actions(facts: dict) -> list[str]:
    """What the on-call engineer should do first, by the kind of failure."""
    rc, root = facts["root_cause"], root_label(facts)
    reason = rc.get("reason")
    actions = []
    top = _top_error(facts)
    if reason == "error" or (reason is None and top):
        if top:
            actions.append(f"Look at the top error on {top['endpoint']}: `{top['type']}: {top['message']}` "
                           f"({top['count']} in the last window).")
        actions.append(f"Check what changed on {root} just before {clock(facts['started_at'])} (deploy, config, "
                       "dependency) and roll it back if it matches.")
    elif reason == "latency":
        actions.append(f"Compare {root}'s own time with its callees in a sample trace; look for saturation "
                       "(CPU, connection pool, locks) or a slow dependency.")
        actions.append(f"Shed load or scale {root}; make sure its callers time out before their users do.")
    elif reason == "no_response":
        actions.append(f"{root} stopped answering its callers: check that it is up and not hung "
                       "(worker count, thread dump), and restart the hung workers.")
        actions.append(f"Give callers of {root} a timeout and a fallback so they fail fast.")
    elif facts.get("source") == "user":
        if facts.get("fix_applied"):
            actions.append(f"Confirm the mitigation holds: {facts['fix_applied']}")
    else:
        actions.append(f"Confirm whether the change on {root} is expected (campaign, bot, upstream outage).")
    if facts.get("sample_traces"):
        trace_id = facts["sample_traces"][0]["trace_id"]
        actions.append(f"Open sample trace {trace_id}: `curl -s localhost:5000/aiops/traces/{trace_id}`.")
    if facts.get("status") == "active" and facts.get("incident_id"):
        actions.append(f"Acknowledge it: `curl -s -X POST localhost:5000/aiops/incidents/{facts['incident_id']}"
                       "/acknowledge`.")
    return actions


def _duration_phrase(facts: dict) -> str:
    if facts.get("ongoing"):
        return f"ongoing for {minutes(facts['duration_minutes'])}"
    return f"lasted {minutes(facts['duration_minutes'])}"


# -- narrative ----------------------------------------------------------------------------

def narrative(facts: dict) -> str:
    """What happened and when, the root cause with evidence, the blast radius, what to do first."""
    rc = facts["root_cause"]
    lines = [f"# {facts['incident_id'] or 'Incident'}: {facts['title']}", "",
             f"**Severity** {facts['severity']} ({facts['priority']}) · **Status** {facts['status']} · "
             f"**Started** {stamp(facts['started_at'])} · {_duration_phrase(facts).capitalize()}", "",
             "## What happened", ""]
    story = f"At {clock(facts['started_at'])} the analysis opened this incident: {rc['description']}."
    if facts.get("last_detected_at") and facts["last_detected_at"] != facts["started_at"]:
        story += f" It was last seen at {clock(facts['last_detected_at'])}."
    if facts.get("acknowledged_at"):
        story += (f" It was acknowledged at {clock(facts['acknowledged_at'])}, "
                  f"{minutes(facts['time_to_acknowledge_minutes'])} after it opened.")
    if facts.get("resolved_at"):
        story += f" It was resolved at {clock(facts['resolved_at'])}."
    lines += [story, ""]
    if facts["timeline"]:
        lines += [f"- {clock(e['at'])} {('**' + e['event'] + '** ') if e['event'] else ''}{e['detail']}"
                  for e in facts["timeline"]] + [""]
    lines += ["## Root cause", ""]
    confidence = f" (confidence {pct(rc['confidence'], 0)})" if rc.get("confidence") is not None else ""
    lines += [f"**{root_label(facts)}**{confidence}: {rc['description']}.", "", "Evidence:", ""]
    evidence = [signal_line(s) for s in facts["signals"]]
    for e in top_errors(facts):
        evidence.append(f"error `{e['type']}: {e['message']}` ×{e['count']} on {e['endpoint']}")
    for t in facts["sample_traces"][:3]:
        evidence.append(f"trace `{t['trace_id']}`: {_chain(t)} "
                        f"(entry {t['entry_endpoint']} → HTTP {t['entry_status']})")
    for key, value in (facts.get("data_points") or {}).items():
        evidence.append(f"{key.replace('_', ' ')}: {value}")
    lines += [f"- {item}" for item in evidence] or ["- (no measurements recorded)"]
    lines += ["", "## Blast radius", ""]
    if facts["endpoints"]:
        lines.append(f"- {len(facts['endpoints'])} endpoint(s) affected: {', '.join(facts['endpoints'])} "
                     f"(root cause first)")
    lines.append(f"- Service(s): {', '.join(facts['services'])}")
    if facts["entry_endpoints"]:
        lines.append(f"- Entry points in the sample traces: {', '.join(facts['entry_endpoints'])}")
    if facts.get("total_traces"):
        lines.append(f"- {facts['total_traces']} affected trace(s)")
    if facts.get("recurrence"):
        r = facts["recurrence"]
        lines.append(f"- Recurring: {r['summary']} (previous: {', '.join(r['previous_incidents'])})")
    lines += ["", "## What to do first", ""]
    lines += [f"{i}. {a}" for i, a in enumerate(first_actions(facts), 1)]
    return "\n".join(lines) + "\n"


# -- on-call brief ------------------------------------------------------------------------

def brief(facts: dict) -> str:
    """Phone-sized: ``P1 — what. impact. cause. runbook. suggested fix.``"""
    rc = facts["root_cause"]
    root = root_label(facts)
    kinds = sorted({s["kind"] for s in facts["signals"] if s["is_root"]}) or \
        sorted({s["kind"] for s in facts["signals"]})
    what = f"{root} {' + '.join(kinds)}" if kinds else facts["title"]
    head = f"{facts['priority']} — {what}"
    peak = facts.get("peak_error_ratio")
    if peak is not None:
        head += f", up to {pct(peak, 0)} errors"
    elif facts.get("peak_latency_ratio"):
        head += f", {facts['peak_latency_ratio']:g}x slower"
    head += f" ({facts['status']}, {_duration_phrase(facts)})."
    impact = []
    if facts["endpoints"]:
        impact.append(f"{len(facts['endpoints'])} endpoint(s) hit: {', '.join(facts['endpoints'][:4])}"
                      + (" …" if len(facts["endpoints"]) > 4 else ""))
    elif facts["services"]:
        impact.append(f"Services: {', '.join(facts['services'][:4])}")
    if facts.get("total_traces"):
        impact.append(f"{facts['total_traces']} traces")
    for key, value in list((facts.get("data_points") or {}).items())[:2]:
        impact.append(f"{key.replace('_', ' ')} {value}")
    lines = [head, "Impact: " + "; ".join(impact) + "."]
    cause = rc["description"]
    if len(cause) > 160:
        cause = cause[:157].rstrip() + "…"
    confidence = f" ({pct(rc['confidence'], 0)} sure)" if rc.get("confidence") is not None else ""
    lines.append(f"Cause{confidence}: {cause}")
    if facts.get("recurrence"):
        lines.append(f"Related: {facts['recurrence']['summary']} "
                     f"(last {facts['recurrence']['previous_incidents'][-1]}).")
    actions = first_actions(facts)
    if actions:
        lines.append(f"Runbook: {actions[0]}")
    if len(actions) > 1:
        lines.append(f"Suggested fix: {actions[1]}")
    if facts.get("sample_traces"):
        lines.append(f"Trace: {facts['sample_traces'][0]['trace_id']}")
    return "\n".join(lines) + "\n"


# -- postmortem -----------------------------------------------------------------------------

def _deadline(facts: dict, days: int) -> str:
    epoch = parse_iso(facts.get("resolved_at") or facts.get("last_detected_at") or facts.get("started_at"))
    if epoch is None:
        return f"within {days} days of the review"
    return (datetime.fromtimestamp(epoch, tz=_utc()) + timedelta(days=days)).strftime("%Y-%m-%d")


_DAYS = {"P1": 7, "P2": 14, "P3": 30, "P4": 60, "P5": 90}


def action_items(facts: dict) -> list[dict]:
    """Action items with priority, owner placeholder and deadline, from the data."""
    root, rc = root_label(facts), facts["root_cause"]
    base = facts["priority"]
    lower = {"P1": "P2", "P2": "P3", "P3": "P4", "P4": "P4", "P5": "P5"}[base]
    items = []

    def add(priority, text):
        items.append({"priority": priority, "owner": "@owner-tbd", "deadline": _deadline(facts, _DAYS[priority]),
                      "action": text})

    reason = rc.get("reason")
    top = _top_error(facts)
    if reason == "error":
        add(base, f"Fix the failure behind `{top['type']}` on {top['endpoint']} and add a test that reproduces it."
            if top else f"Fix the failure in {root} and add a test that reproduces it.")
    elif reason == "latency":
        add(base, f"Find and remove the cause of {root}'s extra latency (peak "
                  f"{facts.get('peak_latency_ratio') or 'n/a'}x its baseline); add a latency SLO for it.")
    elif reason == "no_response":
        add(base, f"Make {root} fail fast instead of hanging, and give every caller a timeout and fallback.")
    elif facts.get("source") == "user":
        add(base, f"Fix the root cause permanently: {rc['description'][:200]}")
        if facts.get("fix_applied"):
            add(lower, f"Review whether the mitigation ({facts['fix_applied'][:160]}) should become the default.")
    else:
        add(base, f"Find why traffic on {root} changed and decide whether it needs protection (rate limit, scaling).")
    callers = [e for e in facts.get("endpoints", []) if e != root]
    if callers:
        add(lower, f"Contain failures of {root} so {', '.join(callers[:3])} degrade gracefully "
                   "(timeouts, retries with budget, circuit breaker).")
    if facts.get("recurrence"):
        add(base, f"This is recurring ({facts['recurrence']['summary']}): schedule the permanent fix before "
                  "adding more alerting.")
    if facts.get("source") == "aiops" and facts.get("acknowledged_at") is None:
        add(lower, "Check paging: nobody acknowledged this incident before it "
                   + ("resolved" if not facts.get("ongoing") else "grew") + "; confirm alerts reach the on-call.")
    add(lower, f"Add a runbook entry for {root} covering this failure mode and the first checks listed here.")
    return items


def five_whys(facts: dict) -> list[tuple[str, str]]:
    """Up to five why/because pairs, each answered from the data; the rest
    are left as questions for the review rather than guessed."""
    rc, root = facts["root_cause"], root_label(facts)
    whys: list[tuple[str, str]] = []
    if facts["source"] == "aiops":
        entries = facts["entry_endpoints"] or facts["endpoints"]
        question = (f"Why did requests to {', '.join(entries)} fail?" if facts.get("peak_error_ratio") is not None
                    else f"Why were requests to {', '.join(entries)} slow or unanswered?")
        whys.append((question,
                     f"{facts['total_traces']} traces were affected, and the analysis blamed {root} in them "
                     f"(confidence {pct(rc['confidence'], 0)})."))
        chained = [t for t in facts["sample_traces"] if len(t["chain"]) > 1]
        if chained:
            t = chained[0]
            whys.append((f"Why did a problem in {root} reach {t['entry_endpoint']}?",
                         f"{t['entry_endpoint']} calls it synchronously ({_chain(t)} in trace {t['trace_id']}), "
                         f"so its failure became HTTP {t['entry_status']} for the caller."))
        whys.append((f"Why did {root} misbehave?", rc["description"] + "."))
        top = _top_error(facts)
        if top:
            whys.append((f"Why did {top['endpoint']} raise errors?",
                         f"It raised `{top['type']}: {top['message']}` {top['count']} times in the last window; "
                         "what triggers it is for the review to establish from the code and recent changes."))
    else:
        sentences = [s.strip() for s in rc["description"].replace("\n", " ").split(". ") if s.strip()]
        impact = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in list(facts["data_points"].items())[:3])
        whys.append((f"Why were {', '.join(facts['services'])} affected?",
                     (f"{impact}. " if impact else "") + (sentences[0].rstrip(".") + "." if sentences else "")))
        for s in sentences[1:4]:
            whys.append(("Why did that happen?", s.rstrip(".") + "."))
    while len(whys) < 5:
        whys.append(("Why was this not caught before it reached users?" if len(whys) < 4 else
                     "Why did our process allow it?",
                     "Not in the data: answer in the review (tests, rollout checks, capacity limits, alerting)."))
    return whys[:5]


def postmortem(facts: dict) -> str:
    """A blameless postmortem draft with the standard sections."""
    rc, root = facts["root_cause"], root_label(facts)
    out = [f"# Postmortem: {facts['title']}", ""]
    meta = [f"**Severity** {facts['priority']} ({facts['severity']})",
            f"**Duration** {minutes(facts['duration_minutes'])}", f"**Services** {', '.join(facts['services'])}"]
    if facts.get("incident_id"):
        meta.insert(0, f"**Incident** {facts['incident_id']}")
    out += [" · ".join(meta), "", "_Blameless: this document is about systems and processes, not people._", ""]

    out += ["## Summary", ""]
    summary = (f"{facts['title']} ({facts['priority']}), {_duration_phrase(facts)}"
               + (f" from {stamp(facts['started_at'])}" if parse_iso(facts.get("started_at")) else "")
               + f". Root cause: {root} — {rc['description'].rstrip('.')}.")
    if facts.get("fix_applied"):
        summary += f" Fix applied: {facts['fix_applied'].rstrip('.')}."
    elif facts.get("resolved_at"):
        summary += f" Resolved at {clock(facts['resolved_at'])}."
    else:
        summary += " Still open at the time of writing."
    out += [summary, ""]

    out += ["## Impact", ""]
    impact = []
    if facts["endpoints"]:
        impact.append(f"Endpoints affected: {', '.join(facts['endpoints'])}")
    impact.append(f"Services affected: {', '.join(facts['services'])}")
    if facts["entry_endpoints"]:
        impact.append(f"User-facing entry points: {', '.join(facts['entry_endpoints'])}")
    if facts.get("total_traces"):
        impact.append(f"Affected traces: {facts['total_traces']}")
    impact += [signal_line(s) for s in facts["signals"]]
    impact += [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in (facts.get("data_points") or {}).items()]
    impact.append(f"Duration: {minutes(facts['duration_minutes'])}")
    out += [f"- {i}" for i in impact] + [""]

    out += ["## Timeline", "", "| Time | Event |", "|---|---|"]
    for e in facts["timeline"]:
        detail = (f"{e['event']}: " if e["event"] else "") + e["detail"]
        out.append(f"| {stamp(e['at']) if parse_iso(e['at']) else e['at']} | {detail.replace('|', '/')} |")
    out.append("")

    out += ["## Root Cause Analysis", ""]
    confidence = f" (confidence {pct(rc['confidence'], 0)})" if rc.get("confidence") is not None else ""
    out += [f"**{root}**{confidence}: {rc['description']}", ""]
    if facts["signals"] or facts.get("errors") or facts["sample_traces"]:
        out += ["Evidence:", ""]
        out += [f"- {signal_line(s)}" for s in facts["signals"]]
        out += [f"- error `{e['type']}: {e['message']}` ×{e['count']} on {e['endpoint']}" for e in top_errors(facts)]
        out += [f"- trace `{t['trace_id']}`: {_chain(t)}" for t in facts["sample_traces"][:3]]
        out.append("")
    out += ["### 5 whys", ""]
    for i, (q, a) in enumerate(five_whys(facts), 1):
        out.append(f"{i}. **{q}** {a}")
    out.append("")

    out += ["## What Went Well", ""]
    well = []
    if facts["source"] == "aiops":
        well.append(f"Detected automatically at {clock(facts['started_at'])} by the anomaly analysis.")
        if rc.get("confidence") is not None and facts.get("total_traces"):
            well.append(f"Root cause localised to {root} with {pct(rc['confidence'], 0)} confidence from "
                        f"{facts['total_traces']} traces.")
        if facts.get("time_to_acknowledge_minutes") is not None:
            well.append(f"Acknowledged {minutes(facts['time_to_acknowledge_minutes'])} after detection.")
        if facts.get("resolved_at") and not facts.get("ongoing"):
            well.append(f"Recovered within {minutes(facts['duration_minutes'])} of detection.")
    else:
        if facts.get("detection_method"):
            well.append(f"Detection: {facts['detection_method']}.")
        if facts.get("fix_applied"):
            well.append(f"Mitigation worked: {facts['fix_applied']}")
        for key in ("time_to_detect", "time_to_mitigate"):
            if key in facts["data_points"]:
                well.append(f"{key.replace('_', ' ').capitalize()}: {facts['data_points'][key]}.")
    out += [f"- {w}" for w in well or ["(to be filled in at the review)"]] + [""]

    out += ["## What Didn't Go Well", ""]
    bad = []
    callers = [e for e in facts["endpoints"] if e != root]
    if callers:
        bad.append(f"A fault in {root} spread to {', '.join(callers)}: callers had no isolation from it.")
    if facts.get("peak_error_ratio") is not None:
        bad.append(f"Error ratio peaked at {pct(facts['peak_error_ratio'])}.")
    if facts.get("peak_latency_ratio"):
        bad.append(f"Latency peaked at {facts['peak_latency_ratio']:g}x the baseline.")
    if facts["source"] == "aiops" and facts.get("acknowledged_at") is None:
        bad.append("Nobody acknowledged the incident" + (" before it resolved." if not facts["ongoing"] else " yet."))
    if facts.get("recurrence"):
        bad.append(f"It is a repeat: {facts['recurrence']['summary']}.")
    for key in ("customer_tickets", "revenue_impact", "pods_affected"):
        if key in (facts.get("data_points") or {}):
            bad.append(f"{key.replace('_', ' ').capitalize()}: {facts['data_points'][key]}.")
    out += [f"- {b}" for b in bad or ["(to be filled in at the review)"]] + [""]

    out += ["## Action Items", "", "| # | Priority | Action | Owner | Deadline |", "|---|---|---|---|---|"]
    for i, item in enumerate(action_items(facts), 1):
        out.append(f"| {i} | {item['priority']} | {item['action'].replace('|', '/')} | {item['owner']} | "
                   f"{item['deadline']} |")
    out.append("")

    out += ["## Lessons Learned", ""]
    lessons = []
    reason = rc.get("reason")
    if callers:
        lessons.append(f"{root} is a dependency of {len(callers)} other endpoint(s); its health is theirs.")
    if reason == "error":
        lessons.append("Errors were visible in the telemetry from the first pass; the trace chain pointed at the "
                       "origin, not at the loudest caller.")
    elif reason in ("latency", "no_response"):
        lessons.append("Slowness and hangs propagate through synchronous calls; timeouts decide how far.")
    if facts.get("recurrence"):
        lessons.append("A recurring incident is a backlog item, not bad luck.")
    if facts["source"] == "user" and facts.get("fix_applied"):
        lessons.append(f"The mitigation that worked ({facts['fix_applied'][:120]}) belongs in the runbook.")
    out += [f"- {lesson}" for lesson in lessons or ["(to be filled in at the review)"]]
    return "\n".join(out) + "\n"


# -- stakeholder comms ----------------------------------------------------------------------

def comms(facts: dict) -> str:
    """The message for ``facts["audience"]``: engineering, management or customer."""
    audience = facts.get("audience", "engineering")
    if audience == "customer":
        return customer_comms(customer_facts(facts))
    if audience == "management":
        return management_comms(facts)
    return engineering_comms(facts)


def engineering_comms(facts: dict) -> str:
    rc, root = facts["root_cause"], root_label(facts)
    state = "RESOLVED" if not facts["ongoing"] else facts["status"].upper()
    lines = [f"**[{state}] {facts['priority']} {facts['title']}**" +
             (f" ({facts['incident_id']})" if facts.get("incident_id") else ""), "",
             f"- Started {stamp(facts['started_at'])}; {_duration_phrase(facts)}.",
             f"- Root cause: {root}" + (f" (confidence {pct(rc['confidence'], 0)})" if rc.get("confidence") is not None
                                        else "") + f": {rc['description']}"]
    lines += [f"- {signal_line(s)}" for s in facts["signals"]]
    lines += [f"- Top error: `{e['type']}: {e['message']}` ×{e['count']} on {e['endpoint']}"
              for e in top_errors(facts, 3)]
    if facts["endpoints"]:
        lines.append(f"- Affected: {', '.join(facts['endpoints'])}"
                     + (f"; {facts['total_traces']} traces" if facts.get("total_traces") else ""))
    if facts["sample_traces"]:
        lines.append(f"- Sample trace: {facts['sample_traces'][0]['trace_id']} ({_chain(facts['sample_traces'][0])})")
    if facts.get("fix_applied"):
        lines.append(f"- Fix applied: {facts['fix_applied']}")
    lines += ["", "Next steps:"] + [f"{i}. {a}" for i, a in enumerate(first_actions(facts), 1)]
    return "\n".join(lines) + "\n"


def management_comms(facts: dict) -> str:
    state = "resolved" if not facts["ongoing"] else "ongoing"
    lines = [f"**Incident update: {facts['title']}** ({facts['priority']}, {state})", ""]
    when = f"Started {stamp(facts['started_at'])}" if parse_iso(facts.get("started_at")) else "Started " + \
        str(facts.get("started_at"))
    lines.append(f"- **When:** {when}; {_duration_phrase(facts)}"
                 + (f"; resolved {stamp(facts['resolved_at'])}" if facts.get("resolved_at") and
                    parse_iso(facts["resolved_at"]) else "") + ".")
    impact = [f"services {', '.join(facts['services'])}"]
    if facts.get("peak_error_ratio") is not None:
        impact.append(f"up to {pct(facts['peak_error_ratio'], 0)} of requests failed")
    if facts.get("peak_latency_ratio"):
        impact.append(f"responses up to {facts['peak_latency_ratio']:g}x slower than normal")
    if facts.get("total_traces"):
        impact.append(f"{facts['total_traces']} requests traced as affected")
    impact += [f"{k.replace('_', ' ')}: {v}" for k, v in (facts.get("data_points") or {}).items()
               if k in ("customer_tickets", "revenue_impact", "users_affected", "error_rate_peak")]
    lines.append(f"- **Impact:** {'; '.join(impact)}.")
    cause = _BLAMED.sub("", facts["root_cause"]["description"]).rstrip(".")
    lines.append(f"- **Cause:** {root_label(facts)} — {cause}.")
    if facts.get("fix_applied"):
        lines.append(f"- **Resolution:** {facts['fix_applied']}")
    elif not facts["ongoing"]:
        lines.append(f"- **Resolution:** service recovered at {clock(facts['resolved_at'])}.")
    else:
        lines.append("- **Resolution:** engineers are working on it; next update when the status changes.")
    if facts.get("recurrence"):
        lines.append(f"- **Note:** this has recurred ({facts['recurrence']['summary']}); a permanent fix is planned.")
    items = action_items(facts)
    lines.append(f"- **Follow-up:** {len(items)} action items, the first due {items[0]['deadline']}.")
    return "\n".join(lines) + "\n"


_BLAMED = re.compile(r"; blamed in \d+ of \d+ affected traces$")
_IMPACT_WORDS = {"errors": "some requests to our service failed", "slow": "our service responded slowly",
                 "unavailable": "parts of our service were unavailable", "degraded": "our service was degraded"}


def customer_comms(cf: dict) -> str:
    """From ``customer_facts`` only: no internal names, routes, hosts, trace ids or error text."""
    what = _IMPACT_WORDS[cf["impact"]]
    share = (f" At worst, about {pct(cf['peak_failed_share'], 0)} of requests to the affected "
             f"{'feature' if cf['features_affected'] == 1 else 'features'} did not complete."
             if cf.get("peak_failed_share") else "")
    if cf["status"] == "resolved":
        when = (f"Between {stamp(cf['started_at'])} and {stamp(cf['resolved_at'])}"
                if cf.get("started_at") and cf.get("resolved_at") else
                f"For about {minutes(cf['duration_minutes'])}")
        text = (f"**Resolved: service disruption**\n\n{when}, {what}.{share} The issue has been fixed and the "
                "service is operating normally. We are sorry for the disruption and are taking steps to prevent "
                "it from happening again.")
    else:
        since = f"Since {stamp(cf['started_at'])}" if cf.get("started_at") else "Currently"
        text = (f"**Investigating: service disruption**\n\n{since}, {what}.{share} Our engineers are working on "
                "it and we will post an update as soon as we know more. We are sorry for the inconvenience.")
    return text + "\n"


# -- structured: hypotheses -------------------------------------------------------------------

CATEGORIES = ("errors", "latency", "availability", "traffic", "other")
HYPOTHESES_SCHEMA = {
    "type": "object", "required": ["priority", "category", "hypotheses"], "additionalProperties": False,
    "properties": {
        "priority": {"type": "string", "enum": ["P1", "P2", "P3", "P4"]},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "hypotheses": {"type": "array", "minItems": 1, "maxItems": 5, "items": {
            "type": "object", "required": ["cause", "confidence", "evidence", "check"],
            "additionalProperties": False,
            "properties": {
                "cause": {"type": "string", "minLength": 3, "maxLength": 300},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "evidence": {"type": "array", "maxItems": 6, "items": {"type": "string", "maxLength": 400}},
                "check": {"type": "string", "maxLength": 400},
            }}},
    },
}


def category(facts: dict) -> str:
    reason = facts["root_cause"].get("reason")
    kinds = {s["type"] for s in facts.get("signals") or []}
    if reason == "no_response" or "timeout" in kinds:
        return "availability"
    if reason == "error" or "error_spike" in kinds:
        return "errors"
    if reason == "latency" or "latency_anomaly" in kinds:
        return "latency"
    if kinds & {"traffic_surge", "traffic_drop"}:
        return "traffic"
    return "other"


def hypotheses(facts: dict) -> dict:
    """Ranked hypotheses about the cause, each with the evidence from the
    data and the check that confirms it. Confidence: the analysis' own for
    the root cause; the rest of it shared among the other anomalous endpoints."""
    root = root_label(facts)
    rc = facts["root_cause"]
    conf = rc.get("confidence")
    actions = first_actions(facts)
    own = [s for s in facts.get("signals") or [] if s["endpoint"] == root or s["is_root"]]
    evidence = [signal_line(s) for s in own][:3]
    if category(facts) in ("errors", "availability"):  # a stray background error is no evidence of slowness
        evidence += [f"error `{e['type']}: {e['message']}` ×{e['count']}" for e in top_errors(facts)
                     if e["endpoint"] == root]
    if facts.get("total_traces") and conf is not None:
        evidence.append(f"blamed in {round(conf * facts['total_traces'])} of {facts['total_traces']} affected traces")
    if not evidence:
        evidence.append(rc["description"][:400])
    out = [{"cause": f"{root}: {_BLAMED.sub('', rc['description'])}"[:300],
            "confidence": round(conf if conf is not None else 0.5, 3), "evidence": evidence[:6],
            "check": actions[0][:400] if actions else "Confirm in the review."}]
    others = sorted({s["endpoint"] for s in facts.get("signals") or []} - {root})
    rest = round((1 - (conf if conf is not None else 0.5)) / len(others), 3) if others else 0.0
    for endpoint in others[:4]:
        signals = [s for s in facts["signals"] if s["endpoint"] == endpoint]
        out.append({"cause": f"{endpoint} fails on its own, not only as a caller of {root}"[:300],
                    "confidence": rest, "evidence": [signal_line(s) for s in signals][:6],
                    "check": (f"Open a trace of {endpoint} that does not reach {root} "
                              "and see whether it fails too.")[:400]})
    return {"priority": facts["priority"] if facts["priority"] in ("P1", "P2", "P3", "P4") else "P4",
            "category": category(facts), "hypotheses": out}
