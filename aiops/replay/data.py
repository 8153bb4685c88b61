"""Replay inputs: metric series, incident metadata, SLAs, and their CSV loaders.

Pure Python and numpy: no Flask, no SQL. Times are epoch seconds (float).

CSV formats (a header row is required):

``incident_metadata.csv``
    ``incident_id,start,end,services,expected_slas``; ``start``/``end`` are
    ISO 8601 (``2026-11-02T14:00:00Z``; no offset means UTC) or epoch
    seconds; ``services`` is separated by ``;`` or ``|``; ``expected_slas``
    (optional column) is ``;``-separated ``service:metric<=value`` or
    ``service:metric>=value`` (``metric<=value`` applies to every listed
    service that has the metric; so does ``*:metric<=value``).
``historical_baseline.csv``, ``actual_metrics.csv``
    long format ``timestamp,service,metric,value``; a two-column
    ``timestamp,value`` file is one metric (``default_service``/``value``).

A name ending in ``.gz`` is read through gzip. Every bad row raises
:class:`ReplayInputError` naming the file, the line and the column.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from telemetry.timefmt import iso, parse_time

#: A metric's identity: (service, metric name).
MetricKey = tuple[str, str]


class ReplayInputError(ValueError):
    """Bad replay input; the message names the file, the line and the column."""


class InsufficientHistory(ValueError):
    """Too little history before the incident to train a model.

    ``needed_points``/``found_points`` count grid steps of ``step_s`` seconds."""

    def __init__(self, message: str, needed_points: int, found_points: int, step_s: float):
        super().__init__(message)
        self.needed_points, self.found_points, self.step_s = needed_points, found_points, step_s


@dataclass
class Series:
    """One metric: timestamps (epoch s, ascending) and values."""

    service: str
    metric: str
    timestamps_s: np.ndarray
    values: np.ndarray

    @property
    def key(self) -> MetricKey:
        return (self.service, self.metric)


@dataclass(frozen=True)
class SLA:
    """``service:metric <= threshold`` (op ``<=``) or ``>=``; ``service`` None = every service."""

    service: str | None
    metric: str
    op: str
    threshold: float

    def violated(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values that break the SLA (NaN never does)."""
        with np.errstate(invalid="ignore"):
            return values > self.threshold if self.op == "<=" else values < self.threshold

    def label(self, service: str | None = None) -> str:
        return f"{service or self.service or '*'}:{self.metric}{self.op}{self.threshold:g}"


@dataclass
class IncidentMeta:
    """What the replay needs to know of an incident (epoch seconds)."""

    incident_id: str
    start_s: float
    end_s: float
    services: list[str] = field(default_factory=list)
    slas: list[SLA] = field(default_factory=list)
    title: str = ""
    #: (service, route or metric prefix) the trace-based RCA blamed; breaks same-step ties in the cascade
    root_hint: tuple[str, str] | None = None


_SLA = re.compile(r"^\s*(?:(?P<service>[^:<>=]+):)?(?P<metric>[^:<>=]+?)\s*(?P<op><=|>=|<|>)\s*(?P<value>[^<>=]+?)\s*$")


def parse_slas(text: str) -> list[SLA]:
    """``"checkout:latency_p95_ms<=300; inventory:pods>=4"`` -> SLAs; raises ValueError saying the syntax."""
    out = []
    for part in re.split(r"[;|]", text or ""):
        if not part.strip():
            continue
        m = _SLA.match(part)
        value = None
        if m:
            try:
                value = float(m["value"])
            except ValueError:
                value = None
        if m is None or value is None or not math.isfinite(value):
            raise ValueError(f"SLA {part.strip()!r} is not service:metric<=number or service:metric>=number")
        op = "<=" if m["op"] in ("<=", "<") else ">="
        service = m["service"].strip() if m["service"] else None
        out.append(SLA(None if service == "*" else service, m["metric"].strip(), op, value))
    return out


def _open_csv(path: str):
    try:
        if path.endswith(".gz"):
            handle = gzip.open(path, "rt", newline="", encoding="utf-8")
        else:
            handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise ReplayInputError(f"{path}: line 1: not a readable CSV file: {exc}") from None
    if not header or not any(h.strip() for h in header):
        handle.close()
        raise ReplayInputError(f"{path}: line 1: empty file (a header row is required)")
    return handle, reader, [h.strip().lower() for h in header]


def _rows(path: str, reader, header: list[str]):
    """(line number, {column: text}) for every non-blank row; checks the column count."""
    try:
        for row in reader:
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ReplayInputError(f"{path}: line {reader.line_num}: {len(row)} columns, the header has "
                                       f"{len(header)} ({','.join(header)})")
            yield reader.line_num, dict(zip(header, (c.strip() for c in row)))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ReplayInputError(f"{path}: line {reader.line_num}: {exc}") from None


