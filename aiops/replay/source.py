"""Replay inputs from the analysis store: an incident id -> IncidentMeta and metric series.

Request series come from spans, rolled up per ``step_s`` bucket with
``aiops.series.aggregate`` (the analysis engine's own aggregation) into
``<route> requests_per_s``, ``<route> latency_p95_ms`` and
``<route> error_ratio`` for every route the incident affected; pushed
metrics (``AnalysisStore.metric_series``, when the store has them) of the
affected services are added as they are, averaged per bucket across labels.
No SQL here: only the store's methods.
"""
from __future__ import annotations

import math

import numpy as np

from aiops.incidents import Incident
from aiops.replay.data import IncidentMeta, Series
from aiops.series import AGGREGATE_COLUMNS, aggregate

#: Spans read per store call while rolling up history (bounded memory).
CHUNK_S = 3600.0


def incident_meta(incident: Incident, min_duration_s: float = 60.0) -> IncidentMeta:
    """Start = first detection; end = resolution (or last detection), at least ``min_duration_s`` later."""
    end = incident.resolved_at or incident.last_detected
    end = max(end, incident.first_detected + min_duration_s)
    services = list(dict.fromkeys([incident.root_cause["service"]] + [k[0] for k in incident.affected]
                                  + [a["service"] for a in incident.anomalies]))
    return IncidentMeta(incident.id, incident.first_detected, end, services, [], incident.title,
                        root_hint=(incident.root_cause["service"], incident.root_cause["endpoint"]))


def span_series(store, keys: set[tuple[str, str]], start_s: float, end_s: float, step_s: float) -> list[Series]:
    """Per-bucket request rate, p95 latency and error ratio of each (service, route) in ``keys``.

    A bucket with no request has rate 0 and no latency/error value (NaN)."""
    n = int(math.ceil((end_s - start_s) / step_s))
    rate = {k: np.zeros(n) for k in keys}
    p95 = {k: np.full(n, np.nan) for k in keys}
    err = {k: np.full(n, np.nan) for k in keys}
    t = start_s
    while t < end_s:
        chunk_end = min(end_s, t + CHUNK_S)
        buckets: dict[int, list[dict]] = {}
        for span in store.window_spans(t, chunk_end, AGGREGATE_COLUMNS):
            if (span["service"], span["route"]) in keys and span["start_time"] < chunk_end:
                i = int((span["start_time"] - start_s) // step_s)
                if 0 <= i < n:
                    buckets.setdefault(i, []).append(span)
        for i, spans in buckets.items():
            for key, stats in aggregate(spans).items():
                rate[key][i] = stats.count / step_s
                p95[key][i] = stats.p95_ms
                err[key][i] = stats.error_ratio
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


def pushed_series(store, services: list[str], start_s: float, end_s: float) -> list[Series]:
    """Pushed metrics of ``services`` in [start_s, end_s] (none when the store keeps no metrics)."""
    reader = getattr(store, "metric_series", None)
    if reader is None:
        return []
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for service in services:
        for p in reader(service=service, start_s=start_s, end_s=end_s):
            points.setdefault((p.service, p.name), []).append((float(p.timestamp_s), float(p.value)))
    out = []
    for (service, name), pts in sorted(points.items()):
        arr = np.array(sorted(pts), dtype=float)
        out.append(Series(service, name, arr[:, 0], arr[:, 1]))
    return out


def load_from_store(store, incident_id: str, history_s: float, margin_s: float, step_s: float
                    ) -> tuple[IncidentMeta, list[Series]] | None:
    """(incident, series over [start - margin - history, end + margin]) or None for an unknown id."""
    incident = store.incident(incident_id)
    if incident is None:
        return None
    meta = incident_meta(incident)
    start = math.floor((meta.start_s - margin_s - history_s) / step_s) * step_s
    end = meta.end_s + margin_s
    keys = {tuple(k) for k in incident.keys}
    series = span_series(store, keys, start, end, step_s) + pushed_series(store, meta.services, start, end)
    return meta, series
