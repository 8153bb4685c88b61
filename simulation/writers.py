"""Deterministic writers: facts (a dict) -> prose. Every number and name comes from the facts.

With a model configured the LLM layer writes the narrative from the same
facts (``llm.features.write_feature(..., "simulation_narrative", facts,
narrative_text)``) and falls back to these; without one they are the text.
"""
from __future__ import annotations


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def hypothesis_text(facts: dict) -> str:
    """One paragraph: the hypothesis, its confidence, and the evidence that weighs most."""
    evidence = facts.get("evidence", [])
    if not evidence:
        return f"{facts['title']} ({_pct(facts['confidence'])} confidence): no direct evidence."
    lead = "; ".join(e["detail"] for e in evidence[:3])
    more = f" (and {len(evidence) - 3} more signals)" if len(evidence) > 3 else ""
    return (f"{facts['title']} is hypothesis #{facts['rank']} at {_pct(facts['confidence'])} confidence, "
            f"supported by {len(evidence)} signal{'s' if len(evidence) != 1 else ''}: {lead}{more}.")


def narrative_facts(scenario: dict, record: dict) -> dict:
    """The facts of a simulation's story, from the scenario detail and the simulation record."""
    top = record.get("hypotheses", [])[:1]
    actions = record.get("actions", [])
    return {
        "scenario": scenario["name"], "service": scenario["service"], "severity": scenario["severity"],
        "story": scenario.get("story", ""),
        "phases": [{"name": p["name"], "duration_seconds": p["duration_seconds"], "description": p["description"]}
                   for p in scenario.get("phases", [])],
        "deployments": scenario.get("context", {}).get("recent_deployments", []),
        "points_injected": record.get("points_injected", 0),
        "traffic": record.get("traffic"),
        "anomalies": [e for e in record.get("evidence", []) if e.get("kind") in ("metric", "span")],
        "incident_id": record.get("incident_id"),
        "detection": record.get("detection", {}),
        "top_hypothesis": top[0] if top else None,
        "other_hypotheses": [{"title": h["title"], "confidence": h["confidence"]}
                             for h in record.get("hypotheses", [])[1:]],
        "actions": [{"title": a["title"], "risk_level": a["risk_level"], "requires_approval": a["requires_approval"],
                     "time_to_recover_s": a["time_to_recover_s"]} for a in actions],
        "validation": record.get("validation"),
    }


def narrative_text(facts: dict) -> str:
    """The story of a simulation for presentations, in short markdown sections."""
    lines = [f"# {facts['scenario']}", ""]
    if facts.get("story"):
        lines += [facts["story"], ""]
    if facts["deployments"]:
        d = facts["deployments"][0]
        lines.append(f"Context: {d['version']} was deployed {d['minutes_before']:g} minutes before the trouble "
                     f"began ({d['change']}).")
    phases = facts["phases"]
    if len(phases) > 1:
        lines.append("The incident unfolds in " + str(len(phases)) + " phases: " +
                     "; then ".join(f"{p['name']} for {p['duration_seconds']:g} s ({p['description']})"
                                    for p in phases) + ".")
    lines.append("")
    lines.append(f"## What the system saw ({facts['service']}, {facts['severity']})")
    lines.append(f"{facts['points_injected']} metric points were pushed through the ingestion API.")
    traffic = facts.get("traffic")
    if traffic and traffic.get("driven"):
        lines.append(f"{traffic['requests']} real requests went to {traffic['path']} with "
                     f"{', '.join(traffic['faults'])} applied; {traffic['failed']} failed, median "
                     f"{traffic['median_ms']:.0f} ms.")
    detection = facts.get("detection") or {}
    if facts["anomalies"]:
        lines.append(f"The detectors flagged {len(facts['anomalies'])} signals:")
        lines += [""] + [f"- {a['detail']}" for a in facts["anomalies"][:6]] + [""]
        if detection.get("median_delay_s") is not None:
            lines.append(f"Median detection delay after the true onset: {detection['median_delay_s']:g} s.")
    else:
        lines.append("The detectors flagged nothing.")
    if facts.get("incident_id"):
        lines.append(f"They were grouped into incident {facts['incident_id']}.")
    lines.append("")
    top = facts.get("top_hypothesis")
    lines.append("## Diagnosis")
    if top:
        lines.append(top.get("explanation") or f"{top['title']} ({_pct(top['confidence'])}).")
        if facts["other_hypotheses"]:
            lines.append("Also considered: " + ", ".join(f"{h['title']} ({_pct(h['confidence'])})"
                                                         for h in facts["other_hypotheses"]) + ".")
    else:
        lines.append("No hypothesis reached the minimum confidence.")
    lines.append("")
    lines.append("## What to do")
    if facts["actions"]:
        for a in facts["actions"]:
            gate = "needs approval" if a["requires_approval"] else "safe to automate"
            lines.append(f"- {a['title']}: {a['risk_level']} risk, {gate}, back to normal in about "
                         f"{a['time_to_recover_s']:g} s")
    else:
        lines.append("No action scored high enough to recommend.")
    validation = facts.get("validation")
    if validation:
        lines += ["", f"Score against the expected outcome: {validation['score']:.2f} "
                      f"({'pass' if validation['passed'] else 'fail'})."]
    return "\n".join(lines) + "\n"
