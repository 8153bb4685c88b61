"""``python -m aiops narrative|brief|postmortem|comms``: an incident's documents from a terminal.

Reads the incident from a span store (``--incident ID``, ``--db FILE``, as
``python -m aiops incidents``) or, for ``postmortem``, a user's incident JSON
(``--input FILE``). The LLM settings come from the AIOPS_LLM_* / OPENAI_*
environment variables; ``--template`` never calls a model. The markdown goes
to stdout or ``--out FILE``; what produced it goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys

from aiops.terminal import UsageError
from llm.documents import render
from llm.facts import InvalidIncident, incident_facts, user_incident_facts
from llm.writer import LLMWriter
from llm.writers import AUDIENCES


def _add_common(parser: argparse.ArgumentParser, kind: str) -> None:
    if kind == "postmortem":
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--incident", metavar="ID", help="an incident of the span store")
        source.add_argument("--input", metavar="FILE", help="your own incident as JSON (title, severity, "
                            "duration_minutes, services_affected, timeline, root_cause, fix_applied, data_points)")
    else:
        parser.add_argument("--incident", metavar="ID", required=True, help="an incident of the span store")
    parser.add_argument("--db", default=None, metavar="FILE",
                        help="span store (default: $AIOPS_DB_PATH, $TELEMETRY_DB_PATH, instance/telemetry.db)")
    parser.add_argument("--out", default=None, metavar="FILE", help="write the markdown here instead of stdout")
    parser.add_argument("--json", action="store_true", help="print the document with its provenance as JSON")
    parser.add_argument("--template", action="store_true", help="never call a model: the deterministic writer only")
    if kind == "comms":
        parser.add_argument("--audience", default="engineering", choices=AUDIENCES,
                            help="who reads it (default: engineering)")


def _facts(args) -> tuple[dict, LLMWriter | None]:
    """The document's facts, and the writer of the context they came from (None for --input)."""
    if getattr(args, "input", None):
        try:
            with open(args.input, encoding="utf-8") as handle:
                body = json.load(handle)
        except OSError as exc:
            raise UsageError(f"cannot read {args.input}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"{args.input} is not JSON: {exc}") from None
        try:
            return user_incident_facts(body), None
        except InvalidIncident as exc:
            raise UsageError(f"{args.input}: invalid field {exc.field}: {exc.detail}") from None
    ctx = args.open_context()
    try:
        incident = ctx.ask("incident_json", args.incident)
        if incident is None:
            raise UsageError(f"incident {args.incident} not found (list them with: aiops incidents --status all)")
        return incident_facts(incident), ctx.llm
    finally:
        ctx.db.close()


def _writer(args, from_context: LLMWriter | None) -> LLMWriter:
    if args.template:
        return LLMWriter(enabled=False)
    if from_context is not None:
        return from_context
    try:
        return LLMWriter.from_environment()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def command(kind: str):
    """(add_arguments, run, help) for ``aiops <kind>``."""
    helps = {"narrative": "write an incident narrative (markdown)",
             "brief": "write a phone-sized on-call brief of an incident",
             "postmortem": "write a blameless postmortem draft of an incident or of your incident JSON",
             "comms": "write a stakeholder update (engineering, management or customer)"}

    def run(args: argparse.Namespace) -> int:
        facts, from_context = _facts(args)
        writer = _writer(args, from_context)
        try:
            doc = render(writer, kind, facts, getattr(args, "audience", None))
        finally:
            writer.close()
        output = json.dumps(doc.to_dict(), indent=2) + "\n" if args.json else doc.text
        if args.out:
            try:
                with open(args.out, "w", encoding="utf-8") as handle:
                    handle.write(output)
            except OSError as exc:
                raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        else:
            sys.stdout.write(output)
        note = f"{kind}: source {doc.source}" + (f", model {doc.model}" if doc.model else "") + \
            f", {doc.latency_ms:.1f} ms" + (f" ({doc.fallback_reason})" if doc.fallback_reason else "") + \
            (f", written to {args.out}" if args.out else "")
        print(note, file=sys.stderr)
        return 0

    return (lambda parser: _add_common(parser, kind)), run, helps[kind]


COMMANDS = {kind: command(kind) for kind in ("narrative", "brief", "postmortem", "comms")}
