"""Alert triage over HTTP: intake (Alertmanager webhook v4, generic alerts), groups with
briefs, noise figures and deployments. A thin shell over ``aiops.triage.pipeline``.

Every error is ``{"error", "detail", "field"}`` with a 4xx status; nothing of
a rejected payload is stored. Mutating calls need ``X-API-Key`` when
``AIOPS_API_KEY`` is set.
"""
from __future__ import annotations

import time

from flask import current_app, request

from aiops.stats import percentile
from aiops.triage.intake import parse_alertmanager, parse_raw_alerts
from aiops.triage.pipeline import TriageState
from telemetry.config import as_str
from telemetry.errors import PayloadError
from telemetry.timefmt import iso, parse_time_field
from telemetry.web import ApiBlueprint, json_body, json_error, json_response, query_choice

ENDPOINTS = [
    "POST /aiops/alerts/alertmanager", "POST /aiops/alerts", "GET  /aiops/alerts?status=firing|resolved|expired|all",
    "GET  /aiops/alerts/groups?status=open|resolved|all", "GET  /aiops/alerts/groups/<id>",
    "GET  /aiops/alerts/stats", "POST /aiops/deployments", "GET  /aiops/deployments",
]


def _state() -> TriageState:
    return current_app.extensions["aiops"].features["triage"]


def _limit(default: int = 100) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise PayloadError("limit", f"limit must be a whole number within [1, 1000], got {raw!r}")
    return int(raw)


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops_alerts", __name__, url_prefix="/aiops",
                      api_key=lambda: current_app.extensions["aiops"].api_key)

    @bp.get("/alerts")
    def alerts_list():
        status = query_choice("status", "firing", ("firing", "resolved", "expired", "all"))
        limit = _limit()
        found = _state().store.alerts(None if status == "all" else status, request.args.get("group"), limit)
        return json_response({"status": status, "alert_count": len(found), "alerts": [r.to_json() for r in found]})

    @bp.post("/alerts")
    def alerts_intake():
        alerts = parse_raw_alerts(json_body(), time.time())
        return json_response(_state().ingest(alerts), 202)

    @bp.post("/alerts/alertmanager")
    def alertmanager_intake():
        alerts = parse_alertmanager(json_body(), time.time())
        return json_response(_state().ingest(alerts), 202)

    @bp.get("/alerts/groups")
    def groups():
        status = query_choice("status", "open", ("open", "resolved", "all"))
        limit = _limit()
        found = _state().store.groups(None if status == "all" else status, limit)
        return json_response({"status": status, "group_count": len(found), "groups": [
            {**g.to_json(), "decisions": g.decisions} for g in found]})

    @bp.get("/alerts/groups/<group_id>")
    def group(group_id: str):
        state = _state()
        found = state.store.group(group_id)
        if found is None:
            return json_error(404, f"alert group {group_id} not found",
                              "list group ids with GET /aiops/alerts/groups?status=all")
        return json_response(state.group_view(found, time.time()))

    @bp.get("/alerts/stats")
    def stats():
        raw = request.args.get("window_s")
        window_s = None
        if raw is not None:
            try:
                window_s = float(raw)
            except ValueError:
                window_s = -1.0
            if not 0 < window_s <= 90 * 86400:
                raise PayloadError("window_s", f"window_s must be a number within (0, 7776000], got {raw!r}")
        now = time.time()
        s = _state().store.stats(now - window_s if window_s else 0.0)
        ms = s["triage_ms"]

        def pct(q):
            return round(percentile(ms, q), 3) if ms else None
        return json_response({
            "window_s": window_s, "alerts_received": s["received"], "alerts_after_dedup": s["records"],
            "groups": s["groups"], "groups_by_priority": s["by_priority"], "received_by_source": s["sources"],
            "dedup_ratio": round(1 - s["records"] / s["received"], 4) if s["received"] else 0.0,
            "noise_reduction_ratio": round(1 - s["groups"] / s["received"], 4) if s["received"] else 0.0,
            "time_to_triage_ms": {"mean": round(sum(ms) / len(ms), 3) if ms else None, "p50": pct(50),
                                  "p95": pct(95), "max": round(ms[-1], 3) if ms else None}})

    @bp.get("/deployments")
    def deployments_list():
        limit = _limit()
        found = _state().store.deploys(0.0, request.args.get("service"), limit)
        return json_response({"deploy_count": len(found), "deployments": [
            {**d, "deployed_at": iso(d["deployed_at"])} for d in found]})

    @bp.post("/deployments")
    def deployments():
        deploy = _parse_deploy(json_body(), time.time())
        saved = _state().store.add_deploy(deploy)
        return json_response({**saved, "deployed_at": iso(saved["deployed_at"])}, 201)

    return bp


def _parse_deploy(body, now_s: float) -> dict:
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object with service, version and optionally description, "
                                   "change_type, deployed_at, author")
    known = {"service", "version", "description", "change_type", "deployed_at", "author"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise PayloadError(unknown[0], f"unknown field; valid fields: {', '.join(sorted(known))}")
    out = {}
    for name in ("service", "version"):
        try:
            out[name] = as_str()(body.get(name))[:200]
        except ValueError:
            raise PayloadError(name, "is required and must be a non-empty string") from None
    for name in ("description", "change_type", "author"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise PayloadError(name, f"must be a string, got {value!r}")
        out[name] = value[:2000] if value else None
    out["change_type"] = out["change_type"] or "deployment"
    out["deployed_at"] = parse_time_field(body["deployed_at"], "deployed_at") if body.get("deployed_at") is not None \
        else now_s
    return out
