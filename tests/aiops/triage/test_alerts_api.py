"""The alert triage API on a real app and SQLite file; a real Alertmanager posting to a live server."""
import json
import os
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from aiops import AIOps
from aiops.triage.api import ENDPOINTS
from aiops.triage.intake import parse_raw_alerts
from aiops.triage.pipeline import ingest
from tests.aiops.helpers import drive
from tests.aiops.triage.helpers import PAYMENT, PRODUCT_ALERTS
from tests.helpers import wait_until

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@pytest.fixture
def app(svc_app):
    return svc_app(AIOPS_SERVICE_TIERS="payment-gateway=1")


def now_iso(offset_s=0.0):
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def fresh(alerts, offset_s=-60.0):
    """The product's alerts moved to now (their relative times kept)."""
    first = min(datetime.fromisoformat(a["timestamp"].replace("Z", "+00:00")) for a in alerts)
    out = []
    for a in alerts:
        at = datetime.fromisoformat(a["timestamp"].replace("Z", "+00:00"))
        out.append({**a, "timestamp": now_iso(offset_s + (at - first).total_seconds())})
    return out


def test_generic_alerts_are_triaged_grouped_and_briefed(app):
    client = app.test_client()
    deploy = client.post("/aiops/deployments", json={"service": "payment-gateway", "version": "v2.3.1",
                                                     "deployed_at": now_iso(-120 - 1200)})
    assert deploy.status_code == 201 and deploy.json["id"] == "DEP-1"
    body = fresh(PRODUCT_ALERTS, offset_s=-1500)
    posted = client.post("/aiops/alerts", json=body)
    assert posted.status_code == 202 and posted.json["created"] == 5 and len(posted.json["groups"]) == 2
    again = client.post("/aiops/alerts", json=body[1])  # Alertmanager-style re-send of one alert
    assert again.json["deduplicated"] == 1
    listed = client.get("/aiops/alerts").json
    assert listed["alert_count"] == 5
    crash = [a for a in listed["alerts"] if a["labels"].get("pod") == "payment-gw-def34"][0]
    assert crash["count"] == 2 and crash["classification"]["priority"] == "P1"  # crash loop on tier 1
    error = [a for a in listed["alerts"] if a["alert_name"] == "ErrorRateHigh"][0]
    assert error["classification"]["priority"] == "P1"  # payment-gateway is tier 1
    groups = client.get("/aiops/alerts/groups").json
    assert groups["group_count"] == 2
    big = [g for g in groups["groups"] if g["alert_count"] == 4][0]
    assert big["priority"] == "P1" and all(d["reason"] for d in big["decisions"])
    detail = client.get(f"/aiops/alerts/groups/{big['id']}").json
    assert "Related to deploy v2.3.1 of payment-gateway, 22 minutes ago (20 minutes before the first alert)" \
        in detail["brief"]
    assert detail["runbooks"][0]["path"] == "oomkilled-crashloop.md" and len(detail["alerts"]) == 4
    assert detail["brief_facts"]["notifications_received"] == 5
    stats = client.get("/aiops/alerts/stats").json
    assert (stats["alerts_received"], stats["alerts_after_dedup"], stats["groups"]) == (6, 5, 2)
    assert stats["noise_reduction_ratio"] == round(1 - 2 / 6, 4) and stats["time_to_triage_ms"]["p95"] >= 0
    assert client.get("/aiops/alerts/groups/GRP-999").status_code == 404


def test_rejected_payloads_store_nothing(app):
    client = app.test_client()
    bad = client.post("/aiops/alerts", json=[PRODUCT_ALERTS[0], {**PRODUCT_ALERTS[1], "labels": {"a": [1]}}])
    assert bad.status_code == 400 and bad.json["field"] == "[1].labels.a" and "strings" in bad.json["detail"]
    assert client.get("/aiops/alerts/stats").json["alerts_received"] == 0
    am = client.post("/aiops/alerts/alertmanager", json={"version": "4", "alerts": [{"status": "firing"}]})
    assert am.status_code == 400 and am.json["error"] == "invalid alerts[0].labels.alertname"
    assert client.post("/aiops/alerts", data="nope", content_type="text/plain").status_code == 400
    assert client.get("/aiops/alerts?status=weird").status_code == 400
    assert client.put("/aiops/alerts").status_code == 405
    assert client.post("/aiops/deployments", json={"service": "x"}).json["error"] == "invalid version"
    assert client.get("/aiops/alerts?status=all").json["alert_count"] == 0
    assert client.get("/aiops/deployments").json["deploy_count"] == 0


