"""Alert triage over HTTP: intake (Alertmanager webhook v4, generic alerts), groups with briefs,
noise figures, deployments, change risk, capacity. A thin shell over ``aiops.triage``,
``aiops.alert_enrich``, ``aiops.change_risk``, ``aiops.capacity`` and ``aiops.triage_store``.

``ingest(app, alerts)`` is the one intake function every source goes through:
the HTTP endpoints, the analysis engine's incidents (wired by ``register``) and
SLO alerts (``ingest(app, parse_raw_alerts(...), source="slo")``).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace

from flask import Blueprint, current_app, request

from aiops.alert_enrich import (DEFAULT_RUNBOOKS_DIR, RoutingTable, RunbookIndex, brief_facts, related_deploys,
                                runbook_query, write_brief)
from aiops.capacity import AdvisorConfig, analyse as analyse_capacity, observed_metrics
from aiops.change_risk import RiskContext, parse_change, score_change
from aiops.triage import (ClassifyContext, PayloadError, TriageConfig, alerts_from_incident, alerts_from_slo_alert,
                          expire_stale, get_classifier, iso, parse_alertmanager, parse_raw_alerts, parse_time,
                          refine_records, refresh_group, triage)
from aiops.triage_store import TriageStore
from telemetry.config import ConfigKey, as_bool, as_number, as_optional_str, as_str
from telemetry.web import api_key_error, json_body, json_error, json_response, method_not_allowed

log = logging.getLogger("aiops")
EXTENSION_KEY = "aiops.alerts"
#: Firing alerts and open groups older than this (seconds) are not loaded for dedup and correlation.
OPEN_LOOKBACK_S = 7 * 86400.0


def _as_mapping(value_parser, what: str):
    """``"a=1,b=2"`` (or a dict) -> {name: parsed value}."""
    def parse(raw):
        if raw is None or raw == "":
            return {}
        items = raw.items() if isinstance(raw, dict) else [
            part.split("=", 1) if "=" in part else (part, None) for part in str(raw).split(",") if part.strip()]
        out = {}
        for name, value in items:
            if value is None:
                raise ValueError(f"must be comma-separated name=value pairs ({what})")
            out[str(name).strip()] = value_parser(value)
        return out
    return parse


def _as_hours(raw) -> tuple[int, int]:
    text = str(raw)
    try:
        start, end = (int(x) for x in text.split("-"))
    except ValueError:
        raise ValueError("must be START-END local hours, e.g. 9-17") from None
    if not 0 <= start < end <= 24:
        raise ValueError("must be START-END local hours with 0 <= START < END <= 24, e.g. 9-17")
    return start, end


def _as_classifier(raw) -> str:
    get_classifier(str(raw))
    return str(raw)


ALERTS_CONFIG = (
    ConfigKey("AIOPS_ALERT_DEDUP_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
              "The same alert repeating within this long of its last sighting is counted, not stored again."),
    ConfigKey("AIOPS_ALERT_STALE_S", 86400.0, as_number(0.0, min_exclusive=True), "seconds",
              "A firing alert not seen again for this long expires (no resolve ever came); a group whose alerts "
              "are all resolved or expired resolves. Alertmanager re-sends firing alerts every repeat_interval."),
    ConfigKey("AIOPS_ALERT_CORRELATION_WINDOW_S", 300.0, as_number(0.0, min_exclusive=True), "seconds",
              "A related alert joins a group when it fires within this long of the group's first alert."),
    ConfigKey("AIOPS_ALERT_CLASSIFIER", "rules", _as_classifier, "name",
              "Alert classifier: rules (status, severity, patterns, tier, burn rate) or severity (label only)."),
    ConfigKey("AIOPS_SERVICE_TIERS", "", _as_mapping(as_number(1, 3, integer=True), "service=tier, tier 1-3"),
              "service=tier list", "Service tiers, e.g. payment-gateway=1,search=3; tier 1 escalates outages."),
    ConfigKey("AIOPS_RUNBOOKS_DIR", DEFAULT_RUNBOOKS_DIR, as_optional_str, "folder",
              "Markdown runbooks searched with TF-IDF for every alert group; default: the shipped runbooks/."),
    ConfigKey("AIOPS_ALERT_ROUTING_FILE", None, as_optional_str, "file path",
              "JSON (or YAML) routing table labels -> team; default: the shipped runbooks/routing.json."),
    ConfigKey("AIOPS_DEPLOY_LOOKBACK_S", 7200.0, as_number(0.0, min_exclusive=True), "seconds",
              "A deploy this long before a group's first alert is named in its brief."),
    ConfigKey("AIOPS_ALERTS_FROM_INCIDENTS", True, as_bool, "bool",
              "Turn the analysis engine's opened/escalated/resolved incidents into alerts."),
    ConfigKey("AIOPS_CHANGE_PEAK_HOURS", "9-17", _as_hours, "local hours",
              "Peak traffic hours START-END in the deploy's local time; deploying then adds risk."),
    ConfigKey("AIOPS_CAPACITY_LIMITS_RPS", "", _as_mapping(as_number(0.0, min_exclusive=True), "service=rps"),
              "service=req/s list", "Highest sustainable request rate per service, for GET /aiops/capacity."),
    ConfigKey("AIOPS_CAPACITY_TARGET_UTIL_PCT", 70.0, as_number(1.0, 100.0), "percent",
              "Peak utilisation the capacity advisor sizes pod counts for."),
)

ENDPOINTS = [
    "POST /aiops/alerts/alertmanager", "POST /aiops/alerts", "GET  /aiops/alerts?status=firing|resolved|expired|all",
    "GET  /aiops/alerts/groups?status=open|resolved|all", "GET  /aiops/alerts/groups/<id>",
    "GET  /aiops/alerts/stats", "POST /aiops/deployments", "GET  /aiops/deployments", "POST /aiops/changes/risk",
    "GET  /aiops/capacity", "POST /aiops/capacity",
]


@dataclass
class AlertsState:
    """Per-app triage state in ``app.extensions["aiops.alerts"]``.

    ``refine``: optional ``facts -> dict`` classification refinement (the LLM); it can never lower a P1.
    ``brief_writer``: ``facts -> str``; the deterministic ``write_brief`` unless replaced.
    """

    settings: dict
    store: TriageStore
    config: TriageConfig
    classify_ctx: ClassifyContext
    routing: RoutingTable
    runbooks: RunbookIndex
    api_key: str | None
    refine: object = None
    brief_writer: object = write_brief
    lock: threading.Lock = field(default_factory=threading.Lock)
    incident_errors: int = 0
    slo_alert_errors: int = 0
    refiner: "_Worker | None" = None
    last_expiry_s: float = 0.0

    def on_incident(self, event: str, incident: dict) -> None:
        """The analysis engine's notify hook: incident anomalies enter the same pipeline. Never raises."""
        if event not in ("opened", "escalated", "resolved"):
            return
        try:
            alerts = alerts_from_incident(event, incident, time.time())
            if alerts:
                self.ingest(alerts, refine_in_background=True)
        except Exception:
            self.incident_errors += 1
            log.warning("aiops: incident -> alerts failed", exc_info=True)

    def on_slo_alert(self, event: str, alert: dict) -> None:
        """The SLO engine's notify hook: burn-rate alerts enter the same pipeline. Never raises."""
        try:
            alerts = alerts_from_slo_alert(event, alert, time.time())
            if alerts:
                self.ingest(alerts, refine_in_background=True)
        except Exception:
            self.slo_alert_errors += 1
            log.warning("aiops: SLO alert -> alerts failed", exc_info=True)

    def ingest(self, alerts, now_s: float | None = None, refine_in_background: bool = False) -> dict:
        """Dedup, classify, correlate, route and store validated ``Alert``s in one transaction.

        A refinement (the model) runs after the transaction: in this thread, or,
        with ``refine_in_background`` (alerts raised inside an analysis pass),
        in the refiner thread, so a slow model never holds up the pass."""
        started = time.perf_counter()
        now_s = time.time() if now_s is None else now_s
        analysis = self.store.store
        with self.lock:
            incidents = [_incident_span(i) for i in analysis.open_incidents()] + [
                _incident_span(i) for i in analysis.incidents("resolved", 50)
                if i.resolved_at is not None and i.resolved_at >= now_s - 3600]
            graph = analysis.load_graph()
            with self.store.transaction():
                # a firing alert unseen for a week no longer dedups or resolves (Alertmanager re-sends every 4 h)
                records, groups = self.store.open_state(now_s - OPEN_LOOKBACK_S)
                # the rules decide inside the transaction; a refinement (maybe a slow LLM call) runs after it
                result = triage(list(alerts), records, groups, self.config, now_s, self.store.next_id,
                                self.classify_ctx, graph, self.routing.route, None, incidents)
                self.store.save(result.records, result.groups)
        if self.refine is not None:
            created = {o["alert_id"] for o in result.outcomes if o["action"] == "created"}
            records = [r for r in result.records if r.id in created]
            if records and refine_in_background:
                self._refiner().submit(lambda: self._apply_refinements(records))
            elif records:
                self._apply_refinements(records)
        counts = {}
        for o in result.outcomes:
            counts[o["action"]] = counts.get(o["action"], 0) + 1
        return {"received": len(alerts), "created": counts.get("created", 0),
                "deduplicated": counts.get("deduplicated", 0), "resolved": counts.get("resolved", 0),
                "ignored": counts.get("ignored", 0), "groups": sorted({g.id for g in result.groups}),
                "duration_ms": round((time.perf_counter() - started) * 1000.0, 3), "outcomes": result.outcomes}

    def expire_stale(self, now_s: float | None = None) -> int:
        """Expire firing alerts silent for AIOPS_ALERT_STALE_S and resolve the groups
        left with none firing (at most once a minute; run after each analysis pass).
        Returns how many alerts expired."""
        now_s = time.time() if now_s is None else now_s
        if now_s - self.last_expiry_s < 60.0:
            return 0
        self.last_expiry_s = now_s
        with self.lock, self.store.transaction():
            records, groups = self.store.open_state(0.0)
            stale, changed = expire_stale(records, groups, self.settings["AIOPS_ALERT_STALE_S"], now_s)
            if stale:
                self.store.save(stale, changed)
        return len(stale)

    def _refiner(self) -> "_Worker":
        with self.lock:
            if self.refiner is None:
                self.refiner = _Worker("aiops-alert-refiner")
            return self.refiner

    def _apply_refinements(self, records) -> None:
        """Refine new alerts' classifications outside the write transaction, then store them."""
        refined = refine_records(records, self.classify_ctx, self.config.classifier, self.refine)
        if not refined:
            return
        with self.lock, self.store.transaction():
            groups = {}
            for group_id in {r.group_id for r in records if r.id in refined and r.group_id}:
                group = self.store.group(group_id)
                if group is not None:
                    groups[group_id] = group
            members = {}
            for group in groups.values():
                members.update({m.id: m for m in self.store.alerts(group_id=group.id, limit=10000)})
            changed = []
            for alert_id, classification in refined.items():
                member = members.get(alert_id)
                if member is not None:
                    member.classification = classification
                    changed.append(member)
            for group in groups.values():
                refresh_group(group, members)
            self.store.save(changed, list(groups.values()))

    def group_view(self, group, now_s: float) -> dict:
        records = self.store.alerts(group_id=group.id, limit=1000)
        deploys = related_deploys(group, self.store.deploys(group.first_at - self.settings["AIOPS_DEPLOY_LOOKBACK_S"]
                                                            - 60), self.settings["AIOPS_DEPLOY_LOOKBACK_S"])
        runbooks = self.runbooks.search(runbook_query(records))
        facts = brief_facts(group, records, deploys, runbooks, now_s)
        source = {"source": "template", "model": None}
        try:
            brief = self.brief_writer(facts)
            if hasattr(brief, "text"):  # an llm Document: say what wrote it
                source = {"source": brief.source, "model": brief.model}
                brief = brief.text
        except Exception:  # a broken writer falls back to the deterministic one
            log.warning("aiops: brief writer failed", exc_info=True)
            brief = write_brief(facts)
        return {**group.to_json(), "brief": brief, "brief_source": source, "brief_facts": facts, "runbooks": runbooks,
                "related_deploys": [{**d, "deployed_at": iso(d["deployed_at"])} for d in deploys],
                "alerts": [r.to_json() for r in sorted(records, key=lambda r: r.first_seen)]}


