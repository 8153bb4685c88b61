"""Pushed-metrics HTTP API: ``POST /aiops/metrics/ingest`` and read-back of the stored series.

A thin shell: ``aiops.metrics.model.parse_metric_batch`` validates, the
``MetricStore`` stores the whole batch in one transaction or nothing.
"""
from __future__ import annotations

from flask import current_app, request

from aiops.metrics.model import MAX_BATCH, parse_metric_batch
from telemetry.errors import PayloadError
from telemetry.timefmt import iso, parse_time_field
from telemetry.web import ApiBlueprint, json_body, json_response

#: Bytes of request body allowed per point of the batch cap (a point is ~150 bytes of JSON).
_BYTES_PER_POINT = 2048
_SERIES_LIMIT = 100_000

ENDPOINTS = [
    "POST /aiops/metrics/ingest",
    "GET  /aiops/metrics/names",
    "GET  /aiops/metrics/series?service=&name=&start=&end=&limit=",
]


def _store():
    return current_app.extensions["aiops"].features["metrics"].store


def make_blueprint(max_batch: int = MAX_BATCH) -> ApiBlueprint:
    bp = ApiBlueprint("aiops_metrics", __name__, url_prefix="/aiops/metrics",
                      api_key=lambda: current_app.extensions["aiops"].api_key)

    @bp.post("/ingest")
    def ingest():
        if request.content_length is not None and request.content_length > max_batch * _BYTES_PER_POINT:
            raise PayloadError("body", f"at most {max_batch} points ({max_batch * _BYTES_PER_POINT} bytes) per request",
                               error="batch too large", status=413)
        payload = json_body(what='a list of {"timestamp", "service", "name", "value", "labels"} points, '
                                 'or {"metrics": [...]}')
        points = parse_metric_batch(payload, max_batch)
        stored = _store().insert_metrics(points)
        times = [p.timestamp_s for p in points]
        return json_response({"stored": stored, "series": len({(p.service, p.name) for p in points}),
                              "start": iso(min(times)), "end": iso(max(times))})

    @bp.get("/names")
    def names():
        found = _store().metric_names()
        return json_response({"series_count": len(found),
                              "series": [{"service": s, "name": n} for s, n in found]})

    @bp.get("/series")
    def series():
        bounds = {arg: None if request.args.get(arg) is None else parse_time_field(request.args[arg], arg)
                  for arg in ("start", "end")}
        raw_limit = request.args.get("limit", "10000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _SERIES_LIMIT:
            raise PayloadError("limit", f"limit must be an integer within [1, {_SERIES_LIMIT}], got {raw_limit!r}")
        points = _store().metric_series(request.args.get("service") or None, request.args.get("name") or None,
                                        bounds["start"], bounds["end"], int(raw_limit))
        return json_response({"point_count": len(points), "points": [p.to_dict() for p in points]})

    return bp
