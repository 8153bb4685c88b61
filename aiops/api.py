"""The /aiops/* HTTP API: a thin shell over the store and the pure algorithms.

Every answer is pretty-printed JSON; every error is ``{"error", "detail"}``
with a 4xx status; mutating calls need ``X-API-Key`` when ``AIOPS_API_KEY``
is set.
"""
from __future__ import annotations

import re
import time

from flask import Blueprint, current_app, request

from aiops.incidents import STATUSES, TransitionError, iso, transition
from aiops.rca import build_trees
from aiops.series import AGGREGATE_COLUMNS, aggregate, endpoint_name
from telemetry.web import api_key_error, json_error, json_response, method_not_allowed, query_number

_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
_OTHER_METHODS = ["GET", "PUT", "DELETE", "PATCH"]
ENDPOINTS = [
    "GET  /aiops/metrics", "GET  /aiops/incidents?status=active|acknowledged|resolved|open|all",
    "GET  /aiops/incidents/<id>", "POST /aiops/incidents/<id>/acknowledge", "POST /aiops/incidents/<id>/resolve",
    "POST /aiops/analyze", "GET  /aiops/dependencies", "GET  /aiops/traces/<trace_id>", "GET  /aiops/status",
]


def all_endpoints() -> list[str]:
    """Every endpoint the AIOps extension registers (``"METHOD /path"``), for
    the 404 answer, the demo banner and the docs test."""
    from aiops.alerts_api import ENDPOINTS as ALERTS
    from aiops.dashboard import ENDPOINTS as DASHBOARD
    from aiops.metrics_api import ENDPOINTS as METRICS
    from aiops.replay_api import ENDPOINTS as REPLAY
    from aiops.slo_api import ENDPOINTS as SLO
    from llm.api import ENDPOINTS as DOCUMENTS
    return ENDPOINTS + DOCUMENTS + REPLAY + METRICS + SLO + ALERTS + DASHBOARD


def health(error_ratio: float, latency_ratio: float) -> dict:
    """A 0-100 score: 60 points for errors (all lost at a 50% error ratio),
    40 for latency (all lost at 5x the baseline median); healthy >= 80,
    degraded >= 50, else critical."""
    score = 100.0 - 60.0 * min(1.0, error_ratio / 0.5) - 40.0 * min(1.0, max(0.0, latency_ratio - 1.0) / 4.0)
    status = "healthy" if score >= 80 else "degraded" if score >= 50 else "critical"
    return {"health_score": round(score, 1), "status": status}


def _state():
    return current_app.extensions["aiops"]


def _single_service(state) -> bool:
    return len({key[0] for key in state.store.load_baselines()}) <= 1




def make_blueprint() -> Blueprint:
    bp = Blueprint("aiops", __name__, url_prefix="/aiops")

    def mutating(rule: str, endpoint: str):
        """POST-only route with the API-key check; other methods get a JSON 405."""
        def decorator(view):
            def guarded(**kwargs):
                if request.method != "POST":
                    return method_not_allowed("POST")
                denied = api_key_error(_state().api_key)
                return denied if denied is not None else view(**kwargs)
            guarded.__name__ = endpoint
            bp.add_url_rule(rule, endpoint, guarded, methods=["POST", *_OTHER_METHODS])
            return view
        return decorator

    @bp.get("/metrics")
    def metrics():
        state = _state()
        window_s, error = query_number("window_s", state.config.window_s, 0.0, 86400)
        if error:
            return error
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
        status = request.args.get("status", "open")
        valid = ("open", "all") + STATUSES
        if status not in valid:
            return json_error(400, f"unknown status {status!r}", f"status must be one of: {', '.join(valid)}")
        limit, error = query_number("limit", 100, 0.0, 1000)
        if error:
            return error
        if status == "open":
            found = [i for i in reversed(state.store.open_incidents())][: int(limit)]
        else:
            found = state.store.incidents(None if status == "all" else status, int(limit))
        single = _single_service(state)
        return json_response({"incident_count": len(found), "status": status,
                              "active_incidents": [i.to_json(single) for i in found]})

    @bp.get("/incidents/<incident_id>")
    def incident(incident_id: str):
        state = _state()
        found = state.store.incident(incident_id)
        if found is None:
            return _no_incident(incident_id)
        return json_response(found.to_json(_single_service(state)))

    def _transition(incident_id: str, action: str):
        state = _state()
        found = state.store.incident(incident_id)
        if found is None:
            return _no_incident(incident_id)
        body = request.get_json(silent=True)
        note = body.get("note") if isinstance(body, dict) and isinstance(body.get("note"), str) else None
        try:
            with state.pass_lock:  # never interleave with an analysis pass's write of the same incident
                current = state.store.incident(incident_id)
                updated = transition(current, action, time.time(), note[:500] if note else None)
                with state.store.transaction():
                    state.store.save_incidents([updated])
        except TransitionError as exc:
            return json_error(409, f"cannot {action} incident {incident_id}", str(exc), incident_status=found.status)
        single = _single_service(state)
        if state.notifier is not None:
            state.notifier.notify("acknowledged" if action == "acknowledge" else "resolved", updated.to_json(single))
        return json_response(updated.to_json(single))

    @mutating("/incidents/<incident_id>/acknowledge", "acknowledge")
    def acknowledge(incident_id: str):
        return _transition(incident_id, "acknowledge")

    @mutating("/incidents/<incident_id>/resolve", "resolve")
    def resolve(incident_id: str):
        return _transition(incident_id, "resolve")

    @mutating("/analyze", "analyze")
    def analyze():
        state = _state()
        result = state.run_pass()
        return json_response(result.to_dict(_single_service(state)))

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
            return json_error(400, "invalid trace id", "a trace id is 32 lowercase hex characters, as in the "
                                                       "X-Trace-Id response header")
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
        from aiops.extension import SCHEDULER, AIOps
        state = _state()
        app = current_app._get_current_object()
        last = state.last_result
        telemetry = app.extensions.get("telemetry")
        return json_response({
            "scheduler_running": SCHEDULER.running(AIOps.job_id(app)),
            "interval_s": state.config.interval_s,
            "window_s": state.config.window_s,
            "db_path": state.store.path,
            "passes": state.passes,
            "failed_passes": state.failed_passes,
            "early_passes": None if state.early is None else state.early.fired,
            "last_error": state.last_error,
            "last_pass": None if last is None else {
                "at": iso(last.at), "duration_ms": round(last.duration_ms, 2), "skipped": last.skipped,
                "spans_in_window": last.spans_in_window, "anomalies": len(last.anomalies)},
            "telemetry": telemetry.stats() if telemetry is not None else None,
            "notifications": state.notifier.stats() if state.notifier is not None else None,
        })

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def not_found(unknown: str):
        return json_error(404, f"no such endpoint /aiops/{unknown}",
                          "valid endpoints: " + "; ".join(all_endpoints()))

    return bp


def _no_incident(incident_id: str):
    return json_error(404, f"incident {incident_id} not found",
                      "list incident ids with GET /aiops/incidents?status=all")