class _Worker:
    """One daemon thread running submitted jobs in order; a failing job is logged, never raised."""

    def __init__(self, name: str, max_pending: int = 1000):
        self.jobs: queue.Queue = queue.Queue(max_pending)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, job) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:  # the model is far behind: keep the rules' answer
            self.dropped += 1

    def join(self, timeout_s: float = 5.0) -> bool:
        """Wait until every submitted job ran (tests); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.jobs.unfinished_tasks

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            except Exception:
                log.warning("aiops: background alert refinement failed", exc_info=True)
            finally:
                self.jobs.task_done()


def _incident_span(incident) -> dict:
    services = {k[0] for k in incident.affected} | {incident.root_cause.get("service")}
    return {"id": incident.id, "services": sorted(s for s in services if s),
            "first_s": incident.first_detected, "last_s": incident.resolved_at or incident.last_detected}


def register(app, aiops_state) -> AlertsState:
    """Called by ``AIOps.init_app``: read the keys, build the state, register routes, wire the engine."""
    from telemetry.config import read_config
    settings = read_config(app, ALERTS_CONFIG)
    routing = RoutingTable.from_file(settings["AIOPS_ALERT_ROUTING_FILE"])
    state = AlertsState(
        settings=settings, store=TriageStore(aiops_state.store),
        config=TriageConfig(settings["AIOPS_ALERT_DEDUP_WINDOW_S"], settings["AIOPS_ALERT_CORRELATION_WINDOW_S"],
                            settings["AIOPS_ALERT_CLASSIFIER"]),
        classify_ctx=ClassifyContext(tiers=settings["AIOPS_SERVICE_TIERS"]), routing=routing,
        runbooks=RunbookIndex.from_folder(settings["AIOPS_RUNBOOKS_DIR"]), api_key=aiops_state.api_key)
    app.extensions[EXTENSION_KEY] = state
    app.register_blueprint(make_blueprint())
    aiops_state.pass_hooks.append(lambda result: state.expire_stale(result.at))
    if settings["AIOPS_ALERTS_FROM_INCIDENTS"]:
        from aiops.notify import chain_notify
        aiops_state.analyzer.notify = chain_notify(aiops_state.analyzer.notify, state.on_incident)
    return state


def ingest(app, alerts, now_s: float | None = None) -> dict:
    """Public intake: validated ``Alert``s (see ``aiops.triage``) into the app's triage pipeline."""
    return app.extensions[EXTENSION_KEY].ingest(alerts, now_s)


