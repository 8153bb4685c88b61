"""HTTP API of the SLO part (/aiops/services, /aiops/slo, /aiops/burn,
/aiops/forecast, /aiops/release, /aiops/slo-alerts, /aiops/summary) and
``GET /metrics``: a thin shell over ``SLOEngine``.

Errors are ``{"error", "detail", "field"}`` with a 4xx status; calls that
change state (POST, PUT, PATCH, DELETE) need ``X-API-Key`` when
``AIOPS_API_KEY`` is set (``telemetry.web.ApiBlueprint``). Nothing of a
rejected request is stored.
"""
from __future__ import annotations

import logging
import time

from flask import current_app, request

from aiops.slo.definitions import validate_service, validate_slo
from aiops.slo.engine import SLOEngine, alert_json
from aiops.slo.narrative import write_service_narrative
from llm.features import write_feature
from telemetry.errors import PayloadError
from telemetry.timefmt import iso, parse_time_field
from telemetry.web import ApiBlueprint, json_body, json_error, json_response, query_choice, query_number

log = logging.getLogger("aiops")
ALERT_STATUSES = ("firing", "acknowledged", "suppressed", "resolved")
ENDPOINTS = [
    "GET  /aiops/services", "POST /aiops/services", "GET  /aiops/services/<name>", "PUT  /aiops/services/<name>",
    "DELETE /aiops/services/<name>",
    "GET  /aiops/slo", "GET  /aiops/slo/<service>", "GET  /aiops/slo/<service>/targets",
    "POST /aiops/slo/<service>/targets", "PUT  /aiops/slo/targets/<id>", "DELETE /aiops/slo/targets/<id>",
    "GET  /aiops/burn", "GET  /aiops/burn/<service>", "POST /aiops/burn/compute",
    "GET  /aiops/forecast/<service>",
    "GET  /aiops/release/<service>", "POST /aiops/release/<service>/override", "GET  /aiops/release/<service>/audit",
    "GET  /aiops/slo-alerts", "GET  /aiops/slo-alerts/<service>", "PATCH /aiops/slo-alerts/<id>/acknowledge",
    "GET  /aiops/summary", "GET  /aiops/summary/heatmap", "GET  /aiops/summary/<service>",
    "GET  /metrics",
]


def _engine() -> SLOEngine:
    return current_app.extensions["aiops"].features["slo"]