def test_api_key_guards_mutations(svc_app):
    app = svc_app(AIOPS_API_KEY="s3cret")
    client = app.test_client()
    for path in ("/aiops/alerts", "/aiops/alerts/alertmanager", "/aiops/deployments", "/aiops/changes/risk",
                 "/aiops/capacity"):
        assert client.post(path, json={}).status_code == 401, path
    ok = client.post("/aiops/alerts", json=PRODUCT_ALERTS[0], headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 202
    assert client.get("/aiops/alerts").status_code == 200  # reads need no key


def test_engine_incidents_enter_the_pipeline_and_weigh_on_change_risk(app):
    client = app.test_client()
    drive(app, False, 40)
    client.post("/aiops/analyze")
    drive(app, True, 20)
    incident = client.post("/aiops/analyze").json["incidents"][0]
    listed = client.get("/aiops/alerts").json["alerts"]
    assert listed and {a["source"] for a in listed} == {"aiops"}
    assert listed[0]["labels"]["incident_id"] == incident["id"]
    [group] = client.get("/aiops/alerts/groups").json["groups"]
    assert group["incident_id"] == incident["id"]
    # a generic alert on the same service joins the same group
    client.post("/aiops/alerts", json={"alert_name": "HighErrorRate", "service": "svc", "severity": "critical",
                                       "message": "5xx on /pay"})
    assert client.get("/aiops/alerts/groups").json["group_count"] == 1
    scored = client.post("/aiops/changes/risk", json={
        "service": "svc", "change_type": "deployment", "description": "fix", "files_changed": 2, "tests_added": 1,
        "rollback_plan": "kubectl rollout undo", "deploy_time": "Wednesday 07:00 UTC"}).json
    factors = {f["factor"]: f for f in scored["risk_factors"]}
    assert incident["id"] in factors["open_incidents"]["detail"] and scored["recommendation"] == "DELAY"
    assert any("baseline" in item for item in scored["monitoring_checklist"])
    assert client.post("/aiops/changes/risk", json={"service": "svc", "files_changed": -1}).status_code == 400
    # the engine resolving its incident resolves its alerts
    client.post(f"/aiops/incidents/{incident['id']}/resolve")
    state = AIOps.feature(app, "triage")
    state.on_incident("resolved", client.get(f"/aiops/incidents/{incident['id']}").json)
    assert client.get("/aiops/alerts?status=resolved").json["alert_count"] >= 1


def test_slo_and_other_sources_use_the_intake_function(app):
    result = ingest(app, parse_raw_alerts({"alert_name": "SLOBurnRateHigh", "service": "checkout",
                                           "severity": "warning", "labels": {"burn_rate": "16"}}, time.time(),
                                          source="slo"))
    assert result["created"] == 1
    alert = app.test_client().get("/aiops/alerts").json["alerts"][0]
    assert alert["source"] == "slo" and alert["classification"]["priority"] == "P1"


def test_capacity_post_and_observed(app):
    client = app.test_client()
    posted = client.post("/aiops/capacity", json={"services": [PAYMENT]})
    assert posted.status_code == 200
    assert any("scale from 5 to 7 pods" in r["action"] for r in posted.json["services"][0]["recommendations"])
    assert client.post("/aiops/capacity", json={"services": []}).status_code == 400
    drive(app, False, 30)
    from telemetry import Telemetry
    Telemetry.flush(app)
    observed = client.get("/aiops/capacity").json
    [svc] = observed["services"]
    assert svc["service"] == "svc" and svc["requests"] == 60 and svc["current_rps"] > 0
    assert client.get("/aiops/capacity?days=99").status_code == 400


def test_every_endpoint_is_routed(app):
    client = app.test_client()
    for endpoint in ENDPOINTS:
        method, path = endpoint.split()[:2]
        path = path.split("?")[0].replace("<id>", "GRP-1")
        response = client.open(path, method=method, json={} if method == "POST" else None)
        assert response.status_code != 404 or "GRP-1" in path, endpoint
        assert "no such endpoint" not in response.get_data(as_text=True)


# -- a real Alertmanager -----------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# .ci/run installs the package and sets AIOPS_TEST_REQUIRE_PROMETHEUS=1: there a missing binary fails, not skips
@pytest.mark.skipif(not os.path.exists(ALERTMANAGER) and os.environ.get("AIOPS_TEST_REQUIRE_PROMETHEUS") != "1",
                    reason="apt-get install prometheus-alertmanager")
def test_real_alertmanager_webhook(app, live_server, tmp_path):
    server = live_server(app)
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: aiops
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: aiops
    webhook_configs:
      - url: {server.url}/aiops/alerts/alertmanager
        send_resolved: true
""")
    (tmp_path / "am-data").mkdir()
    proc = subprocess.Popen([ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "alertmanager did not become ready"
            time.sleep(0.1)

        def post(alerts):
            r = requests.post(f"{base}/api/v2/alerts", json=alerts, timeout=5)
            assert r.status_code == 200, r.text

        started = now_iso(-30)
        storm = [
            {"labels": {"alertname": "ErrorRateHigh", "service": "payment-gateway", "namespace": "payments",
                        "severity": "critical"}, "annotations": {"summary": "Error rate 4.7% exceeds 1%"},
             "startsAt": started, "generatorURL": "http://prometheus/graph"},
            {"labels": {"alertname": "PodCrashLoopBackOff", "service": "payment-gateway", "namespace": "payments",
                        "pod": "payment-gw-def34", "severity": "critical"},
             "annotations": {"summary": "Pod payment-gw-def34 in CrashLoopBackOff"}, "startsAt": started},
            {"labels": {"alertname": "PodCrashLoopBackOff", "service": "payment-gateway", "namespace": "payments",
                        "pod": "payment-gw-ghi56", "severity": "critical"},
             "annotations": {"summary": "Pod payment-gw-ghi56 in CrashLoopBackOff"}, "startsAt": started},
            {"labels": {"alertname": "CertExpiryWarning", "service": "auth-service", "namespace": "auth",
                        "severity": "warning"}, "annotations": {"summary": "TLS certificate expires in 14 days"},
             "startsAt": started},
        ]
        post(storm)
        post(storm)  # the same alerts again: Alertmanager and our dedup keep one of each
        client = app.test_client()

        def wait_for(predicate, what):
            def stats_once_true():
                stats = client.get("/aiops/alerts/stats").json
                return stats if predicate(stats) else None

            stats = wait_until(stats_once_true, timeout_s=20, interval_s=0.2)
            assert stats, f"{what}: {client.get('/aiops/alerts/stats').json}"
            return stats

        stats = wait_for(lambda s: s["alerts_after_dedup"] == 4, "4 distinct alerts")
        assert stats["received_by_source"] == {"alertmanager": stats["alerts_received"]}
        alerts = client.get("/aiops/alerts").json["alerts"]
        assert {a["fingerprint"] for a in alerts} and all(len(a["fingerprint"]) == 16 for a in alerts)
        assert {a["generator_url"] for a in alerts if a["alert_name"] == "ErrorRateHigh"} == {"http://prometheus/graph"}
        groups = client.get("/aiops/alerts/groups").json["groups"]
        by_size = sorted(groups, key=lambda g: g["alert_count"])
        assert [g["alert_count"] for g in by_size] == [1, 3]
        assert by_size[0]["services"] == ["auth-service"] and by_size[1]["priority"] == "P1"
        # resolve the crash loops: Alertmanager sends them as resolved and we close them
        for alert in storm[1:3]:
            alert["endsAt"] = now_iso(-1)
        post(storm[1:3])
        wait_for(lambda s: client.get("/aiops/alerts?status=resolved").json["alert_count"] == 2, "2 resolved")
        assert client.get("/aiops/alerts").json["alert_count"] == 2
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        shutil.rmtree(tmp_path / "am-data", ignore_errors=True)


@pytest.mark.parametrize("config, says", [
    ({"AIOPS_ALERT_CLASSIFIER": "magic"}, "valid: rules, severity"),
    ({"AIOPS_SERVICE_TIERS": "payment=7"}, "AIOPS_SERVICE_TIERS"),
    ({"AIOPS_CHANGE_PEAK_HOURS": "17-9"}, "START-END"),
    ({"AIOPS_ALERT_DEDUP_WINDOW_S": 0}, "AIOPS_ALERT_DEDUP_WINDOW_S"),
])
def test_bad_triage_config_fails_at_startup(svc_app, config, says):
    with pytest.raises(ValueError, match=says):
        svc_app(**config)


def test_bad_routing_file_fails_at_startup(tmp_path, svc_app):
    bad = tmp_path / "routes.json"
    bad.write_text(json.dumps({"routes": [{"match": {}, "team": "x"}]}))
    with pytest.raises(ValueError, match="routes\\[0\\]"):
        svc_app(AIOPS_ALERT_ROUTING_FILE=str(bad))


def test_refine_hook_runs_after_the_transaction_and_never_lowers_p1(app):
    state = AIOps.feature(app, "triage")
    calls = []

    def refine(facts):
        calls.append(facts["alert_name"])
        # the store is free while a refinement runs (an LLM call must not hold the write lock)
        with state.store.transaction():
            pass
        if facts["alert_name"] == "Broken":
            raise TimeoutError("model did not answer")
        return {"priority": "P4" if facts["rules"]["priority"] == "P1" else "P2", "category": "degradation",
                "users_affected": "many", "confidence": 0.9, "reason": "checkout is revenue-critical"}
    state.refine = refine
    client = app.test_client()
    posted = client.post("/aiops/alerts", json=[
        {"alert_name": "CustomCheck", "service": "checkout", "severity": "warning"},
        {"alert_name": "ErrorRateHigh", "service": "payment-gateway", "severity": "critical"},
        {"alert_name": "Broken", "service": "search", "severity": "info"}])
    assert posted.status_code == 202 and sorted(calls) == ["Broken", "CustomCheck", "ErrorRateHigh"]
    alerts = {a["alert_name"]: a["classification"] for a in client.get("/aiops/alerts").json["alerts"]}
    assert alerts["CustomCheck"]["priority"] == "P2" and alerts["CustomCheck"]["source"] == "refined"
    assert alerts["ErrorRateHigh"]["priority"] == "P1"
    assert any("never lowered" in r for r in alerts["ErrorRateHigh"]["reasons"])
    assert alerts["Broken"]["source"] == "rules" and "TimeoutError" in alerts["Broken"]["reasons"][-1]
    groups = {g["services"][0]: g for g in client.get("/aiops/alerts/groups").json["groups"]}
    assert groups["checkout"]["priority"] == "P2"
    client.post("/aiops/alerts", json={"alert_name": "CustomCheck", "service": "checkout", "severity": "warning"})
    assert len(calls) == 3  # a duplicate is not refined again


def test_an_alert_never_resolved_expires_after_a_pass_and_its_group_resolves(app):
    client = app.test_client()
    old = {"alert_name": "DiskFilling", "service": "db", "severity": "warning", "message": "disk 91% full",
           "timestamp": now_iso(-2 * 86400)}  # its sender never said it resolved
    new = {"alert_name": "HighLatency", "service": "search", "severity": "warning", "message": "p95 900 ms",
           "timestamp": now_iso(-60)}
    assert client.post("/aiops/alerts", json=[old, new]).status_code == 202
    assert len(client.get("/aiops/alerts/groups?status=open").get_json()["groups"]) == 2
    assert client.post("/aiops/analyze").status_code == 200  # the pass hook expires what is stale
    expired = client.get("/aiops/alerts?status=expired").get_json()["alerts"]
    assert [a["alert_name"] for a in expired] == ["DiskFilling"]
    still_open = client.get("/aiops/alerts/groups?status=open").get_json()["groups"]
    assert [g["services"] for g in still_open] == [["search"]]
    resolved = client.get("/aiops/alerts/groups?status=resolved").get_json()["groups"]
    assert [g["services"] for g in resolved] == [["db"]]