def _state() -> AlertsState:
    return current_app.extensions[EXTENSION_KEY]


def _limit(default: int = 100):
    raw = request.args.get("limit")
    if raw is None:
        return default, None
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        return None, json_error(400, "invalid limit", f"limit must be a whole number within [1, 1000], got {raw!r}")
    return int(raw), None




def _rejected(exc: PayloadError):
    return json_error(400, f"invalid {exc.field}", exc.detail, field=exc.field,
                      stored="nothing from this request was stored")


def make_blueprint() -> Blueprint:
    bp = Blueprint("aiops_alerts", __name__, url_prefix="/aiops")

    def mutating(rule: str, endpoint: str, also_get=None):
        """POST with the API-key check; GET goes to ``also_get`` when given; others get a JSON 405."""
        def decorator(view):
            def guarded(**kwargs):
                if request.method == "GET" and also_get is not None:
                    return also_get(**kwargs)
                if request.method != "POST":
                    return method_not_allowed("GET, POST" if also_get else "POST")
                denied = api_key_error(_state().api_key)
                return denied if denied is not None else view(**kwargs)
            guarded.__name__ = endpoint
            bp.add_url_rule(rule, endpoint, guarded, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
            return view
        return decorator

    def alerts_list():
        status = request.args.get("status", "firing")
        valid = ("firing", "resolved", "expired", "all")
        if status not in valid:
            return json_error(400, f"unknown status {status!r}", f"status must be one of: {', '.join(valid)}")
        limit, error = _limit()
        if error:
            return error
        found = _state().store.alerts(None if status == "all" else status, request.args.get("group"), limit)
        return json_response({"status": status, "alert_count": len(found), "alerts": [r.to_json() for r in found]})

    @mutating("/alerts", "alerts_intake", also_get=alerts_list)
    def alerts_intake():
        body, error = json_body()
        if error:
            return error
        try:
            alerts = parse_raw_alerts(body, time.time())
        except PayloadError as exc:
            return _rejected(exc)
        return json_response(_state().ingest(alerts), 202)

    @mutating("/alerts/alertmanager", "alertmanager_intake")
    def alertmanager_intake():
        body, error = json_body()
        if error:
            return error
        try:
            alerts = parse_alertmanager(body, time.time())
        except PayloadError as exc:
            return _rejected(exc)
        return json_response(_state().ingest(alerts), 202)

    @bp.get("/alerts/groups")
    def groups():
        status = request.args.get("status", "open")
        valid = ("open", "resolved", "all")
        if status not in valid:
            return json_error(400, f"unknown status {status!r}", f"status must be one of: {', '.join(valid)}")
        limit, error = _limit()
        if error:
            return error
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
                return json_error(400, "invalid window_s", f"window_s must be a number within (0, 7776000], "
                                                           f"got {raw!r}")
        now = time.time()
        s = _state().store.stats(now - window_s if window_s else 0.0)
        ms = s["triage_ms"]

        def pct(q):
            return round(ms[min(len(ms) - 1, int(q * len(ms)))], 3) if ms else None
        return json_response({
            "window_s": window_s, "alerts_received": s["received"], "alerts_after_dedup": s["records"],
            "groups": s["groups"], "groups_by_priority": s["by_priority"], "received_by_source": s["sources"],
            "dedup_ratio": round(1 - s["records"] / s["received"], 4) if s["received"] else 0.0,
            "noise_reduction_ratio": round(1 - s["groups"] / s["received"], 4) if s["received"] else 0.0,
            "time_to_triage_ms": {"mean": round(sum(ms) / len(ms), 3) if ms else None, "p50": pct(0.5),
                                  "p95": pct(0.95), "max": round(ms[-1], 3) if ms else None}})

    def deployments_list():
        limit, error = _limit()
        if error:
            return error
        found = _state().store.deploys(0.0, request.args.get("service"), limit)
        return json_response({"deploy_count": len(found), "deployments": [
            {**d, "deployed_at": iso(d["deployed_at"])} for d in found]})

    @mutating("/deployments", "deployments", also_get=deployments_list)
    def deployments():
        body, error = json_body()
        if error:
            return error
        try:
            deploy = _parse_deploy(body, time.time())
        except PayloadError as exc:
            return _rejected(exc)
        saved = _state().store.add_deploy(deploy)
        return json_response({**saved, "deployed_at": iso(saved["deployed_at"])}, 201)

    @mutating("/changes/risk", "change_risk")
    def change_risk():
        body, error = json_body()
        if error:
            return error
        now = time.time()
        try:
            change = parse_change(body, now)
        except PayloadError as exc:
            return _rejected(exc)
        budget_source = "request" if change.error_budget_remaining is not None else None
        if budget_source is None:
            change = replace(change, error_budget_remaining=_slo_budget_remaining(change.service))
            budget_source = "slo" if change.error_budget_remaining is not None else None
        return json_response({**score_change(change, _risk_context(change.service, now)),
                              "error_budget_source": budget_source})

    def capacity_observed():
        state = _state()
        raw = request.args.get("days", "7")
        try:
            days = float(raw)
        except ValueError:
            days = -1.0
        if not 0 < days <= 31:
            return json_error(400, "invalid days", f"days must be a number within (0, 31], got {raw!r}")
        now = time.time()
        rows = state.store.hourly_requests(now - days * 86400)
        services = observed_metrics(rows, now, days, state.settings["AIOPS_CAPACITY_LIMITS_RPS"])
        return json_response({"source": "spans", "days": days, "services": services, "summary": {
            "services": len(services), "counts": {level: sum(1 for s in services if s["status"] == level)
                                                  for level in ("URGENT", "PLANNED", "WATCH", "OK")},
            "without_limit": [s["service"] for s in services if s["limit_rps"] is None]}})

    @mutating("/capacity", "capacity", also_get=capacity_observed)
    def capacity():
        body, error = json_body()
        if error:
            return error
        state = _state()
        try:
            config = AdvisorConfig(target_util_pct=state.settings["AIOPS_CAPACITY_TARGET_UTIL_PCT"])
            out = analyse_capacity(body, config)
        except PayloadError as exc:
            return _rejected(exc)
        return json_response({"source": "service_metrics", **out})

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
    out["deployed_at"] = parse_time(body["deployed_at"], "deployed_at") if body.get("deployed_at") is not None \
        else now_s
    return out


def _slo_budget_remaining(service: str) -> float | None:
    """The smallest error-budget ratio left among ``service``'s SLOs (None without SLOs)."""
    from aiops.slo_api import SLO_EXTENSION_KEY
    engine = current_app.extensions.get(SLO_EXTENSION_KEY)
    snapshot = engine.service_snapshot(service) if engine is not None else None
    ratios = [s["error_budget_remaining"] for s in (snapshot or {}).get("slos", [])
              if s.get("error_budget_remaining") is not None]
    return min(ratios) if ratios else None


def _risk_context(service: str, now_s: float) -> RiskContext:
    state = _state()
    analysis = state.store.store
    open_incidents = analysis.open_incidents()
    mine = [i for i in open_incidents if service in {k[0] for k in i.affected} | {i.root_cause.get("service")}]
    groups = [{"id": g.id, "priority": g.priority} for g in state.store.open_groups_of(service)]
    baseline = None
    rows = [b for (s, _), b in analysis.load_baselines().items() if s == service and b.requests]
    if rows:
        total = sum(b.requests for b in rows)
        baseline = {"error_ratio": sum(b.error_ratio * b.requests for b in rows) / total,
                    "p95_ms": max(b.p95_ms for b in rows)}
    return RiskContext(open_incidents=[{"id": i.id, "severity": i.severity} for i in mine],
                       other_open_incidents=len(open_incidents) - len(mine), open_groups=groups,
                       recent_deploys=state.store.deploys(now_s - 86400, service),
                       baseline=baseline, peak_hours=state.settings["AIOPS_CHANGE_PEAK_HOURS"])
