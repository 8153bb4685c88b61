"""HTTP API of the resilience replay: ``/aiops/incidents/<id>/replay`` (JSON) and ``.../replay.png``.

A thin shell over ``aiops.replay``: the replay is computed on request from
the store (spans and pushed metrics around the incident) and cached for a
minute per incident state, so the JSON and the plots of one look at an
incident cost one computation. Without the ``[replay]`` extra (scikit-learn,
matplotlib) both answer 501 naming it; the rest of the app is unaffected.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from flask import Response, current_app, request

from aiops.replay.data import InsufficientHistory
from aiops.replay.model import require_model
from aiops.replay.plots import metric_png, require_plots, timeline_png
from aiops.replay.report import replay_from_store, report
from telemetry.errors import PayloadError
from telemetry.extras import MissingExtra
from telemetry.web import ApiBlueprint, json_error, json_response

log = logging.getLogger("aiops")
ENDPOINTS = [
    "GET  /aiops/incidents/<id>/replay?points=1|0",
    "GET  /aiops/incidents/<id>/replay.png?metric=SERVICE:METRIC",
]
_CACHE_TTL_S = 60.0
_CACHE_SIZE = 8


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops_replay", __name__, url_prefix="/aiops",
                      api_key=lambda: current_app.extensions["aiops"].api_key)
    cache: OrderedDict = OrderedDict()
    lock = threading.Lock()

    def compute(incident_id: str, plots: bool = False):
        """(result, None) or (None, error response). ``plots``: the caller also needs matplotlib."""
        try:
            require_model()
            if plots:
                require_plots()
        except MissingExtra as exc:
            return None, json_error(501, str(exc), f"the replay extra (scikit-learn and matplotlib) is not installed "
                                                   f"where this app runs; install it with {exc.install} and restart "
                                                   "the app")
        ctx = current_app.extensions["aiops"]
        incident = ctx.ask("incident_record", incident_id)
        if incident is None:
            return None, json_error(404, f"incident {incident_id} not found",
                                    "list incident ids with GET /aiops/incidents?status=all")
        key = (incident_id, incident["last_detected"], incident.get("resolved_at"))
        now = time.monotonic()
        with lock:
            hit = cache.get(key)
            if hit is not None and now - hit[0] < _CACHE_TTL_S:
                return hit[1], None
        try:
            result = replay_from_store(ctx.db, incident, ctx.settings,
                                       lambda *args: ctx.ask("metric_points", *args, default={}))
        except InsufficientHistory as exc:
            return None, json_error(
                422, f"too little history to replay incident {incident_id}",
                f"{exc}. Replay needs at least {exc.needed_points} points of {exc.step_s:g} s "
                f"({exc.needed_points * exc.step_s / 3600:g} h) of spans or pushed metrics before the replay "
                "window (AIOPS_REPLAY_MARGIN_S before the incident); it reads up to AIOPS_REPLAY_HISTORY_S of it.",
                needed_points=exc.needed_points, found_points=exc.found_points, step_s=exc.step_s,
                needed_history_s=exc.needed_points * exc.step_s)
        except ValueError as exc:
            return None, json_error(422, f"cannot replay incident {incident_id}", str(exc))
        except Exception as exc:  # never raise into the host app
            log.warning("aiops: replay of %s failed", incident_id, exc_info=True)
            return None, json_error(500, f"replay of incident {incident_id} failed", f"{type(exc).__name__}: {exc}")
        with lock:
            cache[key] = (now, result)
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        return result, None

    @bp.get("/incidents/<incident_id>/replay")
    def replay(incident_id: str):
        points = request.args.get("points", "1")
        if points not in ("0", "1"):
            raise PayloadError("points", "points must be 1 (include the series) or 0",
                               error=f"invalid points {points!r}")
        result, error = compute(incident_id)
        if error is not None:
            return error
        body = report(result, points == "1", llm=current_app.extensions["aiops"].llm)
        body["plots"] = {"timeline": f"/aiops/incidents/{incident_id}/replay.png",
                         "metrics": {f"{m.service}:{m.metric}":
                                     f"/aiops/incidents/{incident_id}/replay.png?metric={m.service}:{m.metric}"
                                     for m in result.metrics}}
        return json_response(body)

    @bp.get("/incidents/<incident_id>/replay.png")
    def replay_png(incident_id: str):
        result, error = compute(incident_id, plots=True)
        if error is not None:
            return error
        wanted = request.args.get("metric")
        if wanted is None:
            return Response(timeline_png(result), mimetype="image/png")
        service, _, metric = wanted.partition(":")
        found = result.metric(service, metric)
        if found is None:
            valid = ", ".join(f"{m.service}:{m.metric}" for m in result.metrics)
            return json_error(404, f"no replayed metric {wanted!r}", f"metric must be SERVICE:METRIC, one of: {valid}")
        return Response(metric_png(result, found), mimetype="image/png")

    return bp
