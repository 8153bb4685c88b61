"""The SLO feature: services and SLOs, error budgets, burn-rate alerts, the release gate,
summaries and ``GET /metrics``.

It evaluates after every pass that held the lease, publishes its alerts as
``slo_alert`` events, and answers ``error_budget_remaining`` for the others.
"""
from __future__ import annotations

import time

from aiops.registry import Context, Feature
from aiops.slo import api, cli
from aiops.slo.config import SLO_CONFIG, SLOSettings
from aiops.slo.engine import SLOEngine, load_slo_file
from aiops.slo.prometheus import make_metrics_view
from telemetry.errors import PayloadError


def build(ctx: Context) -> SLOEngine:
    engine = SLOEngine(ctx.db, SLOSettings.from_config(ctx.settings),
                       notify=lambda event, alert: ctx.events.publish("slo_alert", event, alert),
                       open_incidents=lambda: ctx.ask("incident_summaries", default=[]))
    path = ctx.settings["AIOPS_SLO_FILE"]
    if path:
        services, slos = load_slo_file(path)
        try:
            engine.load_definitions(services, slos)
        except PayloadError as exc:
            raise ValueError(f"AIOPS_SLO_FILE {path}: {exc}") from None
    ctx.provide("error_budget_remaining", lambda service: budget_remaining(engine, service))

    def after_pass(result) -> None:
        app = ctx.app
        telemetry = app.extensions.get("telemetry") if app is not None else None
        if telemetry is not None and telemetry.store is not None:
            engine.store.publish_process_stats(telemetry.service, telemetry.stats(), time.time())
        if result.skipped is None:  # only the lease holder evaluates (and pages)
            engine.compute(result.at)

    ctx.after_pass(after_pass)
    return engine


def budget_remaining(engine: SLOEngine, service: str) -> float | None:
    """The smallest error-budget ratio left among ``service``'s SLOs (None without SLOs)."""
    snapshot = engine.service_snapshot(service)
    ratios = [s["error_budget_remaining"] for s in (snapshot or {}).get("slos", [])
              if s.get("error_budget_remaining") is not None]
    return min(ratios) if ratios else None


def init_app(app, ctx: Context, engine: SLOEngine) -> None:
    app.register_blueprint(api.make_blueprint())
    if ctx.settings["AIOPS_METRICS_ENABLED"]:
        app.add_url_rule("/metrics", "aiops_prometheus_metrics", make_metrics_view(app, engine), methods=["GET"])


FEATURE = Feature(name="slo", build=build, init_app=init_app, config=SLO_CONFIG, endpoints=tuple(api.ENDPOINTS),
                  commands=cli.COMMANDS)
