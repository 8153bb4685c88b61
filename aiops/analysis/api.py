"""The analysis API under /aiops: metrics, incidents and their lifecycle, passes, dependencies,
traces and status. A thin shell over the analysis store and the pure algorithms.

Every answer is pretty-printed JSON; every error is ``{"error", "detail"}``
(plus ``field``) with a 4xx status; mutating calls need ``X-API-Key`` when
``AIOPS_API_KEY`` is set (``telemetry.web.ApiBlueprint``).
"""
from __future__ import annotations

import re
import time

from flask import current_app, request

from aiops.analysis.incidents import STATUSES, TransitionError, transition
from aiops.analysis.rca import build_trees
from aiops.analysis.series import AGGREGATE_COLUMNS, aggregate
from aiops.scheduler import SCHEDULER, analysis_job_id
from aiops.signals import endpoint_name
from telemetry.errors import PayloadError
from telemetry.timefmt import iso
from telemetry.web import ApiBlueprint, json_error, json_response, query_choice, query_number

_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
ENDPOINTS = [
    "GET  /aiops/metrics", "GET  /aiops/incidents?status=active|acknowledged|resolved|open|all",
    "GET  /aiops/incidents/<id>", "POST /aiops/incidents/<id>/acknowledge", "POST /aiops/incidents/<id>/resolve",
    "POST /aiops/analyze", "GET  /aiops/dependencies", "GET  /aiops/traces/<trace_id>", "GET  /aiops/status",
]


def health(error_ratio: float, latency_ratio: float) -> dict:
    """A 0-100 score: 60 points for errors (all lost at a 50% error ratio),
    40 for latency (all lost at 5x the baseline median); healthy >= 80,
    degraded >= 50, else critical."""
    score = 100.0 - 60.0 * min(1.0, error_ratio / 0.5) - 40.0 * min(1.0, max(0.0, latency_ratio - 1.0) / 4.0)
    status = "healthy" if score >= 80 else "degraded" if score >= 50 else "critical"
    return {"health_score": round(score, 1), "status": status}


def _ctx():
    return current_app.extensions["aiops"]


