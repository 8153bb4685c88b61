"""The advisors over HTTP: change risk (``POST /aiops/changes/risk``) and capacity
(``GET``/``POST /aiops/capacity``). A thin shell over ``aiops.advisors.change_risk`` and
``aiops.advisors.capacity``; what they weigh from the other features (open incidents,
alert groups, deploys, baselines, error budgets) comes through the registry's providers.
"""
from __future__ import annotations

import time
from dataclasses import replace

from flask import current_app, request

from aiops.advisors.capacity import analyse as analyse_capacity, observed_metrics
from aiops.advisors.change_risk import RiskContext, parse_change, score_change
from aiops.advisors.config import advisor_config
from telemetry.errors import PayloadError
from telemetry.web import ApiBlueprint, json_body, json_response

ENDPOINTS = ["POST /aiops/changes/risk", "GET  /aiops/capacity", "POST /aiops/capacity"]


def _ctx():
    return current_app.extensions["aiops"]


def _state():
    return _ctx().features["advisors"]


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops_advisors", __name__, url_prefix="/aiops", api_key=lambda: _ctx().api_key)

    @bp.post("/changes/risk")
    def change_risk():
        now = time.time()
        change = parse_change(json_body(), now)
        budget_source = "request" if change.error_budget_remaining is not None else None
        if budget_source is None:
            change = replace(change, error_budget_remaining=_ctx().ask("error_budget_remaining", change.service))
            budget_source = "slo" if change.error_budget_remaining is not None else None
        return json_response({**score_change(change, risk_context(change.service, now)),
                              "error_budget_source": budget_source})

    @bp.get("/capacity")
    def capacity_observed():
        state = _state()
        raw = request.args.get("days", "7")
        try:
            days = float(raw)
        except ValueError:
            days = -1.0
        if not 0 < days <= 31:
            raise PayloadError("days", f"days must be a number within (0, 31], got {raw!r}")
        now = time.time()
        rows = state.store.hourly_requests(now - days * 86400)
        services = observed_metrics(rows, now, days, state.settings["AIOPS_CAPACITY_LIMITS_RPS"])
        return json_response({"source": "spans", "days": days, "services": services, "summary": {
            "services": len(services), "counts": {level: sum(1 for s in services if s["status"] == level)
                                                  for level in ("URGENT", "PLANNED", "WATCH", "OK")},
            "without_limit": [s["service"] for s in services if s["limit_rps"] is None]}})

    @bp.post("/capacity")
    def capacity():
        return json_response({"source": "service_metrics",
                              **analyse_capacity(json_body(), advisor_config(_state().settings))})

    return bp


def risk_context(service: str, now_s: float) -> RiskContext:
    """What the other features know about ``service`` now, for the change-risk score."""
    ctx = _ctx()
    incidents = ctx.ask("incident_summaries", default=[])
    mine = [i for i in incidents if service in i["services"]]
    baseline = None
    rows = [b for (s, _), b in ctx.ask("route_baselines", default={}).items() if s == service and b["requests"]]
    if rows:
        total = sum(b["requests"] for b in rows)
        baseline = {"error_ratio": sum(b["error_ratio"] * b["requests"] for b in rows) / total,
                    "p95_ms": max(b["p95_ms"] for b in rows)}
    return RiskContext(open_incidents=[{"id": i["id"], "severity": i["severity"]} for i in mine],
                       other_open_incidents=len(incidents) - len(mine),
                       open_groups=ctx.ask("open_alert_groups", service, default=[]),
                       recent_deploys=ctx.ask("deploys", now_s - 86400, service, default=[]),
                       baseline=baseline, peak_hours=_state().settings["AIOPS_CHANGE_PEAK_HOURS"])
