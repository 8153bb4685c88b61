"""``python -m aiops replay``: replay an incident from the store or from CSV files.

Writes ``replay.json`` (the report), ``replay.md`` (the narrative),
``replay_timeline.png`` and one ``replay_<service>_<metric>.png`` per metric
into ``--out`` (default ``replay-<incident id>``), prints the narrative and
the files written. ``--sample`` replays the seeded incident shipped in the
package (``aiops/replay/samples/``). Exit status 2 on bad input, too little
history, or without the ``[replay]`` extra (scikit-learn, matplotlib).
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from aiops.replay.config import REPLAY_CONFIG, replay_config
from aiops.replay.data import InsufficientHistory, ReplayInputError
from aiops.replay.model import require_model
from aiops.replay.plots import require_plots
from aiops.replay.report import replay_from_csv, replay_from_store, write_outputs
from aiops.terminal import UsageError
from llm.writer import LLMWriter
from telemetry.config import read_environment
from telemetry.extras import MissingExtra

#: The seeded autoscaling stall shipped with the package (``aiops.testing.replay_sample``), as CSV files.
SAMPLES = Path(__file__).resolve().parent / "samples"
SAMPLE_FILES = {"metadata": SAMPLES / "incident_metadata.csv", "baseline": SAMPLES / "historical_baseline.csv.gz",
                "actual": SAMPLES / "actual_metrics.csv"}


def add_replay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incident", metavar="ID", help="incident id (required with --db; selects a row of "
                                                         "--metadata when it holds several)")
    parser.add_argument("--db", metavar="FILE", help="span store (default: $AIOPS_DB_PATH, $TELEMETRY_DB_PATH, "
                                                     "instance/telemetry.db)")
    csv_group = parser.add_argument_group("from CSV files (all three together)")
    csv_group.add_argument("--metadata", metavar="FILE", help="incident_metadata.csv: incident_id,start,end,"
                                                              "services,expected_slas")
    csv_group.add_argument("--baseline", metavar="FILE", help="historical_baseline.csv: timestamp,service,"
                                                              "metric,value (or timestamp,value)")
    csv_group.add_argument("--actual", metavar="FILE", help="actual_metrics.csv: same format, the incident")
    parser.add_argument("--sample", action="store_true", help="replay the sample incident shipped in the package "
                                                               f"(the three CSV files in {SAMPLES})")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: replay-<incident id>)")


def run_replay_cmd(args: argparse.Namespace) -> int:
    try:
        require_model()
        require_plots()
    except MissingExtra as exc:
        raise UsageError(str(exc)) from None
    try:
        settings = read_environment(REPLAY_CONFIG)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    llm = None
    if args.sample:
        if args.db or args.metadata or args.baseline or args.actual:
            raise UsageError("--sample replays the shipped CSV files: use it without --db, --metadata, --baseline "
                             "and --actual")
        args.metadata, args.baseline, args.actual = (str(SAMPLE_FILES[k]) for k in ("metadata", "baseline", "actual"))
    csv_args = [args.metadata, args.baseline, args.actual]
    try:
        if any(csv_args):
            if not all(csv_args):
                raise UsageError("--metadata, --baseline and --actual go together (all three CSV files)")
            if args.db:
                raise UsageError("use either --db (a stored incident) or the CSV files, not both")
            result = replay_from_csv(args.metadata, args.baseline, args.actual, args.incident,
                                     replay_config(settings, store=False))
        else:
            if not args.incident:
                raise UsageError("--incident ID is required to replay from the store "
                                 "(or pass --metadata, --baseline and --actual, or --sample)")
            ctx = args.open_context()
            incident = ctx.ask("incident_record", args.incident)
            if incident is None:
                raise UsageError(f"incident {args.incident} not found (list them with: aiops incidents "
                                 "--status all)")
            llm = ctx.llm
            result = replay_from_store(ctx.db, incident, ctx.settings,
                                       lambda *a: ctx.ask("metric_points", *a, default={}))
    except InsufficientHistory as exc:
        hint = "" if any(csv_args) else (
            f"; history is what the store holds before the replay window, which starts AIOPS_REPLAY_MARGIN_S="
            f"{settings['AIOPS_REPLAY_MARGIN_S']:g} s before the incident, on a grid of AIOPS_REPLAY_STEP_S="
            f"{settings['AIOPS_REPLAY_STEP_S']:g} s (AIOPS_REPLAY_MIN_HISTORY_POINTS="
            f"{settings['AIOPS_REPLAY_MIN_HISTORY_POINTS']} points needed)")
        raise UsageError(f"{exc}{hint}") from None
    except ReplayInputError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = args.out or "replay-" + re.sub(r"[^A-Za-z0-9._-]+", "_", result.incident.incident_id)
    paths = write_outputs(result, out, llm=llm or _writer())
    with open(paths["markdown"], encoding="utf-8") as handle:
        print(handle.read())
    print(f"wrote {paths['json']}, {paths['markdown']}, {paths['timeline']} and {len(paths['metrics'])} metric "
          f"plots in {os.path.abspath(out)} ({result.duration_ms / 1000:.1f} s, {len(result.metrics)} metrics, "
          f"{len(result.zones)} zones)")
    return 0


def _writer() -> LLMWriter:
    try:
        return LLMWriter.from_environment()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


COMMANDS = {"replay": (add_replay, run_replay_cmd,
                       "resilience replay of an incident: expected vs actual, zones, plots")}
