"""``python -m aiops incidents`` and ``python -m aiops analyze``: the store from a terminal.

Both read a span store file (``--db``, default ``$AIOPS_DB_PATH``, then
``$TELEMETRY_DB_PATH``, then ``instance/telemetry.db``) and print rich
tables, or JSON with ``--json``. Settings come from the AIOPS_* environment
variables, as for the extension; ``analyze`` runs the app's whole pass (its
SLO evaluation and alert triage included) on a headless context.
"""
from __future__ import annotations

import argparse
import json

from aiops.analysis.incidents import STATUSES
from aiops.analysis.store import AnalysisStore
from aiops.terminal import UsageError, add_db_arguments, open_store_file, wide_console
from telemetry.timefmt import iso

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}
STATUS_STYLE = {"active": "bold", "acknowledged": "cyan", "resolved": "green"}


# -- incidents ---------------------------------------------------------------------


def add_incidents(parser: argparse.ArgumentParser) -> None:
    add_db_arguments(parser)
    parser.add_argument("--status", default="open", choices=("open", "all") + STATUSES,
                        help="which incidents (default: open = active and acknowledged)")
    parser.add_argument("--limit", type=int, default=50, help="most incidents listed (default: 50)")
    parser.add_argument("--id", default=None, metavar="INCIDENT", help="show one incident in full")


def run_incidents(args: argparse.Namespace) -> int:
    store = AnalysisStore(open_store_file(args.db))
    single = len({k[0] for k in store.load_baselines()}) <= 1
    if args.id:
        incident = store.incident(args.id)
        if incident is None:
            raise UsageError(f"incident {args.id} not found (list them with: python -m aiops incidents --status all)")
        body = incident.to_json(single)
        if args.json:
            print(json.dumps(body, indent=2))
        else:
            _print_incident(body)
        return 0
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.status == "open":
        found = list(reversed(store.open_incidents()))[: args.limit]
    else:
        found = store.incidents(None if args.status == "all" else args.status, args.limit)
    bodies = [i.to_json(single) for i in found]
    if args.json:
        print(json.dumps({"incident_count": len(bodies), "status": args.status, "incidents": bodies}, indent=2))
        return 0
    from rich.table import Table  # at the call: AIOps(app) registers the command without loading rich
    table = Table(title=f"{len(bodies)} {args.status} incident(s) in {store.path}", title_justify="left")
    for column in ("id", "severity", "status"):
        table.add_column(column, no_wrap=True)
    for column in ("title", "root cause", "conf.", "affected", "first detected", "recurrence"):
        table.add_column(column, overflow="fold")
    for b in bodies:
        table.add_row(
            b["id"], f"[{SEVERITY_STYLE.get(b['severity'], '')}]{b['severity']}[/]",
            f"[{STATUS_STYLE.get(b['status'], '')}]{b['status']}[/]", b["title"], b["root_cause"]["endpoint"],
            f"{b['root_cause']['confidence']:.0%}", ", ".join(b["affected_endpoints"]), b["first_detected"],
            (b.get("recurrence") or {}).get("summary", ""))
    wide_console().print(table)
    return 0


def _print_incident(b: dict) -> None:
    from rich.table import Table  # at the call: AIOps(app) registers the command without loading rich
    console = wide_console()
    console.print(f"[bold]{b['id']}[/]  [{SEVERITY_STYLE.get(b['severity'], '')}]{b['severity']}[/]  "
                  f"{b['status']}  {b['title']}")
    rc = b["root_cause"]
    console.print(f"root cause: [bold]{rc['endpoint']}[/] (confidence {rc['confidence']:.0%}): {rc['description']}")
    console.print(f"affected: {', '.join(b['affected_endpoints'])}")
    if b.get("recurrence"):
        console.print(f"recurrence: {b['recurrence']['summary']}")
    anomalies = Table(title="anomalies", title_justify="left")
    for column in ("type", "endpoint", "severity", "baseline ms", "current ms", "deviation", "description"):
        anomalies.add_column(column, overflow="fold")
    for a in b["anomalies"]:
        m = a.get("metric")  # a pushed metric: its own unit, not ms
        anomalies.add_row(a["type"], a["endpoint"], a["severity"],
                          f"{m['baseline_mean']:.4g}" if m else f"{a['baseline_ms']:.1f}",
                          f"{m['value']:.4g}" if m else f"{a['current_ms']:.1f}", f"{a['deviation']:.1f}x",
                          a["description"])
    console.print(anomalies)
    traces = Table(title=f"sample traces ({b['trace_correlation']['total_traces']} affected)", title_justify="left")
    for column in ("trace id", "root endpoint", "status", "chain"):
        traces.add_column(column, overflow="fold")
    for t in b["trace_correlation"]["sample_traces"]:
        traces.add_row(t["trace_id"], t["root_endpoint"], str(t["root_status"]), " -> ".join(t["affected_chain"]))
    console.print(traces)
    timeline = Table(title="timeline", title_justify="left")
    for column in ("at", "event", "detail"):
        timeline.add_column(column, overflow="fold")
    for e in b["timeline"]:
        timeline.add_row(e["at"], e["event"], e["detail"])
    console.print(timeline)


# -- analyze -----------------------------------------------------------------------


def add_analyze(parser: argparse.ArgumentParser) -> None:
    add_db_arguments(parser)


def run_analyze(args: argparse.Namespace) -> int:
    ctx = args.open_context()
    state = ctx.features["analysis"]
    store, config = state.store, state.config
    try:
        result = ctx.run_pass()
    finally:
        store.release_lock(state.analyzer.owner)  # a one-shot pass: leave the lease to the running app
    single = state.single_service()
    if args.json:
        print(json.dumps(result.to_dict(single), indent=2))
        return 0
    console = wide_console()
    if result.skipped:
        console.print(f"[yellow]skipped:[/] {result.skipped} (a running app analyses this store; "
                      "try again after its lease lapses, or read incidents instead)")
        return 0
    console.print(f"analysed {store.path} at {iso(result.at)}: {result.spans_in_window} spans in the last "
                  f"{config.window_s:g}s, learned from {result.new_spans} new spans, {result.duration_ms:.0f} ms")
    from rich.table import Table  # at the call: AIOps(app) registers the command without loading rich
    anomalies = Table(title=f"{len(result.anomalies)} anomalies", title_justify="left")
    for column in ("type", "service", "endpoint", "severity", "description"):
        anomalies.add_column(column, overflow="fold")
    for a in result.anomalies:
        anomalies.add_row(a.type, a.service, a.endpoint, f"[{SEVERITY_STYLE.get(a.severity, '')}]{a.severity}[/]",
                          a.description)
    console.print(anomalies)
    changes = Table(title=f"{len(result.changes)} incident changes", title_justify="left")
    for column in ("event", "id", "severity", "title", "root cause", "conf."):
        changes.add_column(column, overflow="fold")
    for c in result.changes:
        b = c.incident.to_json(single)
        changes.add_row(c.event, b["id"], b["severity"], b["title"], b["root_cause"]["endpoint"],
                        f"{b['root_cause']['confidence']:.0%}")
    console.print(changes)
    return 0


COMMANDS = {
    "incidents": (add_incidents, run_incidents, "list incidents of a span store, or show one"),
    "analyze": (add_analyze, run_analyze, "run one analysis pass over a span store now"),
}
