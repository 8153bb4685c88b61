"""The dashboard: ``GET /aiops/dashboard``, a single static page over the JSON APIs.

No build step: ``aiops/dashboard/static/`` holds the HTML, CSS, JS and the
vendored uPlot (see ``vendor/VENDOR.json``). The page reads ``/aiops/*``,
``/simulate/*`` and, when installed, the SLO, alert, simulator, replay and
document endpoints; a feature whose endpoint answers 404 shows a note. This
module adds only what the page needs that no other API gives: its settings
and per-route RED time series with the baseline band.
"""
from __future__ import annotations

import os
import re
import time

from flask import current_app, redirect, send_from_directory, url_for

from aiops.dashboard.data import (
    BAND_SIGMAS,
    MAX_POINTS,
    MAX_RANGE_S,
    MIN_POINTS,
    RANGE_CHOICES_S,
    latency_band_ms,
    make_grid,
    red_series,
)
from aiops.signals import endpoint_name
from telemetry.config import ConfigKey, as_bool, as_number
from telemetry.timefmt import iso
from telemetry.web import ApiBlueprint, json_response, query_number

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")

DASHBOARD_CONFIG = (
    ConfigKey("AIOPS_DASHBOARD_ENABLED", True, as_bool, "bool",
              "Serve the page and its JSON helpers under `/aiops/dashboard`; `False` registers none of them."),
    ConfigKey("AIOPS_DASHBOARD_REFRESH_S", 5.0, as_number(1.0, 3600.0), "seconds",
              "How often the page polls, within [1, 3600] (ranges over 15 minutes stretch it to range / 180: "
              "every 8 min at 24 h)."),
)

ENDPOINTS = [
    "GET  /aiops/dashboard",
    "GET  /aiops/dashboard/config",
    "GET  /aiops/dashboard/series?range_s=900&points=90",
    "POST /aiops/dashboard/auth",
]


def _ctx():
    return current_app.extensions["aiops"]


def make_blueprint(settings: dict) -> ApiBlueprint:
    """The page, its static files and its JSON helpers (``settings``: DASHBOARD_CONFIG values)."""
    bp = ApiBlueprint("aiops_dashboard", __name__, url_prefix="/aiops/dashboard", api_key=lambda: _ctx().api_key,
                      static_folder=STATIC_DIR, static_url_path="/static")
    refresh_s = settings["AIOPS_DASHBOARD_REFRESH_S"]

    @bp.get("")
    def bare():
        """/aiops/dashboard -> /aiops/dashboard/ so the page's relative links work under any prefix."""
        return redirect(url_for(".page"), 308)

    @bp.get("/")
    def page():
        response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
        # The page runs only our own files: no inline script, nothing from elsewhere.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.get("/config")
    def config():
        ctx = _ctx()
        chaos = current_app.extensions.get("chaos")
        keys = ctx.ask("route_baselines", default={})
        return json_response({
            "api_key_required": bool(ctx.api_key),
            "refresh_s": refresh_s,
            "analysis_interval_s": ctx.settings["AIOPS_ANALYSIS_INTERVAL_S"],
            "window_s": ctx.settings["AIOPS_WINDOW_S"],
            "range_choices_s": list(RANGE_CHOICES_S),
            "max_range_s": MAX_RANGE_S,
            "chaos_enabled": bool(chaos is not None and getattr(chaos, "enabled", False)),
            "services": sorted({k[0] for k in keys}),
            "features": features(current_app.url_map.iter_rules()),
        })

    @bp.post("/auth")
    def auth():
        """Checks X-API-Key like every mutating call (the blueprint's guard); changes nothing."""
        return json_response({"ok": True, "api_key_required": bool(_ctx().api_key)})

    @bp.get("/series")
    def series():
        ctx = _ctx()
        range_s = query_number("range_s", 900.0, 10.0, MAX_RANGE_S, low_inclusive=True)
        points = query_number("points", 90, MIN_POINTS, MAX_POINTS, integer=True, low_inclusive=True)
        now = time.time()
        grid = make_grid(now, range_s, points)
        data = red_series(ctx.db.span_rows(grid.start_s, grid.end_s), grid)
        baselines = ctx.ask("route_baselines", default={})
        single = len({k[0] for k in data} | {k[0] for k in baselines}) <= 1
        routes = {}
        for key in sorted(set(data) | set(baselines)):
            b = baselines.get(key)
            row = data.get(key) or _empty(grid.points)
            baseline = None
            if b is not None and b["requests"]:
                low, high = latency_band_ms(b["log_mean"], b["log_std"])
                baseline = {"p50_ms": round(b["p50_ms"], 2), "band_low_ms": round(low, 2),
                            "band_high_ms": round(high, 2), "p95_ms": round(b["p95_ms"], 2),
                            "error_ratio": round(b["error_ratio"], 4), "requests_per_s": round(b["rate_per_s"], 3),
                            "ready": b["ready"], "requests_learned": b["requests"]}
            routes[endpoint_name(key, single)] = {"service": key[0], "route": key[1], **row, "baseline": baseline}
        return json_response({
            "generated_at": iso(now), "range_s": range_s, "step_s": grid.step_s,
            "start": iso(grid.start_s), "end": iso(grid.end_s), "band_sigmas": BAND_SIGMAS,
            "t": [round(t, 3) for t in grid.times()], "routes": routes,
        })

    return bp


#: Optional features the page shows when the app has their routes: name -> URL rule pattern.
FEATURE_RULES = {
    "chaos": re.compile(r"/simulate/status\Z"),
    "slo": re.compile(r"/aiops/(slo|burn|release|summary)(/|\Z)"),
    "alerts": re.compile(r"/aiops/alerts/groups\Z"),
    "scenarios": re.compile(r"/api/v1/simulator/"),
    "replay": re.compile(r"/aiops/incidents/<[^>]+>/replay\Z"),
    "docs": re.compile(r"/aiops/incidents/<[^>]+>/(narrative|postmortem|brief|comms)\Z"),
}


def features(rules) -> dict[str, list[str]]:
    """For each optional feature, the URL rules (GET or POST) this app has for it, sorted."""
    found: dict[str, set] = {name: set() for name in FEATURE_RULES}
    for rule in rules:
        for name, pattern in FEATURE_RULES.items():
            if pattern.match(rule.rule):
                found[name].add(rule.rule)
    return {name: sorted(rules) for name, rules in found.items()}


def _empty(points: int) -> dict:
    return {"requests_per_s": [0.0] * points, "error_ratio": [None] * points, "p50_ms": [None] * points,
            "p95_ms": [None] * points, "request_count": 0, "error_count": 0}
