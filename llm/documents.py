"""The documents of an incident: facts + deterministic writer + instructions, by name.

``render(writer, kind, facts, audience)`` asks the ``LLMWriter`` for one
document; the model sees only the facts (for the customer audience, only
``customer_facts``), and its answer is checked (postmortem sections present,
brief phone-sized, customer text free of internal terms) before it is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llm import writers
from llm.facts import customer_facts, leaked_terms
from llm.writer import Document, LLMWriter

BRIEF_MAX_CHARS = 700


@dataclass(frozen=True)
class DocumentKind:
    name: str
    writer: Callable[[dict], str]
    instructions: str
    check: Callable[[str, dict], str | None] | None = None


def _check_postmortem(text: str, facts: dict) -> str | None:
    missing = [s for s in writers.POSTMORTEM_SECTIONS if f"## {s}".lower() not in text.lower()]
    return f"missing section(s) {', '.join(missing)}" if missing else None


def _check_brief(text: str, facts: dict) -> str | None:
    if len(text) > BRIEF_MAX_CHARS:
        return f"{len(text)} characters; a brief must fit a phone screen ({BRIEF_MAX_CHARS})"
    if not text.lstrip().startswith(facts["priority"]):
        return f"a brief starts with the priority ({facts['priority']})"
    return None


_FACTS_ONLY = "Use only facts from the data block; every number, name, time and id must appear there."

DOCUMENTS: dict[str, DocumentKind] = {k.name: k for k in (
    DocumentKind("narrative", writers.narrative,
                 "Write an incident narrative in markdown for an engineer: a title line, then sections "
                 "'## What happened' (when it started, how it developed, with times), '## Root cause' (the root "
                 "cause and its evidence: numbers, error messages, trace ids), '## Blast radius' (endpoints, "
                 "entry points, traces, recurrence) and '## What to do first' (numbered, concrete). " + _FACTS_ONLY),
    DocumentKind("brief", writers.brief,
                 "Write an on-call brief that fits a phone screen (at most 6 short lines, under "
                 f"{BRIEF_MAX_CHARS} characters). First line: '<priority> — <one-line summary>' using the priority "
                 "field (P1-P4). Then 'Impact:', 'Cause:', 'Runbook:' and 'Suggested fix:' lines. Be specific: "
                 "service and endpoint names, numbers, a trace id. No greeting, no fluff. " + _FACTS_ONLY,
                 _check_brief),
    DocumentKind("postmortem", writers.postmortem,
                 "Write a blameless postmortem in markdown. Start with '# Postmortem: <title>'. Use exactly these "
                 "sections: " + ", ".join(f"'## {s}'" for s in writers.POSTMORTEM_SECTIONS) + ". Root Cause "
                 "Analysis includes a numbered '5 whys'; where the data cannot answer a why, say it is for the "
                 "review. Action Items is a table with priority (P1-P4), owner '@owner-tbd' and a deadline date. "
                 "Focus on systems and processes, never on people. " + _FACTS_ONLY, _check_postmortem),
    DocumentKind("comms", writers.comms,
                 "Write a stakeholder update for the audience named in the data. engineering: technical details "
                 "and next steps; management: impact, timeline, resolution status, no jargon. " + _FACTS_ONLY),
)}
AUDIENCE_INSTRUCTIONS = {
    "customer": "Write a short status-page update for customers: empathetic, plain language, what they "
                "experienced, when, and whether it is resolved. Never mention internal systems, service names, "
                "hosts, URLs, paths, trace ids or error messages. " + _FACTS_ONLY,
}


def render(llm: LLMWriter, kind: str, facts: dict, audience: str | None = None) -> Document:
    """Document ``kind`` (narrative, brief, postmortem, comms) of ``facts``."""
    if kind not in DOCUMENTS:
        raise KeyError(f"unknown document {kind!r}; valid: {', '.join(DOCUMENTS)}")
    spec = DOCUMENTS[kind]
    if kind == "comms":
        audience = audience or "engineering"
        if audience not in writers.AUDIENCES:
            raise KeyError(f"unknown audience {audience!r}; valid: {', '.join(writers.AUDIENCES)}")
        if audience == "customer":
            # The model never sees internal detail, and its answer is checked for any that slipped in.
            public = {**customer_facts(facts), "audience": "customer"}
            return llm.write("comms_customer", public, lambda f: writers.customer_comms(f),
                             AUDIENCE_INSTRUCTIONS["customer"],
                             check=lambda text: _leaks(text, facts))
        facts = {**facts, "audience": audience}
    check = (lambda text: spec.check(text, facts)) if spec.check else None
    return llm.write(kind if kind != "comms" else f"comms_{audience}", facts, spec.writer, spec.instructions,
                     check=check)


HYPOTHESES_INSTRUCTIONS = (
    "Rank up to 5 hypotheses about what caused this incident. For each: the cause in one line, a confidence "
    "between 0 and 1 (the analysis' own root-cause confidence is the anchor), evidence quoted from the data "
    "block (numbers, errors, trace ids), and one concrete check that would confirm or refute it. Set priority "
    "(P1-P4, from the data's priority field) and category (errors, latency, availability, traffic, other). "
    + _FACTS_ONLY)


def render_hypotheses(llm: LLMWriter, facts: dict) -> Document:
    """Structured hypotheses (``doc.data`` validates against ``HYPOTHESES_SCHEMA``)."""
    return llm.structured("hypotheses", facts, writers.HYPOTHESES_SCHEMA, writers.hypotheses,
                          HYPOTHESES_INSTRUCTIONS)


def _leaks(text: str, facts: dict) -> str | None:
    found = leaked_terms(text, facts)
    return f"internal detail in customer text ({len(found)} term(s))" if found else None
