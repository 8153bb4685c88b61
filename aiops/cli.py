"""``python -m aiops incidents`` and ``python -m aiops analyze``: the store from a terminal.

Both read a span store file (``--db``, default ``$AIOPS_DB_PATH``, then
``$TELEMETRY_DB_PATH``, then ``instance/telemetry.db``) and print rich
tables, or JSON with ``--json``. Analysis settings come from the AIOPS_*
environment variables, as for the extension.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3

from aiops.config import ANALYSIS_CONFIG, analysis_config
from aiops.incidents import STATUSES, iso
from telemetry.config import read_config

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}
STATUS_STYLE = {"active": "bold", "acknowledged": "cyan", "resolved": "green"}


class UsageError(Exception):
    """Bad input: printed as ``error: ...`` on stderr, exit status 2."""


def _default_db() -> str:
    return os.environ.get("AIOPS_DB_PATH") or os.environ.get("TELEMETRY_DB_PATH") or \
        os.path.join("instance", "telemetry.db")


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="FILE",
                        help="span store (default: $AIOPS_DB_PATH, $TELEMETRY_DB_PATH, instance/telemetry.db)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _open_store(path: str | None):
    from aiops.store import AnalysisStore
    path = path or _default_db()
    if not os.path.isfile(path):
        raise UsageError(f"no span store at {path}: pass --db FILE (the TELEMETRY_DB_PATH of your app)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        has_spans = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spans'").fetchone()
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a SQLite database: {exc}") from None
    if not has_spans:
        raise UsageError(f"{path} has no spans table: is it the TELEMETRY_DB_PATH of an app with Telemetry?")
    return AnalysisStore(path)


def _console():
    from rich.console import Console
    return Console(soft_wrap=False, width=max(160, Console().width))


# -- incidents ---------------------------------------------------------------------


def add_incidents(parser: argparse.ArgumentParser) -> None:
    _add_db(parser)
    parser.add_argument("--status", default="open", choices=("open", "all") + STATUSES,
                        help="which incidents (default: open = active and acknowledged)")
    parser.add_argument("--limit", type=int, default=50, help="most incidents listed (default: 50)")
    parser.add_argument("--id", default=None, metavar="INCIDENT", help="show one incident in full")


def run_incidents(args: argparse.Namespace) -> int:
    store = _open_store(args.db)
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
    from rich.table import Table
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
    _console().print(table)
    return 0


def _print_incident(b: dict) -> None:
    from rich.table import Table
    console = _console()
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


class _EnvOnly:
    """What ``read_config`` needs: settings come from the environment only."""

    def __init__(self):
        self.config: dict = {}


def add_analyze(parser: argparse.ArgumentParser) -> None:
    _add_db(parser)


def run_analyze(args: argparse.Namespace) -> int:
    from aiops.engine import Analyzer
    store = _open_store(args.db)
    try:
        config = analysis_config(read_config(_EnvOnly(), ANALYSIS_CONFIG))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    analyzer = Analyzer(store, config)
    try:
        result = analyzer.run_pass()
    finally:
        store.release_lock(analyzer.owner)  # a one-shot pass: leave the lease to the running app
    single = len({k[0] for k in store.load_baselines()}) <= 1
    if args.json:
        print(json.dumps(result.to_dict(single), indent=2))
        return 0
    console = _console()
    if result.skipped:
        console.print(f"[yellow]skipped:[/] {result.skipped} (a running app analyses this store; "
                      "try again after its lease lapses, or read incidents instead)")
        return 0
    console.print(f"analysed {store.path} at {iso(result.at)}: {result.spans_in_window} spans in the last "
                  f"{config.window_s:g}s, learned from {result.new_spans} new spans, {result.duration_ms:.0f} ms")
    from rich.table import Table
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

