"""Command line: ``python -m aiops SUBCOMMAND ...``.

Subcommands are registered in :data:`COMMANDS` (name -> (add_arguments, run)):
to add one, write an ``_add_x(parser)`` and a ``_run_x(args) -> int`` and list
them there.

``detect``
    Run the online detector over a CSV (``timestamp,value`` header by default)
    and print the anomalies as JSON.  Exit status 2 on bad input.
``incidents``, ``analyze``
    Read a span store's incidents, or run one analysis pass (see aiops.cli).
``narrative``, ``brief``, ``postmortem``, ``comms``
    Write an incident's documents (see llm.cli).
``replay``
    Resilience replay of an incident from the store or CSV files (see aiops.replay.cli).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import fields
from typing import Callable

from aiops.cli import UsageError, add_analyze, add_incidents, run_analyze, run_incidents
from aiops.online import DETECTOR_NAME, DetectorConfig, OnlineDetector, with_season_from
from aiops.replay.cli import add_replay, run_replay_cmd


# -- detect ------------------------------------------------------------------

def _add_detect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", required=True, metavar="FILE", help="CSV file with a header row")
    parser.add_argument("--column", default="value", help="column holding the values (default: value)")
    parser.add_argument(
        "--timestamp-column", default="timestamp", help="column holding the timestamps (default: timestamp)"
    )
    defaults = DetectorConfig()
    group = parser.add_argument_group("detector parameters (defaults are the benchmarked configuration)")
    for f in fields(DetectorConfig):
        if f.name == "season_points":
            group.add_argument(
                "--season-points", type=int, default=None, metavar="POINTS",
                help="points in one day (0 = no seasonal excuse); default: one day divided by the median step "
                     f"of the timestamps, {defaults.season_points} when they do not parse",
            )
            continue
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            metavar=f.name.split("_")[-1].upper(),
            help=f"default: {getattr(defaults, f.name)}",
        )


def _read_csv(path: str, column: str, ts_column: str) -> tuple[list[str], list[float]]:
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not a readable CSV file: {exc}") from None
        if not header:
            raise UsageError(f"{path}: empty file (a header row is required)")
        for wanted in (ts_column, column):
            if wanted not in header:
                raise UsageError(f"{path}: no column {wanted!r} (columns: {', '.join(header)})")
        timestamps: list[str] = []
        values: list[float] = []
        try:
            for row in reader:
                raw = row.get(column)
                line = reader.line_num
                try:
                    value = float(raw) if raw is not None else math.nan
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise UsageError(f"{path}: line {line}: value {raw!r} in column {column!r} is not a finite number")
                timestamps.append(row.get(ts_column) or "")
                values.append(value)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: line {reader.line_num}: {exc}") from None
    return timestamps, values


def _run_detect(args: argparse.Namespace) -> int:
    given = {f.name: getattr(args, f.name) for f in fields(DetectorConfig) if getattr(args, f.name) is not None}
    try:
        config = DetectorConfig(**given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    timestamps, values = _read_csv(args.csv, args.column, args.timestamp_column)
    season_from = "--season-points"
    if args.season_points is None:
        config, season_from = with_season_from(config, timestamps)
    detector = OnlineDetector(config)
    anomalies = []
    for ts, value in zip(timestamps, values):
        verdict = detector.update(ts, value)
        if verdict.is_anomaly:
            anomalies.append(
                {
                    "timestamp": ts,
                    "value": value,
                    "expected": round(verdict.expected, 6),
                    "score": round(verdict.score, 4),
                    "feature": verdict.feature,
                }
            )
    result = {
        "anomalies": anomalies,
        "points": len(values),
        "detector": {"name": DETECTOR_NAME, "parameters": config.to_dict(), "season_points_from": season_from},
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# -- dispatch ----------------------------------------------------------------

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]

COMMANDS: dict[str, Command] = {
    "detect": (_add_detect, _run_detect, "flag anomalies in a CSV series with the online detector"),
    "incidents": (add_incidents, run_incidents, "list incidents of a span store, or show one"),
    "analyze": (add_analyze, run_analyze, "run one analysis pass over a span store now"),
    "replay": (add_replay, run_replay_cmd, "resilience replay of an incident: expected vs actual, zones, plots"),
}
from llm.cli import command as _document_command  # noqa: E402  (llm imports aiops.cli)

COMMANDS.update({kind: _document_command(kind) for kind in ("narrative", "brief", "postmortem", "comms")})

from aiops.slo_cli import add_slo, run_slo  # noqa: E402
COMMANDS["slo"] = (add_slo, run_slo, "SLO budgets, burn rates, risk and open SLO alerts of a span store")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aiops", description="AIOps toolkit for Flask applications.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _run, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _add, run, _help = COMMANDS[args.command]
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0


if __name__ == "__main__":
    sys.exit(main())
