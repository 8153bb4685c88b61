"""Pushed-metrics HTTP API: ``POST /aiops/metrics/ingest`` and read-back of the stored series.

A thin shell: ``aiops.metrics.parse_metric_batch`` validates, the
``AnalysisStore`` stores the whole batch in one transaction or nothing.
"""
from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, current_app, request

from aiops.incidents import iso
from aiops.metric_detect import MetricDetectionConfig
from aiops.metrics import MAX_BATCH, MetricBatchError, parse_metric_batch, parse_timestamp
from telemetry.config import ConfigKey, as_bool, as_number
from telemetry.web import api_key_error, json_error, json_response, method_not_allowed

METRICS_CONFIG = (
    ConfigKey("AIOPS_METRICS_MAX_BATCH", MAX_BATCH, as_number(1, 1_000_000, integer=True), "points",
              "Most points one POST /aiops/metrics/ingest may carry; a larger batch gets a 400."),
    ConfigKey("AIOPS_METRIC_DETECTION", True, as_bool, "bool",
              "Judge pushed metric series in every analysis pass (False: store them only)."),
    ConfigKey("AIOPS_METRIC_HISTORY_S", 3600.0, as_number(0.0, min_exclusive=True), "seconds",
              "History before the new points that a metric series is judged against."),
    ConfigKey("AIOPS_METRIC_THRESHOLD", 4.0, as_number(0.0, min_exclusive=True), "surprise (-log10 p)",
              "Online detector threshold for pushed metrics (4 = about one in ten thousand)."),
)


def metric_detection_config(settings: dict) -> MetricDetectionConfig | None:
    """The engine's metric judge from ``read_config(app, METRICS_CONFIG)``; None when disabled."""
    if not settings["AIOPS_METRIC_DETECTION"]:
        return None
    default = MetricDetectionConfig()
    return MetricDetectionConfig(history_s=settings["AIOPS_METRIC_HISTORY_S"],
                                 detector=replace(default.detector, threshold=settings["AIOPS_METRIC_THRESHOLD"]))
#: Bytes of request body allowed per point of the batch cap (a point is ~150 bytes of JSON).
_BYTES_PER_POINT = 2048
_SERIES_LIMIT = 100_000

ENDPOINTS = [
    "POST /aiops/metrics/ingest",
    "GET  /aiops/metrics/names",
    "GET  /aiops/metrics/series?service=&name=&start=&end=&limit=",
]


def _state():
    return current_app.extensions["aiops"]


def make_metrics_blueprint(max_batch: int = MAX_BATCH) -> Blueprint:
    bp = Blueprint("aiops_metrics", __name__, url_prefix="/aiops/metrics")

    @bp.route("/ingest", methods=["POST", "GET", "PUT", "DELETE", "PATCH"])
    def ingest():
        if request.method != "POST":
            return method_not_allowed("POST")
        denied = api_key_error(_state().api_key)
        if denied is not None:
            return denied
        if request.content_length is not None and request.content_length > max_batch * _BYTES_PER_POINT:
            return json_error(413, "batch too large",
                              f"at most {max_batch} points ({max_batch * _BYTES_PER_POINT} bytes) per request")
        payload = request.get_json(silent=True)
        if payload is None:
            return json_error(400, "invalid JSON body",
                              'send Content-Type: application/json with a list of {"timestamp", "service", '
                              '"name", "value", "labels"} points, or {"metrics": [...]}')
        try:
            points = parse_metric_batch(payload, max_batch)
        except MetricBatchError as exc:
            return json_error(400, "invalid metric batch", str(exc), index=exc.index, field=exc.field)
        stored = _state().store.insert_metrics(points)
        times = [p.timestamp_s for p in points]
        return json_response({"stored": stored, "series": len({(p.service, p.name) for p in points}),
                              "start": iso(min(times)), "end": iso(max(times))})

    @bp.get("/names")
    def names():
        found = _state().store.metric_names()
        return json_response({"series_count": len(found),
                              "series": [{"service": s, "name": n} for s, n in found]})

    @bp.get("/series")
    def series():
        bounds = {}
        for arg in ("start", "end"):
            raw = request.args.get(arg)
            if raw is None:
                bounds[arg] = None
                continue
            try:
                bounds[arg] = parse_timestamp(float(raw) if _is_number(raw) else raw)
            except ValueError as exc:
                return json_error(400, f"invalid {arg}", f"{arg} {exc}, got {raw!r}")
        raw_limit = request.args.get("limit", "10000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _SERIES_LIMIT:
            return json_error(400, "invalid limit", f"limit must be an integer within [1, {_SERIES_LIMIT}], "
                                                    f"got {raw_limit!r}")
        points = _state().store.metric_series(request.args.get("service") or None, request.args.get("name") or None,
                                              bounds["start"], bounds["end"], int(raw_limit))
        return json_response({"point_count": len(points), "points": [p.to_dict() for p in points]})

    return bp


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
