"""``aiops detect``: the online detector (the one pushed metrics use) over a CSV series.

Reads ``timestamp,value`` (column names are options), prints the anomalies
as JSON with the detector's parameters. Exit status 2 on bad input.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import fields

from aiops.metrics.online import DETECTOR_NAME, DetectorConfig, OnlineDetector, with_season_from
from aiops.terminal import UsageError


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


COMMANDS = {
    "detect": (_add_detect, _run_detect, "flag anomalies in a CSV series with the online detector"),
}
