"""The deterministic reliability summary of one service (what ``llm`` writes when a model is set)."""
from __future__ import annotations

from typing import Mapping

from aiops.slo.definitions import TIERS


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
