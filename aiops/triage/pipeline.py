"""The triage pipeline of one app: every alert source into one transaction, model refinements
off the request path, stale alerts expired after each pass, and the view of a group with its brief.

``TriageState.ingest`` is the one intake every source goes through: the HTTP
endpoints, the analysis' incidents and SLO burn-rate alerts (both as events).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from aiops.triage.classify import ClassifyContext
from aiops.triage.correlate import TriageConfig, expire_stale, refine_records, refresh_group, triage
from aiops.triage.enrich import RoutingTable, RunbookIndex, brief_facts, related_deploys, runbook_query, write_brief
from aiops.triage.intake import alerts_from_incident, alerts_from_slo_alert
from aiops.triage.store import TriageStore
from telemetry.timefmt import iso

log = logging.getLogger("aiops")
#: Firing alerts and open groups older than this (seconds) are not loaded for dedup and correlation.
OPEN_LOOKBACK_S = 7 * 86400.0


@dataclass
class TriageState:
    """One app's alert triage (``app.extensions["aiops"].features["triage"]``).

    ``incidents(resolved_since_s)`` and ``service_edges()`` are the analysis'
    answers (``incident_summaries``, ``service_edges``: plain data through the
    registry), used to link groups to incidents and to correlate along calls.
    ``refine``: optional ``facts -> dict`` classification refinement (the LLM); it can never lower a P1.
    ``brief_writer``: ``facts -> str``; the deterministic ``write_brief`` unless replaced.
    """

    settings: dict
    store: TriageStore
    config: TriageConfig
    classify_ctx: ClassifyContext
    routing: RoutingTable
    runbooks: RunbookIndex
    incidents: Callable[[float | None], list[dict]] = lambda resolved_since_s=None: []
    service_edges: Callable[[], set] = lambda: set()
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
        with self.lock:
            incidents = [{"id": i["id"], "services": i["services"], "first_s": i["first_s"], "last_s": i["last_s"]}
                         for i in self.incidents(now_s - 3600)]
            edges = self.service_edges()
            with self.store.transaction():
                # a firing alert unseen for a week no longer dedups or resolves (Alertmanager re-sends every 4 h)
                records, groups = self.store.open_state(now_s - OPEN_LOOKBACK_S)
                # the rules decide inside the transaction; a refinement (maybe a slow LLM call) runs after it
                result = triage(list(alerts), records, groups, self.config, now_s, self.store.next_id,
                                self.classify_ctx, edges, self.routing.route, None, incidents)
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


def ingest(app, alerts, now_s: float | None = None) -> dict:
    """Public intake: validated ``Alert``s (``aiops.triage.intake``) into the app's triage pipeline."""
    return app.extensions["aiops"].features["triage"].ingest(alerts, now_s)
