"""Documents of the other features (SLO summaries, alert-group briefs,
simulation narratives, replay narratives) and the alert-classification
refinement, through one ``LLMWriter``.

Each feature keeps its own pure deterministic writer (``facts -> markdown``);
this module pairs it with the model's instructions. With no model configured
(or on any model failure) the feature's writer is used, and the returned
``Document`` says so (``source: "template"``).
"""
from __future__ import annotations

from typing import Callable

from llm.writer import Document, LLMWriter

_FACTS_ONLY = "Use only facts from the data block; every number, name, time and id must appear there."

INSTRUCTIONS: dict[str, str] = {
    "slo_summary": (
        "Write a short reliability summary of one service in markdown for an engineering manager: a title line, "
        "the risk level and what it means for releases, each SLO's target, current SLI and error budget left "
        "(ratio and minutes of full outage), the burn-rate trend and forecast, firing SLO alerts and open "
        "incidents, and one concrete recommendation. " + _FACTS_ONLY),
    "alert_brief": (
        "Write an on-call brief for one group of correlated alerts that fits a phone screen (at most 6 short "
        "lines). First line: '<priority> — <one-line summary>' using the group's priority. Then what is affected, "
        "the related deploy if any (version and how long ago), the runbook to open, and a suggested first step. "
        + _FACTS_ONLY),
    "simulation_narrative": (
        "Tell the story of this simulated incident for a presentation, in markdown with short sections: the "
        "setting (service, recent deploys), how the symptoms unfolded with their figures, what the analysis "
        "concluded (top hypothesis with its confidence and evidence), and the recommended actions with their "
        "risk. " + _FACTS_ONLY),
    "replay_narrative": (
        "Narrate a resilience replay in markdown for an incident review: what the system should have done "
        "(the expected band) against what it did, metric by metric in the order the deviations began, with "
        "times, expected and actual values, SLA breaches and their durations, and actionable insights. Write "
        "sentences like 'At 14:03 service B should have had about 6 pods; it stayed at 2'. " + _FACTS_ONLY),
}


def write_feature(llm: LLMWriter, task: str, facts: dict, fallback: Callable[[dict], str]) -> Document:
    """The document ``task`` (a key of ``INSTRUCTIONS``) of ``facts``; ``fallback`` is the feature's writer."""
    if task not in INSTRUCTIONS:
        raise KeyError(f"unknown feature document {task!r}; valid: {', '.join(sorted(INSTRUCTIONS))}")
    return llm.write(task, facts, fallback, INSTRUCTIONS[task])


RANKING_INSTRUCTIONS = (
    "Re-rank these incident hypotheses, most likely first, using their evidence (each item's detail, signal "
    "and contribution). 'order' lists every hypothesis category exactly once; 'reason' says in one or two "
    "sentences what made you move any. " + _FACTS_ONLY)

CLASSIFICATION_INSTRUCTIONS = (
    "Classify this alert for on-call triage. The rules' answer is in the data block ('rules'); keep it unless "
    "the alert's name, message or labels show it is wrong, and say why in 'reason'. priority: P1 (outage or "
    "many users affected now) to P4 (informational). " + _FACTS_ONLY)


def _rules_answer(facts: dict) -> dict:
    """The rules' own classification, as the refinement schema has it."""
    rules = facts["rules"]
    return {**{k: rules[k] for k in ("priority", "category", "users_affected", "confidence")},
            "reason": "the rules' answer"}


def classification_refiner(llm: LLMWriter, schema: dict) -> Callable[[dict], dict]:
    """A ``refine(facts) -> dict`` for alert triage: the model's answer, validated
    against ``schema``. When the model cannot answer it raises, so triage keeps
    the rules' classification and records why (triage also never lets a
    refinement lower a P1)."""
    def refine(facts: dict) -> dict:
        data_facts = {k: v for k, v in facts.items() if k != "schema"}
        doc = llm.structured("alert_classification", data_facts, schema, _rules_answer, CLASSIFICATION_INSTRUCTIONS)
        if doc.source != "llm":
            raise RuntimeError(f"model unavailable: {doc.fallback_reason or 'no answer'}")
        return doc.data
    return refine
