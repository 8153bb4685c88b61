"""The analysis feature: baselines, detectors, RCA and incidents, run as the app's pass.

It installs the pass (``ctx.pass_runner``), publishes incident events, answers
the incident and baseline providers, and, with the scheduler on, starts an
early pass when freshly written spans look anomalous.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from aiops.analysis import api, cli
from aiops.analysis.config import ANALYSIS_CONFIG, EARLY_PASS_CONFIG, AnalysisConfig, analysis_config
from aiops.analysis.early import EarlyPassTrigger
from aiops.analysis.engine import Analyzer
from aiops.analysis.incidents import Incident
from aiops.analysis.store import AnalysisStore
from aiops.registry import Context, Feature


@dataclass
class AnalysisState:
    """``app.extensions["aiops"].features["analysis"]``."""

    config: AnalysisConfig
    store: AnalysisStore
    analyzer: Analyzer
    early: EarlyPassTrigger | None = None  #: when early passes are on
    span_store: object = None              #: the telemetry span store the early trigger listens to

    def single_service(self) -> bool:
        """True while one service writes the store (endpoints are then named by route alone)."""
        return len({key[0] for key in self.store.load_baselines()}) <= 1

    # -- providers (plain data for the other features) ------------------------------

    def incident_json(self, incident_id: str) -> dict | None:
        found = self.store.incident(incident_id)
        return None if found is None else found.to_json(self.single_service())

    def incident_record(self, incident_id: str) -> dict | None:
        found = self.store.incident(incident_id)
        return None if found is None else found.to_dict()

    def incident_summaries(self, resolved_since_s: float | None = None) -> list[dict]:
        found = self.store.open_incidents()
        if resolved_since_s is not None:
            found += [i for i in self.store.incidents("resolved", 50)
                      if i.resolved_at is not None and i.resolved_at >= resolved_since_s]
        return [_summary(i) for i in found]

    def service_edges(self) -> set[tuple[str, str]]:
        return {(caller[0], callee[0]) for caller, callee in self.store.load_graph().edges if caller[0] != callee[0]}

    def route_baselines(self) -> dict:
        return {key: {"p50_ms": b.p50_ms, "p95_ms": b.p95_ms, "log_mean": b.log_mean, "log_std": b.log_std,
                      "error_ratio": b.error_ratio, "rate_per_s": b.rate_per_s, "requests": b.requests,
                      "ready": b.ready(self.config)}
                for key, b in self.store.load_baselines().items()}


def _summary(incident: Incident) -> dict:
    services = {key[0] for key in incident.keys} | {incident.root_cause.get("service")}
    return {"id": incident.id, "severity": incident.severity, "status": incident.status, "title": incident.title,
            "services": sorted(s for s in services if s), "first_s": incident.first_detected,
            "last_s": incident.resolved_at or incident.last_detected}


def build(ctx: Context) -> AnalysisState:
    config = analysis_config(ctx.settings)
    store = AnalysisStore(ctx.db)
    analyzer = Analyzer(store, config, notify=lambda event, incident: ctx.events.publish("incident", event, incident),
                        sources=ctx.signal_sources)
    state = AnalysisState(config, store, analyzer)
    ctx.pass_runner = analyzer.run_pass
    for name in ("incident_json", "incident_record", "incident_summaries", "service_edges", "route_baselines"):
        ctx.provide(name, getattr(state, name))
    return state


def init_app(app, ctx: Context, state: AnalysisState) -> None:
    app.register_blueprint(api.make_blueprint())
    if ctx.settings["AIOPS_SCHEDULER"] and ctx.settings["AIOPS_EARLY_PASS"]:
        _listen_for_early_passes(app, ctx, state)


def _listen_for_early_passes(app, ctx: Context, state: AnalysisState) -> None:
    """Run a pass as soon as this app's span writer commits spans that look anomalous,
    when the app's telemetry writes the analysed store."""
    telemetry = app.extensions.get("telemetry")
    span_store = telemetry.store if telemetry is not None else None
    if span_store is None or os.path.abspath(span_store.path) != state.store.path:
        return
    early = state.early = EarlyPassTrigger(ctx.background_pass, lambda: ctx.last_pass_started,
                                           ctx.settings["AIOPS_EARLY_PASS_MIN_GAP_S"])
    early.learn(state.store.load_baselines(), time.time(), state.config)  # a restart knows its routes at once
    # after every pass: the slow thresholds and error ratios it left, less what it judged anomalous
    ctx.after_pass(lambda result: early.learn(state.store.load_baselines(), result.at, state.config,
                                              {a.key for a in result.anomalies}))
    span_store.add_listener(early.on_spans)
    state.span_store = span_store


def close(state: AnalysisState) -> None:
    if state.early is not None:
        if state.span_store is not None:
            state.span_store.remove_listener(state.early.on_spans)
        state.early.wait()


FEATURE = Feature(
    name="analysis", build=build, init_app=init_app, close=close,
    config=ANALYSIS_CONFIG + EARLY_PASS_CONFIG,
    endpoints=tuple(api.ENDPOINTS),
    commands=cli.COMMANDS,
)