def _no_service(name: str):
    return json_error(404, f"service {name!r} not found",
                      "list services with GET /aiops/services; create one with POST /aiops/services")


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("aiops_slo", __name__, url_prefix="/aiops",
                      api_key=lambda: current_app.extensions["aiops"].api_key)

    def route(rule: str, **views):
        """One URL rule, a view per method (GET=..., POST=...)."""
        name = "slo_" + rule.strip("/").replace("/", "_").replace("<", "").replace(">", "").replace("-", "_")
        for method, view in views.items():
            bp.add_url_rule(rule, name, view, methods=[method])

    # -- services ------------------------------------------------------------------------

    def list_services():
        engine = _engine()
        counts: dict[str, int] = {}
        for slo in engine.store.slos():
            counts[slo.service] = counts.get(slo.service, 0) + 1
        return json_response({"services": [{**s.to_json(), "slo_count": counts.get(s.name, 0)}
                                           for s in engine.store.services()]})

    def create_service():
        body = json_body()
        fields = validate_service(body)
        engine = _engine()
        with engine.store.transaction() as conn:
            if engine.store.service_exists(fields["name"], conn):
                return json_error(409, f"service {fields['name']!r} already exists",
                                  f"update it with PUT /aiops/services/{fields['name']}")
            engine.store.upsert_service(fields, time.time(), conn)
        return json_response(engine.store.service(fields["name"]).to_json(), 201)

    def get_service(name: str):
        engine = _engine()
        svc = engine.store.service(name)
        if svc is None:
            return _no_service(name)
        return json_response({**svc.to_json(), "slos": [s.to_json() for s in engine.store.slos(name)],
                              "burn": engine.service_snapshot(name)})

    def update_service(name: str):
        body = json_body()
        fields = validate_service(body, name=name, partial=True)
        engine = _engine()
        if engine.store.service(name) is None:
            return _no_service(name)
        with engine.store.transaction() as conn:
            engine.store.upsert_service({"name": name, **fields}, time.time(), conn)
        return json_response(engine.store.service(name).to_json())

    def delete_service(name: str):
        engine = _engine()
        if engine.store.service(name) is None:
            return _no_service(name)
        deleted = engine.store.delete_service(name)
        return json_response({"deleted": name, "slos_deleted": deleted})

    route("/services", GET=list_services, POST=create_service)
    route("/services/<name>", GET=get_service, PUT=update_service, DELETE=delete_service)

    # -- SLOs -----------------------------------------------------------------------------

    def all_slos():
        engine = _engine()
        latest = {s["slo_id"]: s for s in engine.store.latest_snapshots()}
        return json_response({"slos": [{**s.to_json(), "status": latest.get(s.id)} for s in engine.store.slos()]})

    def slo_status(service: str):
        engine = _engine()
        slos = engine.store.slos(service)
        if not slos and engine.store.service(service) is None:
            return _no_service(service)
        latest = {s["slo_id"]: s for s in engine.store.latest_snapshots(service)}
        out = []
        for slo in slos:
            snap = latest.get(slo.id)
            out.append({**slo.to_json(),
                        "sli": snap["error_budget"]["sli"] if snap else None,
                        "error_budget": snap["error_budget"] if snap else None,
                        "burn_rates": snap["burn_rates"] if snap else None,
                        "composite_burn_rate": snap["composite_burn_rate"] if snap else None,
                        "risk_level": snap["risk_level"] if snap else None,
                        "alerts": snap["alerts"] if snap else None,
                        "computed_at": snap["timestamp"] if snap else None})
        snap = engine.service_snapshot(service)
        return json_response({"service_name": service, "risk_level": snap["risk_level"] if snap else None,
                              "slo_count": len(out), "slos": out,
                              "note": None if all(o["computed_at"] for o in out) else
                              "an SLO without figures has not been computed yet: POST /aiops/burn/compute"})

    def list_targets(service: str):
        engine = _engine()
        if engine.store.service(service) is None:
            return _no_service(service)
        return json_response({"service_name": service, "targets": [s.to_json() for s in engine.store.slos(service)]})

    def create_target(service: str):
        body = json_body()
        slo = validate_slo(body, service=service)
        _engine().check_window(slo)
        engine = _engine()
        with engine.store.transaction() as conn:
            if engine.store.slo_by_name(slo.name, conn) is not None:
                return json_error(409, f"SLO {slo.name!r} already exists",
                                  "give this one another name, or update it with PUT /aiops/slo/targets/<id>")
            engine.store.save_slo(slo, time.time(), conn)
        return json_response(slo.to_json(), 201)

    def _slo_id(raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise PayloadError("id", "an SLO id is an integer, as in GET /aiops/slo",
                               error=f"invalid SLO id {raw!r}") from None

    def update_target(slo_id: str):
        ident = _slo_id(slo_id)
        engine = _engine()
        current = engine.store.slo(ident)
        if current is None:
            return json_error(404, f"SLO {slo_id} not found", "list SLO ids with GET /aiops/slo")
        body = json_body()
        if not isinstance(body, dict):
            raise PayloadError("body", "must be a JSON object (the fields to change)")
        merged = {k: v for k, v in current.to_json().items()
                  if k in ("name", "service", "route", "indicator", "threshold_ms", "target", "timeWindow",
                           "budgetingMethod", "description") and v is not None}
        if "indicator" in body and body["indicator"] != "latency":
            merged.pop("threshold_ms", None)
        merged.update(body)
        slo = validate_slo(merged, service=current.service)
        engine.check_window(slo)
        slo.id, slo.source = ident, "api"
        with engine.store.transaction() as conn:
            other = engine.store.slo_by_name(slo.name, conn)
            if other is not None and other.id != ident:
                return json_error(409, f"SLO {slo.name!r} already exists", "choose another name")
            engine.store.save_slo(slo, time.time(), conn)
        return json_response(slo.to_json())

    def delete_target(slo_id: str):
        ident = _slo_id(slo_id)
        if not _engine().store.delete_slo(ident):
            return json_error(404, f"SLO {slo_id} not found", "list SLO ids with GET /aiops/slo")
        return json_response({"deleted": ident})

    route("/slo", GET=all_slos)
    route("/slo/targets/<slo_id>", PUT=update_target, DELETE=delete_target)
    route("/slo/<service>", GET=slo_status)
    route("/slo/<service>/targets", GET=list_targets, POST=create_target)

    # -- burn rates -------------------------------------------------------------------------

    def all_burn():
        engine = _engine()
        snaps = engine.store.latest_snapshots()
        services = sorted({s["service_name"] for s in snaps})
        return json_response({"services": [engine.service_snapshot(name) for name in services],
                              "service_count": len(services)})

    def burn_history(service: str):
        engine = _engine()
        if engine.store.service(service) is None:
            return _no_service(service)
        hours = query_number("hours", 24.0, 0.0, 24 * 90.0)
        limit = query_number("limit", 1000, 0, 100000)
        history = engine.store.burn_history(service, time.time() - hours * 3600.0, int(limit))
        return json_response({"service_name": service, "hours": hours, "snapshot_count": len(history),
                              "current": engine.service_snapshot(service), "history": history})

    def compute():
        telemetry = current_app.extensions.get("telemetry")
        if telemetry is not None and telemetry.store is not None:
            telemetry.store.flush(5.0)
        result = _engine().compute()  # alert updates are transactions: safe beside a running pass
        return json_response(result.to_json())

    route("/burn", GET=all_burn)
    route("/burn/compute", POST=compute)
    route("/burn/<service>", GET=burn_history)

    # -- forecast, release gate ---------------------------------------------------------------------

    def get_forecast(service: str):
        fc = _engine().forecast(service)
        if fc is None:
            return json_error(404, f"no SLO for service {service!r}",
                              f"define one with POST /aiops/slo/{service}/targets or AIOPS_SLO_FILE")
        return json_response(fc)

    def get_release(service: str):
        engine = _engine()
        if engine.store.service(service) is None:
            return _no_service(service)
        return json_response(engine.release(service))

    def post_override(service: str):
        engine = _engine()
        if engine.store.service(service) is None:
            return _no_service(service)
        body = json_body()
        if not isinstance(body, dict):
            raise PayloadError("body", "must be a JSON object with reason, who and expires_at")
        unknown = set(body) - {"reason", "who", "expires_at", "expires_in_hours"}
        if unknown:
            raise PayloadError(sorted(unknown)[0], "unknown field; valid fields: reason, who, "
                                                                   "expires_at, expires_in_hours")
        now = time.time()
        reason, who = body.get("reason"), body.get("who")
        if not isinstance(reason, str) or len(reason.strip()) < 10 or len(reason) > 2000:
            raise PayloadError("reason", "is required: 10 to 2000 characters saying why the gate "
                                                         "is overridden")
        if not isinstance(who, str) or not who.strip() or len(who) > 200:
            raise PayloadError("who", "is required: the person overriding (1 to 200 characters)")
        max_h = engine.settings.max_override_h
        if ("expires_at" in body) == ("expires_in_hours" in body):
            raise PayloadError("expires_at", "give exactly one of expires_at (ISO 8601 UTC) or "
                                                             "expires_in_hours")
        if "expires_at" in body:
            expires = parse_time_field(body["expires_at"], "expires_at")
        else:
            hours = body["expires_in_hours"]
            if isinstance(hours, bool) or not isinstance(hours, (int, float)):
                raise PayloadError("expires_in_hours", f"must be a number of hours, got {hours!r}")
            expires = now + hours * 3600.0
        if not now < expires <= now + max_h * 3600.0:
            raise PayloadError("expires_at", f"must be in the future and at most {max_h:g} hours "
                                                             "ahead (AIOPS_RELEASE_MAX_OVERRIDE_HOURS)")
        data = engine.override(service, who.strip(), reason.strip(), expires, now)
        return json_response({**data, "release": engine.release(service)}, 201)

    def get_audit(service: str):
        engine = _engine()
        limit = query_number("limit", 100, 0, 10000)
        trail = engine.store.audit_trail(service, int(limit))
        return json_response({"service_name": service, "entries": [{**e, "at": iso(e["at"])} for e in trail]})

    route("/forecast/<service>", GET=get_forecast)
    route("/release/<service>", GET=get_release)
    route("/release/<service>/override", POST=post_override)
    route("/release/<service>/audit", GET=get_audit)

    # -- SLO alerts -----------------------------------------------------------------------------------

    def list_alerts(service: str | None = None):
        status = query_choice("status", "open", ("open", "all") + ALERT_STATUSES)
        limit = query_number("limit", 100, 0, 1000)
        engine = _engine()
        service = service or request.args.get("service")
        if status == "open":
            found = [a for a in engine.store.alerts(service=service, limit=1000)
                     if a["status"] in ("firing", "acknowledged", "suppressed")][: int(limit)]
        else:
            found = engine.store.alerts(None if status == "all" else status, service, int(limit))
        return json_response({"alert_count": len(found), "status": status, "alerts": [alert_json(a) for a in found]})

    def acknowledge(alert_id: str):
        body = request.get_json(silent=True)
        who = body.get("who") if isinstance(body, dict) and isinstance(body.get("who"), str) else None
        alert, error = _engine().acknowledge(alert_id, who[:200] if who else None)
        if alert is None:
            return json_error(404, f"SLO alert {alert_id} not found",
                              "list alert ids with GET /aiops/slo-alerts?status=all")
        if error:
            return json_error(409, f"cannot acknowledge SLO alert {alert_id}", error, alert_status=alert["status"])
        return json_response(alert_json(alert))

    def service_alerts(service: str):
        return list_alerts(service)

    route("/slo-alerts", GET=list_alerts)
    route("/slo-alerts/<service>", GET=service_alerts)
    route("/slo-alerts/<alert_id>/acknowledge", PATCH=acknowledge, POST=acknowledge)

    # -- summaries ---------------------------------------------------------------------------------

    def summary():
        return json_response(_engine().overview())

    def summary_heatmap():
        hours = query_number("hours", 24.0, 0.0, 24 * 35.0)
        bucket = query_number("bucket_minutes", 60.0, 0.0, 1440.0)
        if hours * 60.0 / bucket > 2000:
            raise PayloadError("bucket_minutes", f"hours*60/bucket_minutes must be at most 2000, "
                                                 f"got {hours * 60.0 / bucket:g}", error="too many buckets")
        return json_response(_engine().heatmap(hours, bucket))

    def summary_service(service: str):
        engine = _engine()
        if engine.store.service(service) is None and not engine.store.slos(service):
            return _no_service(service)
        facts = engine.service_facts(service)
        doc = write_feature(current_app.extensions["aiops"].llm, "slo_summary", facts, write_service_narrative)
        return json_response({"service_name": service, "narrative": doc.text, "source": doc.source,
                              "model": doc.model, "latency_ms": round(doc.latency_ms, 2), "usage": doc.usage,
                              "fallback_reason": doc.fallback_reason, "facts": facts})

    route("/summary", GET=summary)
    route("/summary/heatmap", GET=summary_heatmap)
    route("/summary/<service>", GET=summary_service)
    return bp