def load_metrics_csv(path: str, default_service: str = "service", default_metric: str = "value") -> list[Series]:
    """Long ``timestamp,service,metric,value`` (or two-column ``timestamp,value``) -> one Series per
    (service, metric), sorted by time. Raises ReplayInputError naming file, line and column."""
    handle, reader, header = _open_csv(path)
    with handle:
        long_format = {"timestamp", "service", "metric", "value"}
        if set(header) >= long_format:
            two_column = False
        elif set(header) >= {"timestamp", "value"} and len(header) == 2:
            two_column = True
        else:
            raise ReplayInputError(f"{path}: line 1: header {','.join(header)!r} has neither the columns "
                                   "timestamp,service,metric,value nor timestamp,value")
        points: dict[MetricKey, list[tuple[float, float]]] = {}
        for line, row in _rows(path, reader, header):
            try:
                ts = parse_time(row["timestamp"])
            except ValueError as exc:
                raise ReplayInputError(f"{path}: line {line}, column 'timestamp': {row['timestamp']!r} {exc}") from None
            raw = row["value"]
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ReplayInputError(f"{path}: line {line}, column 'value': {raw!r} is not a finite number")
            if two_column:
                key = (default_service, default_metric)
            else:
                for column in ("service", "metric"):
                    if not row[column]:
                        raise ReplayInputError(f"{path}: line {line}, column {column!r}: empty")
                key = (row["service"], row["metric"])
            points.setdefault(key, []).append((ts, value))
    if not points:
        raise ReplayInputError(f"{path}: no data rows after the header")
    out = []
    for (service, metric), pts in sorted(points.items()):
        arr = np.array(sorted(pts), dtype=float)
        out.append(Series(service, metric, arr[:, 0], arr[:, 1]))
    return out


def load_incidents_csv(path: str) -> list[IncidentMeta]:
    """``incident_metadata.csv`` -> incidents in file order (see the module docstring)."""
    handle, reader, header = _open_csv(path)
    sla_column = next((c for c in ("expected_slas", "expected_sla", "slas", "sla") if c in header), None)
    with handle:
        missing = [c for c in ("incident_id", "start", "end", "services") if c not in header]
        if missing:
            raise ReplayInputError(f"{path}: line 1: missing column(s) {', '.join(missing)}; expected "
                                   "incident_id,start,end,services,expected_slas")
        out = []
        for line, row in _rows(path, reader, header):
            if not row["incident_id"]:
                raise ReplayInputError(f"{path}: line {line}, column 'incident_id': empty")
            times = {}
            for column in ("start", "end"):
                try:
                    times[column] = parse_time(row[column])
                except ValueError as exc:
                    raise ReplayInputError(f"{path}: line {line}, column {column!r}: {row[column]!r} {exc}") from None
            if times["end"] <= times["start"]:
                raise ReplayInputError(f"{path}: line {line}, column 'end': {row['end']!r} is not after the "
                                       f"start {row['start']!r}")
            services = [s.strip() for s in re.split(r"[;|]", row["services"]) if s.strip()]
            if not services:
                raise ReplayInputError(f"{path}: line {line}, column 'services': empty (list them separated by ;)")
            try:
                slas = parse_slas(row[sla_column]) if sla_column else []
            except ValueError as exc:
                raise ReplayInputError(f"{path}: line {line}, column {sla_column!r}: {exc}") from None
            out.append(IncidentMeta(row["incident_id"], times["start"], times["end"], services, slas,
                                    row.get("title", "")))
    if not out:
        raise ReplayInputError(f"{path}: no incident rows after the header")
    return out


def write_metrics_csv(path: str, series: list[Series]) -> None:
    """Long format ``timestamp,service,metric,value`` with ISO 8601 UTC timestamps."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    opener = (lambda: io.TextIOWrapper(gzip.GzipFile(path, "wb", compresslevel=9, mtime=0), encoding="utf-8",
                                       newline="")) \
        if path.endswith(".gz") else (lambda: open(path, "w", newline="", encoding="utf-8"))
    rows = []
    for s in series:
        rows += [(t, s.service, s.metric, v) for t, v in zip(s.timestamps_s, s.values)]
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    with opener() as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "service", "metric", "value"])
        for t, service, metric, value in rows:
            writer.writerow([iso(t), service, metric, f"{value:.6g}"])


def write_incidents_csv(path: str, incidents: list[IncidentMeta]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["incident_id", "start", "end", "services", "expected_slas"])
        for i in incidents:
            writer.writerow([i.incident_id, iso(i.start_s), iso(i.end_s), ";".join(i.services),
                             ";".join(s.label() for s in i.slas)])


def merge_series(*groups: list[Series]) -> dict[MetricKey, Series]:
    """Concatenate series of the same key (e.g. baseline + actual), sorted by time; a
    timestamp present in several keeps the later group's value."""
    out: dict[MetricKey, list[Series]] = {}
    for group in groups:
        for s in group:
            out.setdefault(s.key, []).append(s)
    merged = {}
    for key, parts in out.items():
        ts = np.concatenate([p.timestamps_s for p in parts])
        vs = np.concatenate([p.values for p in parts])
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        keep = np.append(ts[1:] != ts[:-1], True)  # last of equal timestamps (the later group)
        merged[key] = Series(key[0], key[1], ts[keep], vs[keep])
    return merged


def infer_step_s(series: list[Series]) -> float:
    """Median spacing of the samples (seconds), at least 1 s; 60 when nothing to measure."""
    gaps = [np.diff(s.timestamps_s) for s in series if len(s.timestamps_s) > 1]
    gaps = np.concatenate(gaps) if gaps else np.array([])
    gaps = gaps[gaps > 0]
    return float(max(1.0, np.median(gaps))) if len(gaps) else 60.0


def to_grid(series: Series, grid_s: np.ndarray, step_s: float) -> np.ndarray:
    """Mean of the samples in each ``[t, t + step_s)`` bucket of ``grid_s``; NaN for empty buckets."""
    idx = np.floor((series.timestamps_s - grid_s[0]) / step_s).astype(np.int64)
    ok = (idx >= 0) & (idx < len(grid_s))
    sums = np.bincount(idx[ok], weights=series.values[ok], minlength=len(grid_s))
    counts = np.bincount(idx[ok], minlength=len(grid_s))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
