"""Replay inputs from the store: a stored incident -> IncidentMeta and metric series.

Request series come from spans, rolled up per ``step_s`` bucket into
``<route> requests_per_s``, ``<route> latency_p95_ms`` (nearest-rank, as the
analysis computes it) and ``<route> error_ratio`` for every route the
incident affected; pushed metrics of the affected services are added as they
are. The incident and the metric points come from the other features as plain
data (``incident_record``, ``metric_points``); spans from the shared table.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from aiops.replay.data import IncidentMeta, Series
from aiops.stats import percentile
from aiops.store.database import Database

#: Spans read per store call while rolling up history (bounded memory).
CHUNK_S = 3600.0


def incident_meta(incident: dict, min_duration_s: float = 60.0) -> IncidentMeta:
    """Start = first detection; end = resolution (or last detection), at least ``min_duration_s`` later.
    ``incident`` is a stored incident (``incident_record``: epoch-second times)."""
    end = incident.get("resolved_at") or incident["last_detected"]
    end = max(end, incident["first_detected"] + min_duration_s)
    root = incident["root_cause"]
    services = list(dict.fromkeys([root["service"]] + [k[0] for k in incident["affected"]]
                                  + [a["service"] for a in incident["anomalies"]]))
    return IncidentMeta(incident["id"], incident["first_detected"], end, services, [], incident["title"],
                        root_hint=(root["service"], root["endpoint"]))


def incident_keys(incident: dict) -> set[tuple[str, str]]:
    """Every (service, route) the incident affected or flagged."""
    return {tuple(k) for k in incident["affected"]} | {(a["service"], a["endpoint"]) for a in incident["anomalies"]}


def span_series(db: Database, keys: set[tuple[str, str]], start_s: float, end_s: float,
                step_s: float) -> list[Series]:
    """Per-bucket request rate, p95 latency and error ratio of each (service, route) in ``keys``.

    A bucket with no request has rate 0 and no latency/error value (NaN)."""
    n = int(math.ceil((end_s - start_s) / step_s))
    rate = {k: np.zeros(n) for k in keys}
    p95 = {k: np.full(n, np.nan) for k in keys}
    err = {k: np.full(n, np.nan) for k in keys}
    t = start_s
    while t < end_s:
        chunk_end = min(end_s, t + CHUNK_S)
        buckets: dict[tuple[int, tuple[str, str]], list] = {}
        for service, route, started, duration_ms, error in db.span_rows(t, chunk_end):
            key = (service, route)
            if key in keys:
                i = int((started - start_s) // step_s)
                if 0 <= i < n:
                    cell = buckets.get((i, key))
                    if cell is None:
                        cell = buckets[(i, key)] = [[], 0]
                    cell[0].append(duration_ms)
                    cell[1] += 1 if error else 0
        for (i, key), (latencies, errors) in buckets.items():
            latencies.sort()
            rate[key][i] = len(latencies) / step_s
            p95[key][i] = percentile(latencies, 95)
            err[key][i] = errors / len(latencies)
        t = chunk_end
    observed = [int(np.flatnonzero(r)[-1]) for r in rate.values() if r.any()]
    n = max(observed) + 1 if observed else 0  # no zero traffic invented after the last stored span
    times = start_s + step_s * np.arange(n)
    out = []
    for key in sorted(keys):
        seen = rate[key] > 0
        if not seen.any():
            continue
        first = int(np.argmax(seen))  # the route did not exist before its first request
        sl = slice(first, n)
        rate[key], p95[key], err[key] = rate[key][:n], p95[key][:n], err[key][:n]
        service, route = key
        out += [Series(service, f"{route} requests_per_s", times[sl], rate[key][sl]),
                Series(service, f"{route} latency_p95_ms", times[sl], p95[key][sl]),
                Series(service, f"{route} error_ratio", times[sl], err[key][sl])]
    return [Series(s.service, s.metric, s.timestamps_s[np.isfinite(s.values)], s.values[np.isfinite(s.values)])
            for s in out]


def pushed_series(points: dict[tuple[str, str], list[tuple[float, float]]]) -> list[Series]:
    """``metric_points``' answer as series, one per (service, metric), in time order."""
    out = []
    for (service, name), pts in sorted(points.items()):
        arr = np.array(sorted(pts), dtype=float)
        out.append(Series(service, name, arr[:, 0], arr[:, 1]))
    return out


def load_from_store(db: Database, incident: dict, history_s: float, margin_s: float, step_s: float,
                    metric_points: Callable[[list[str], float, float], dict] | None = None
                    ) -> tuple[IncidentMeta, list[Series]]:
    """(incident, series over [start - margin - history, end + margin]) of a stored incident;
    ``metric_points(services, start_s, end_s)`` reads pushed metrics (none when None)."""
    meta = incident_meta(incident)
    start = math.floor((meta.start_s - margin_s - history_s) / step_s) * step_s
    end = meta.end_s + margin_s
    series = span_series(db, incident_keys(incident), start, end, step_s)
    if metric_points is not None:
        series += pushed_series(metric_points(meta.services, start, end))
    return meta, series
