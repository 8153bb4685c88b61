"""The ``aiops`` command (also ``python -m aiops``): every registered feature's subcommands.

Each feature declares its subcommands in its ``feature.py``
(``aiops.features.all_commands``); ``config`` (``aiops.cli.config``) lists
every key of the product. This module only builds the parser and runs one.
A subcommand that needs the other features (the documents of an incident, a
replay from the store) calls ``args.open_context()``: the
features built headless over ``--db``, with settings from the environment.
Bad input prints ``error: ...`` on stderr and exits with status 2.

One subcommand belongs to no feature: ``aiops schema --db FILE`` prints each
stored component's schema version beside the latest this code knows, read-only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from aiops.analysis.store import MIGRATIONS as ANALYSIS_MIGRATIONS
from aiops.cli import config
from aiops.extension import headless_context
from aiops.features import all_commands
from aiops.metrics.store import MIGRATIONS as METRIC_MIGRATIONS
from aiops.slo.store import MIGRATIONS as SLO_MIGRATIONS
from aiops.store.database import STATE_MIGRATIONS, recorded_versions
from aiops.terminal import UsageError, add_db_arguments, default_db, open_store_file
from aiops.triage.store import MIGRATIONS as TRIAGE_MIGRATIONS
from telemetry.store import SPAN_MIGRATIONS

#: Every component's migrations (``telemetry.schema``), as the stores apply them at start.
SCHEMAS = {"spans": SPAN_MIGRATIONS, "aiops.state": STATE_MIGRATIONS, "aiops.analysis": ANALYSIS_MIGRATIONS,
           "aiops.metrics": METRIC_MIGRATIONS, "aiops.slo": SLO_MIGRATIONS, "aiops.triage": TRIAGE_MIGRATIONS}


def schema_rows(path: str) -> list[dict]:
    """Per component: the version stored in ``path``, the latest this code knows, and what that means."""
    stored = recorded_versions(path)
    rows = []
    for component in [*SCHEMAS, *sorted(set(stored) - set(SCHEMAS))]:
        version = stored.get(component, 0)
        latest = SCHEMAS[component][-1].version if component in SCHEMAS else None
        if latest is None:
            state = "unknown to this code"
        elif version == latest:
            state = "up to date"
        elif version > latest:
            state = "newer than this code: upgrade the package"
        else:
            state = "pending: applied at the next start"
        rows.append({"component": component, "version": version, "latest": latest, "state": state})
    return rows


def _add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_arguments(parser)


def _run_schema(args: argparse.Namespace) -> int:
    try:
        rows = schema_rows(args.db or default_db())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"components": rows}, indent=2))
        return 0
    width = max(len(r["component"]) for r in rows)
    print(f"{'component':<{width}}  version  latest  state")
    for r in rows:
        latest = "-" if r["latest"] is None else r["latest"]
        print(f"{r['component']:<{width}}  {r['version']:>7}  {latest:>6}  {r['state']}")
    return 0


_SCHEMA_HELP = "each stored component's schema version and the latest this code knows (read-only)"


#: The subcommands that belong to no feature.
OWN_COMMANDS = {"schema": (_add_schema_arguments, _run_schema, _SCHEMA_HELP), **config.COMMANDS}


def commands() -> dict:
    """Every subcommand: the features' (``aiops.features.all_commands``), ``schema`` and ``config``."""
    found = all_commands()
    for name in OWN_COMMANDS:
        if name in found:
            raise ValueError(f"a feature defines the command {name!r}, which aiops.cli keeps for itself")
    return {**found, **OWN_COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiops", description="AIOps toolkit for Flask applications.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _run, help_text) in commands().items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _open_context(args: argparse.Namespace):
    db = open_store_file(getattr(args, "db", None))
    try:
        return headless_context(db)
    except ValueError as exc:  # a bad AIOPS_* value in the environment
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _add, run, _help = commands()[args.command]
    args.open_context = lambda: _open_context(args)
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
