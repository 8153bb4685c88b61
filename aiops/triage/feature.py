"""The alert triage feature: Alertmanager and generic intake, dedup, P1-P4 classification,
correlation, routing, runbooks and briefs.

The analysis' incidents (``incident`` events, unless ``AIOPS_ALERTS_FROM_INCIDENTS``
is off) and SLO burn-rate alerts (``slo_alert`` events) enter the same pipeline
as the alerts posted over HTTP. With a model configured, it refines new
alerts' classifications (never lowering a rules P1) and writes group briefs.
"""
from __future__ import annotations

from aiops.registry import Context, Feature
from aiops.triage import api
from aiops.triage.classify import CLASSIFICATION_SCHEMA, ClassifyContext
from aiops.triage.config import TRIAGE_CONFIG, triage_config
from aiops.triage.enrich import RoutingTable, RunbookIndex, write_brief
from aiops.triage.pipeline import TriageState
from aiops.triage.store import TriageStore
from llm.features import classification_refiner, write_feature


def build(ctx: Context) -> TriageState:
    settings = ctx.settings
    state = TriageState(
        settings=settings, store=TriageStore(ctx.db),
        config=triage_config(settings),
        classify_ctx=ClassifyContext(tiers=settings["AIOPS_SERVICE_TIERS"]),
        routing=RoutingTable.from_file(settings["AIOPS_ALERT_ROUTING_FILE"]),
        runbooks=RunbookIndex.from_folder(settings["AIOPS_RUNBOOKS_DIR"]),
        incidents=lambda resolved_since_s=None: ctx.ask("incident_summaries", resolved_since_s, default=[]),
        service_edges=lambda: ctx.ask("service_edges", default=set()))
    ctx.after_pass(lambda result: state.expire_stale(result.at))
    if settings["AIOPS_ALERTS_FROM_INCIDENTS"]:
        ctx.events.subscribe("incident", state.on_incident)
    ctx.events.subscribe("slo_alert", state.on_slo_alert)
    if ctx.llm is not None and ctx.llm.enabled:
        state.refine = classification_refiner(ctx.llm, CLASSIFICATION_SCHEMA)
        state.brief_writer = lambda facts: write_feature(ctx.llm, "alert_brief", facts, write_brief)
    ctx.provide("deploys", lambda since_s, service=None: state.store.deploys(since_s, service))
    ctx.provide("open_alert_groups", lambda service: [{"id": g.id, "priority": g.priority}
                                                      for g in state.store.open_groups_of(service)])
    return state


def init_app(app, ctx: Context, state: TriageState) -> None:
    app.register_blueprint(api.make_blueprint())


FEATURE = Feature(name="triage", build=build, init_app=init_app, config=TRIAGE_CONFIG,
                  endpoints=tuple(api.ENDPOINTS))
