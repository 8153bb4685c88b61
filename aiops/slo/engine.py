"""SLO evaluation: count requests, compute burn rates and budgets, run the
alert state machine, notify, and answer forecast, release and summary
questions. Orchestration only: the maths is in ``aiops.slo.budgets``, the SQL
in ``aiops.slo.store``.

``SLOEngine.compute`` runs after every analysis pass that holds the lease
(``aiops.slo.feature``) and on ``POST /aiops/burn/compute``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from aiops.slo.budgets import (
    burn_snapshot,
    forecast,
    heatmap,
    next_alert,
    release_decision,
    windows_needed_s,
    worst_risk,
)
from aiops.slo.config import SLOSettings
from aiops.slo.definitions import SLODefinition, parse_definitions
from aiops.slo.store import SLOStore
from aiops.store.database import Database, open_database
from telemetry.errors import PayloadError
from telemetry.timefmt import iso

log = logging.getLogger("aiops")

#: Seconds between two prunes of old per-minute counts and burn history.
PRUNE_EVERY_S = 3600.0


#: A process that has not published its span-store counters for this long is folded away.
DEAD_PROCESS_S = 86400.0


@dataclass
class ComputeResult:
    at: float
    duration_ms: float
    spans_rolled_up: int
    snapshots: list[dict] = field(default_factory=list)
    events: list[tuple[str, dict]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"computed_at": iso(self.at), "duration_ms": round(self.duration_ms, 2),
                "spans_rolled_up": self.spans_rolled_up, "slo_count": len(self.snapshots),
                "snapshots": self.snapshots,
                "alert_events": [{"event": e, "alert_id": a["id"], "slo_name": a["slo_name"], "severity": a["severity"],
                                  "status": a["status"]} for e, a in self.events]}


def load_slo_file(path: str) -> tuple[list[dict], list[SLODefinition]]:
    """Services and SLOs of a YAML (``.yaml``/``.yml``) or JSON file; ValueError naming the field."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ValueError(f"AIOPS_SLO_FILE cannot be read: {exc}") from None
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml  # at the call: only SLO files in YAML need PyYAML
            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        kind = "YAML" if path.endswith((".yaml", ".yml")) else "JSON"
        raise ValueError(f"AIOPS_SLO_FILE {path} is not valid {kind}: {exc}") from None
    try:
        return parse_definitions(doc)
    except PayloadError as exc:
        raise ValueError(f"AIOPS_SLO_FILE {path}: {exc}") from None


def alert_json(alert: dict) -> dict:
    """An SLO alert as the API and notifications show it (ISO times)."""
    out = {k: v for k, v in alert.items() if k != "evaluations"}
    for key in ("fired_at", "resolved_at", "acknowledged_at", "last_evaluated"):
        out[key] = iso(alert.get(key))
    out["title"] = f"SLO {alert['slo_name']} burning {alert['long_burn_rate']:g}x ({alert['rule']})"
    out["root_cause"] = {"service": alert["service"], "endpoint": alert.get("route") or alert["service"],
                         "description": alert["reason"]}
    out["evaluations"] = alert.get("evaluations", [])
    return out


