"""``python -m aiops slo``: SLO status of a span store from a terminal.

Reads the store (``--db``, as ``python -m aiops incidents``), optionally
computes fresh burn rates first (``--compute``: folds new spans and runs the
alert rules, without notifications), and prints every SLO's SLI, budget,
burn rates and risk, then the open SLO alerts; ``--json`` prints the
``GET /aiops/burn`` shape instead. Settings come from the AIOPS_SLO_*
environment variables, as for the extension (a headless context: what the
app's SLO engine would do, with nothing sent).
"""
from __future__ import annotations

import argparse
import json

from aiops.terminal import add_db_arguments, wide_console

RISK_STYLE = {"SAFE": "green", "OBSERVE": "yellow", "DANGER": "red", "FREEZE": "bold red"}


def add_slo(parser: argparse.ArgumentParser) -> None:
    add_db_arguments(parser)
    parser.add_argument("--compute", action="store_true",
                        help="fold new spans and compute burn rates now (alerts are stored, not sent)")
    parser.add_argument("--service", default=None, help="only this service")


def run_slo(args: argparse.Namespace) -> int:
    engine = args.open_context().features["slo"]
    if args.compute:
        engine.compute()
    snaps = [s for s in engine.store.latest_snapshots(args.service)]
    alerts = [a for a in engine.store.alerts(service=args.service, limit=1000)
              if a["status"] in ("firing", "acknowledged", "suppressed")]
    if args.json:
        services = sorted({s["service_name"] for s in snaps})
        print(json.dumps({"services": [engine.service_snapshot(name) for name in services],
                          "open_alerts": alerts}, indent=2, default=str))
        return 0
    console = wide_console()
    if not engine.store.slos(args.service):
        console.print("no SLO defined: POST /aiops/slo/<service>/targets or AIOPS_SLO_FILE")
        return 0
    if not snaps:
        console.print("no burn rates computed yet: run with --compute (or let the app's analysis pass run)")
        return 0
    from rich.table import Table  # at the call: AIOps(app) registers the command without loading rich
    table = Table(title=f"{len(snaps)} SLOs of {engine.db.path}", title_justify="left")
    for column in ("service", "SLO", "target", "SLI", "budget left", "outage min left", "5m", "1h", "24h",
                   "composite", "risk", "computed"):
        table.add_column(column, overflow="fold")
    for s in snaps:
        b = s["error_budget"]
        table.add_row(s["service_name"], s["slo_name"], f"{s['target']:g}",
                      "n/a" if b["sli"] is None else f"{b['sli']:.4%}", f"{b['remaining_ratio']:.1%}",
                      f"{b['full_outage_minutes_left']:g}", *(f"{s['burn_rates'][w]:.2f}" for w in ("5m", "1h", "24h")),
                      f"{s['composite_burn_rate']:.2f}", f"[{RISK_STYLE[s['risk_level']]}]{s['risk_level']}[/]",
                      s["timestamp"])
    console.print(table)
    if alerts:
        listed = Table(title=f"{len(alerts)} open SLO alerts", title_justify="left")
        for column in ("id", "SLO", "severity", "rule", "status", "reason"):
            listed.add_column(column, overflow="fold")
        for a in alerts:
            listed.add_row(a["id"], a["slo_name"], a["severity"], a["rule"], a["status"], a["reason"])
        console.print(listed)
    return 0


COMMANDS = {"slo": (add_slo, run_slo, "SLO budgets, burn rates, risk and open SLO alerts of a span store")}