def _state():
    return current_app.extensions["aiops"].features["analysis"]


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops", __name__, url_prefix="/aiops", api_key=lambda: _ctx().api_key)

    @bp.get("/metrics")
    def metrics():
        state = _state()
        window_s = query_number("window_s", state.config.window_s, 0.0, 86400)
        now = time.time()
        stats = aggregate(state.store.window_spans(now - window_s, now, AGGREGATE_COLUMNS))
        baselines = state.store.load_baselines()
        single = len({k[0] for k in stats} | {k[0] for k in baselines}) <= 1
        out = {}
        for key in sorted(stats):
            s, b = stats[key], baselines.get(key)
            baseline_ms = b.p50_ms if b is not None and b.requests else None
            ratio = s.p50_ms / baseline_ms if baseline_ms else 1.0
            out[endpoint_name(key, single)] = {
                "service": key[0], "route": key[1],
                "request_count": s.count,
                "avg_latency_ms": round(s.mean_ms, 2),
                "p50_latency_ms": round(s.p50_ms, 2),
                "p95_latency_ms": round(s.p95_ms, 2),
                "error_rate": round(s.error_ratio, 4),
                "baseline_latency_ms": round(baseline_ms, 2) if baseline_ms else None,
                "baseline_p95_latency_ms": round(b.p95_ms, 2) if b is not None and b.requests else None,
                "baseline_error_rate": round(b.error_ratio, 4) if b is not None and b.requests else None,
                "baseline_ready": bool(b is not None and b.ready(state.config)),
                "requests_per_s": round(s.count / window_s, 3),
                "status_distribution": {str(k): v for k, v in sorted(s.status_counts.items())},
                "health": health(s.error_ratio, ratio),
            }
        return json_response({"timestamp": int(now), "window_s": window_s, "metrics": out})

    @bp.get("/incidents")
    def incidents():
        state = _state()
        status = query_choice("status", "open", ("open", "all") + STATUSES)
        limit = query_number("limit", 100, 0.0, 1000)
        if status == "open":
            found = [i for i in reversed(state.store.open_incidents())][: int(limit)]
        else:
            found = state.store.incidents(None if status == "all" else status, int(limit))
        single = state.single_service()
        return json_response({"incident_count": len(found), "status": status,
                              "active_incidents": [i.to_json(single) for i in found]})

    @bp.get("/incidents/<incident_id>")
    def incident(incident_id: str):
        state = _state()
        found = state.store.incident(incident_id)
        if found is None:
            return _no_incident(incident_id)
        return json_response(found.to_json(state.single_service()))

    def _transition(incident_id: str, action: str):
        state = _state()
        found = state.store.incident(incident_id)
        if found is None:
            return _no_incident(incident_id)
        body = request.get_json(silent=True)
        note = body.get("note") if isinstance(body, dict) and isinstance(body.get("note"), str) else None
        ctx = _ctx()
        try:
            with ctx.pass_lock:  # never interleave with an analysis pass's write of the same incident
                current = state.store.incident(incident_id)
                updated = transition(current, action, time.time(), note[:500] if note else None)
                with state.store.transaction():
                    state.store.save_incidents([updated])
        except TransitionError as exc:
            return json_error(409, f"cannot {action} incident {incident_id}", str(exc), incident_status=found.status)
        single = state.single_service()
        ctx.events.publish("incident.manual", "acknowledged" if action == "acknowledge" else "resolved",
                           updated.to_json(single))
        return json_response(updated.to_json(single))

    @bp.post("/incidents/<incident_id>/acknowledge")
    def acknowledge(incident_id: str):
        return _transition(incident_id, "acknowledge")

    @bp.post("/incidents/<incident_id>/resolve")
    def resolve(incident_id: str):
        return _transition(incident_id, "resolve")

    @bp.post("/analyze")
    def analyze():
        result = _ctx().run_pass()
        return json_response(result.to_dict(_state().single_service()))

    @bp.get("/dependencies")
    def dependencies():
        state = _state()
        graph = state.store.load_graph()
        baselines = state.store.load_baselines()
        nodes = []
        for key in sorted(set(baselines) | {k for edge in graph.edges for k in edge}):
            b = baselines.get(key)
            nodes.append({"service": key[0], "route": key[1],
                          "baseline_latency_ms": round(b.p50_ms, 2) if b is not None and b.requests else None,
                          "baseline_error_rate": round(b.error_ratio, 4) if b is not None and b.requests else None,
                          "requests_per_s": round(b.rate_per_s, 3) if b is not None else None})
        return json_response({"services": sorted({n["service"] for n in nodes}), "nodes": nodes,
                              "edges": graph.to_list()})

    @bp.get("/traces/<trace_id>")
    def trace(trace_id: str):
        if not _TRACE_ID.match(trace_id):
            raise PayloadError("trace_id", "a trace id is 32 lowercase hex characters, as in the X-Trace-Id "
                                           "response header", error="invalid trace id")
        spans = _state().store.trace(trace_id)
        if not spans:
            return json_error(404, f"trace {trace_id} not found", "no stored span has this trace id (it may be "
                                                                   "unsampled, excluded, or past retention)")
        roots = build_trees(spans)[trace_id]

        def render(node) -> dict:
            span = {k: v for k, v in node.span.items() if k not in ("id", "trace_id")}
            span["start"] = iso(span["start_time"])
            return {**span, "children": [render(c) for c in node.children]}

        start = min(s["start_time"] for s in spans)
        end = max(s["start_time"] + s["duration_ms"] / 1000.0 for s in spans)
        return json_response({"trace_id": trace_id, "span_count": len(spans),
                              "services": sorted({s["service"] for s in spans}),
                              "duration_ms": round((end - start) * 1000.0, 3),
                              "error_count": sum(s["error"] for s in spans),
                              "roots": [render(r) for r in roots]})

    @bp.get("/status")
    def status():
        ctx, state = _ctx(), _state()
        app = current_app._get_current_object()
        last = ctx.last_result
        telemetry = app.extensions.get("telemetry")
        return json_response({
            "scheduler_running": SCHEDULER.running(analysis_job_id(app)),
            "interval_s": state.config.interval_s,
            "window_s": state.config.window_s,
            "db_path": state.store.path,
            "passes": ctx.passes,
            "failed_passes": ctx.failed_passes,
            "early_passes": None if state.early is None else state.early.fired,
            "last_error": ctx.last_error,
            "last_pass": None if last is None else {
                "at": iso(last.at), "duration_ms": round(last.duration_ms, 2), "skipped": last.skipped,
                "spans_in_window": last.spans_in_window, "anomalies": len(last.anomalies)},
            "telemetry": telemetry.stats() if telemetry is not None else None,
            "notifications": ctx.notifier.stats() if ctx.notifier is not None else None,
        })

    return bp


def _no_incident(incident_id: str):
    return json_error(404, f"incident {incident_id} not found",
                      "list incident ids with GET /aiops/incidents?status=all")