class SLOEngine:
    """SLO work over one ``Database`` (or the file at a path); ``notify(event, alert_json)``
    gets opened, escalated, acknowledged and resolved SLO alerts; ``open_incidents()``
    returns the analysis' open incidents (``incident_summaries``: id, severity, status,
    title, services), which the release gate and the overview count."""

    def __init__(self, db: Database | str, settings: SLOSettings | None = None, notify=None,
                 open_incidents: Callable[[], list[dict]] | None = None):
        self.db = open_database(db)
        self.store = SLOStore(self.db)
        self.settings = settings or SLOSettings()
        self.notify = notify
        self.open_incidents = open_incidents or (lambda: [])

    # -- definitions ------------------------------------------------------------------------

    def check_window(self, slo: SLODefinition) -> None:
        """An SLO window longer than the counts are kept would silently shrink: refuse it."""
        kept_s = self.settings.retention_days * 86400.0
        if slo.window_s > kept_s:
            raise PayloadError("timeWindow", f"{slo.window_s / 86400.0:g} days is longer than the "
                                     f"{self.settings.retention_days:g} days of counts kept "
                                     "(raise AIOPS_SLO_RETENTION_DAYS)")

    def load_definitions(self, services: list[dict], slos: list[SLODefinition], now_s: float | None = None) -> None:
        """Upsert file definitions by name, in one transaction (``PayloadError``
        when a window is longer than the counts are kept)."""
        now_s = time.time() if now_s is None else now_s
        for i, slo in enumerate(slos):
            try:
                self.check_window(slo)
            except PayloadError as exc:
                raise PayloadError(f"slos[{i}].{exc.field}", exc.detail) from None
        with self.store.transaction() as conn:
            for fields in services:
                self.store.upsert_service(fields, now_s, conn)
            for slo in slos:
                existing = self.store.slo_by_name(slo.name, conn)
                slo.id = existing.id if existing is not None else None
                self.store.save_slo(slo, now_s, conn)

    # -- computation ---------------------------------------------------------------------------

    def compute(self, now_s: float | None = None) -> ComputeResult:
        """Roll up new spans, snapshot every SLO, run its alerts, notify."""
        started = time.perf_counter()
        now_s = time.time() if now_s is None else now_s
        rolled = self.store.rollup()
        s = self.settings
        result = ComputeResult(now_s, 0.0, rolled)
        for slo in self.store.slos():
            counts = self.store.window_counts(slo, windows_needed_s(slo), now_s)
            snapshot, evaluations = burn_snapshot(slo, counts, now_s, s.min_requests, s.min_bad_events)
            with self.store.transaction() as conn:
                current = self.store.latest_alert(slo.id, conn)
                updated, event = next_alert(current, evaluations, now_s, s.alert_cooldown_s)
                if updated is not None and updated is not current:
                    if "id" not in updated:
                        updated.update(id=self.store.next_alert_id(now_s, conn), slo_id=slo.id, slo_name=slo.name,
                                       service=slo.service, route=slo.route, indicator=slo.indicator,
                                       target=slo.target)
                    self.store.save_alert(updated, conn)
                    if event is not None:
                        result.events.append((event, updated))
                snapshot["open_alert"] = (updated["id"] if updated is not None
                                          and updated["status"] in ("firing", "acknowledged", "suppressed") else None)
                self.store.save_snapshot(snapshot, s.history_interval_s, conn)
            result.snapshots.append(snapshot)
        last_prune = float(self.db.get_state("slo_last_prune", "0"))
        if now_s - last_prune >= PRUNE_EVERY_S:
            self.store.prune(now_s - s.retention_days * 86400.0)
            self.store.fold_dead_processes(now_s - DEAD_PROCESS_S)
            self.db.set_state("slo_last_prune", now_s)
        result.duration_ms = (time.perf_counter() - started) * 1000.0
        if self.notify is not None:
            for event, alert in result.events:
                try:
                    self.notify(event, alert_json(alert))
                except Exception:  # notifications never break evaluation
                    log.warning("aiops: SLO alert notification failed", exc_info=True)
        return result

    def acknowledge(self, alert_id: str, who: str | None, now_s: float | None = None) -> tuple[dict | None, str | None]:
        """(alert, error): an alert can be acknowledged while firing or suppressed."""
        now_s = time.time() if now_s is None else now_s
        with self.store.transaction() as conn:
            alert = self.store.alert(alert_id, conn)
            if alert is None:
                return None, "not found"
            if alert["status"] not in ("firing", "suppressed"):
                return alert, (f"alert {alert_id} is {alert['status']}; "
                               "only a firing or suppressed alert can be acknowledged")
            alert.update(status="acknowledged", acknowledged_at=now_s, acknowledged_by=who)
            self.store.save_alert(alert, conn)
        if self.notify is not None:
            try:
                self.notify("acknowledged", alert_json(alert))
            except Exception:
                log.warning("aiops: SLO alert notification failed", exc_info=True)
        return alert, None

    # -- questions -----------------------------------------------------------------------------

    def service_snapshot(self, service: str, snapshots: list[dict] | None = None) -> dict | None:
        """The service's latest BurnRateSnapshot: its fastest-burning SLO decides, every SLO listed."""
        snaps = self.store.latest_snapshots(service) if snapshots is None else snapshots
        if not snaps:
            return None
        worst = max(snaps, key=lambda x: x["composite_burn_rate"])
        return {"service_name": service,
                **{k: worst[k] for k in ("burn_rate_5m", "burn_rate_30m", "burn_rate_1h", "burn_rate_6h",
                                         "burn_rate_24h", "burn_rate_3d", "composite_burn_rate",
                                         "error_budget_consumed", "error_budget_remaining")},
                "risk_level": worst_risk(x["risk_level"] for x in snaps),
                "worst_slo": worst["slo_name"],
                "timestamp": max(x["timestamp"] for x in snaps),
                "slos": snaps}

    def forecast(self, service: str, now_s: float | None = None) -> dict | None:
        """Exhaustion forecast of each SLO of ``service``; the soonest exhaustion leads."""
        now_s = time.time() if now_s is None else now_s
        slos = self.store.slos(service)
        if not slos:
            return None
        since = now_s - self.settings.forecast_lookback_h * 3600.0
        per_slo = []
        for slo in slos:
            fc = forecast(self.store.forecast_points(slo.id, since), now_s)
            per_slo.append({"slo_id": slo.id, "slo_name": slo.name, **fc})
        def soonest(f):
            t = f["time_to_exhaustion_hours"]
            return (t is None, t if t is not None else 0.0, -f["data_points_used"])
        lead = min(per_slo, key=soonest)
        return {"service_name": service, **{k: v for k, v in lead.items() if k not in ("slo_id",)},
                "lookback_hours": self.settings.forecast_lookback_h, "slos": per_slo}

    def open_incidents_of(self, service: str) -> list[dict]:
        """Open incidents whose root cause or affected endpoints are in ``service``."""
        return [{k: incident[k] for k in ("id", "severity", "status", "title")}
                for incident in self.open_incidents() if service in incident["services"]]

    def release(self, service: str, now_s: float | None = None, audit: bool = True) -> dict:
        """The release decision for ``service`` (recorded in the audit trail when ``audit``)."""
        now_s = time.time() if now_s is None else now_s
        snap = self.service_snapshot(service)
        risk = snap["risk_level"] if snap else "SAFE"
        firing = [a for a in self.store.alerts(service=service, limit=1000)
                  if a["status"] in ("firing", "acknowledged")]
        incidents = self.open_incidents_of(service)
        override = self.store.active_override(service, now_s)
        decision = release_decision(risk, incidents, firing, override)
        if decision["override"] is not None:
            o = decision["override"]
            decision["override"] = {**o, "created_at": iso(o["created_at"]), "expires_at": iso(o["expires_at"])}
        out = {"service_name": service, "evaluated_at": iso(now_s), **decision,
               "composite_burn_rate": snap["composite_burn_rate"] if snap else None,
               "error_budget_remaining": snap["error_budget_remaining"] if snap else None,
               "firing_alerts": [a["id"] for a in firing], "open_incidents": [i["id"] for i in incidents],
               "slo_count": len(snap["slos"]) if snap else 0}
        if audit:
            # Audit what the decision rests on, once per change: a dashboard or CI job polling the gate
            # must not flood the trail with identical entries.
            basis = {"decision": out["decision"], "gate_decision": out.get("gate_decision"),
                     "override_id": (decision["override"] or {}).get("id"), "risk_level": risk,
                     "firing_alerts": sorted(out["firing_alerts"]), "open_incidents": sorted(out["open_incidents"])}
            with self.store.transaction():
                last = self.store.last_audit(service, "decision")
                if last is not None and last["data"].get("audit_basis") == basis:
                    out["audit_id"], out["audited"] = last["id"], "unchanged since that entry"
                else:
                    out["audit_id"] = self.store.audit(service, "decision", out["decision"],
                                                       {**out, "audit_basis": basis}, now_s)
                    out["audited"] = "new entry"
        return out

    def override(self, service: str, who: str, reason: str, expires_at: float, now_s: float) -> dict:
        """Store an override and its audit entry in one transaction; returns the audit entry data."""
        with self.store.transaction() as conn:
            before = self.release(service, now_s, audit=False)
            override_id = self.store.add_override(service, who, reason, expires_at, now_s, conn)
            data = {"override_id": override_id, "service_name": service, "who": who, "reason": reason,
                    "created_at": iso(now_s), "expires_at": iso(expires_at),
                    "decision_before": before["decision"], "blockers": before["blockers"],
                    "cautions": before["cautions"]}
            data["audit_id"] = self.store.audit(service, "override", "approved", data, now_s)
        return data

    def service_facts(self, service: str, now_s: float | None = None) -> dict:
        """Everything the service narrative says, as data (no prose)."""
        now_s = time.time() if now_s is None else now_s
        svc = self.store.service(service)
        snap = self.service_snapshot(service)
        facts = {"service": service, "tier": svc.tier if svc else None, "owner": svc.owner if svc else None,
                 "description": svc.description if svc else None, "generated_at": iso(now_s),
                 "risk_level": snap["risk_level"] if snap else "SAFE", "slos": []}
        for s in (snap["slos"] if snap else []):
            b = s["error_budget"]
            facts["slos"].append({"name": s["slo_name"], "indicator": s["indicator"], "route": s["route"],
                                  "target": s["target"], "sli": b["sli"], "remaining_ratio": b["remaining_ratio"],
                                  "full_outage_minutes_left": b["full_outage_minutes_left"],
                                  "composite_burn_rate": s["composite_burn_rate"], "risk_level": s["risk_level"],
                                  "burn_rates": s["burn_rates"]})
        fc = self.forecast(service, now_s)
        facts["forecast"] = ({k: fc[k] for k in ("time_to_exhaustion_hours", "projected_exhaustion_time",
                                                  "burn_rate_trend", "confidence_level", "forecast_message",
                                                  "data_points_used")} if fc else None)
        facts["firing_alerts"] = [
            {"id": a["id"], "severity": a["severity"], "rule": a["rule"], "slo_name": a["slo_name"],
             "status": a["status"], "reason": a["reason"]}
            for a in self.store.alerts(service=service, limit=100)
            if a["status"] in ("firing", "acknowledged", "suppressed")]
        facts["open_incidents"] = self.open_incidents_of(service)
        gate = self.release(service, now_s, audit=False)
        facts["release"] = {k: gate[k] for k in ("decision", "gate_decision", "blockers", "cautions", "overridden",
                                                  "override")}
        return facts

    def overview(self, now_s: float | None = None) -> dict:
        """The executive overview: every service's risk, budget and alerts."""
        now_s = time.time() if now_s is None else now_s
        services = {s.name: s for s in self.store.services()}
        latest = self.store.latest_snapshots()
        by_service: dict[str, list] = {}
        for snap in latest:
            by_service.setdefault(snap["service_name"], []).append(snap)
        open_alerts = [a for a in self.store.alerts(limit=1000) if a["status"] in ("firing", "acknowledged")]
        incidents = self.open_incidents()
        rows = []
        for name in sorted(set(services) | set(by_service)):
            snap = self.service_snapshot(name, by_service.get(name, []))
            svc = services.get(name)
            rows.append({"service_name": name, "tier": svc.tier if svc else None, "owner": svc.owner if svc else None,
                         "risk_level": snap["risk_level"] if snap else "SAFE",
                         "composite_burn_rate": snap["composite_burn_rate"] if snap else None,
                         "error_budget_remaining": snap["error_budget_remaining"] if snap else None,
                         "slo_count": len(by_service.get(name, [])),
                         "firing_alerts": sum(1 for a in open_alerts if a["service"] == name)})
        risk_counts = {level: sum(1 for r in rows if r["risk_level"] == level)
                       for level in ("SAFE", "OBSERVE", "DANGER", "FREEZE")}
        met = sum(1 for s in latest if s["error_budget_remaining"] >= 0 and s["error_budget"]["requests"])
        severities: dict[str, int] = {}
        for incident in incidents:
            severities[incident["severity"]] = severities.get(incident["severity"], 0) + 1
        ranked = sorted(rows, key=lambda r: (-(r["composite_burn_rate"] or 0.0), r["service_name"]))
        return {"generated_at": iso(now_s), "service_count": len(rows), "slo_count": len(latest),
                "slos_within_budget": met, "slos_with_traffic": sum(1 for s in latest if s["error_budget"]["requests"]),
                "risk_distribution": risk_counts, "overall_risk": worst_risk(r["risk_level"] for r in rows),
                "firing_alerts": len(open_alerts),
                "pages_firing": sum(1 for a in open_alerts if a["severity"] == "page"),
                "open_incidents": len(incidents), "open_incidents_by_severity": severities,
                "top_risks": [r for r in ranked if r["composite_burn_rate"]][:5], "services": rows}

    def heatmap(self, hours: float, bucket_minutes: float, now_s: float | None = None) -> dict:
        now_s = time.time() if now_s is None else now_s
        bucket_s = bucket_minutes * 60.0
        end = (now_s // bucket_s + 1) * bucket_s
        start = end - max(1, round(hours * 3600.0 / bucket_s)) * bucket_s
        out = heatmap(self.store.heatmap_rows(start, end), start, end, bucket_s)
        return {"hours": hours, "bucket_minutes": bucket_minutes, **out}

