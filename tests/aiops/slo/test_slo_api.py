"""The SLO API and /metrics on real apps: shapes, validation, API key, the
release gate's audit trail, webhooks on a loopback receiver, a real
Prometheus scraping a live server, promtool, and gunicorn with two workers."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from aiops import AIOps
from telemetry import Telemetry
from telemetry.store import connect
from telemetry.timefmt import parse_time
from tests.aiops.helpers import Receiver, call, write_spans

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
#: .ci/run sets it after installing the Debian package: there a missing binary fails instead of skipping.
REQUIRE_PROMETHEUS = os.environ.get("AIOPS_TEST_REQUIRE_PROMETHEUS") == "1"


def skip_without(binary: str | None, name: str) -> None:
    if binary is None:
        if REQUIRE_PROMETHEUS:
            pytest.fail(f"{name} is missing but AIOPS_TEST_REQUIRE_PROMETHEUS=1 (apt-get install -y prometheus)")
        pytest.skip(f"{name} not installed (Debian package prometheus); .ci/run installs it")


@pytest.fixture
def app(orders_app):
    return orders_app()


def sample(text, name, **labels):
    """The value of the sample ``name`` with exactly ``labels`` in Prometheus text, or None."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def error_of(response):
    assert response.is_json, response.data
    body = response.json
    assert set(body) >= {"error", "detail"}
    return body


# -- services and SLO CRUD --------------------------------------------------------------


def test_services_crud_and_errors(app):
    c = app.test_client()
    created = call(c, "POST", "/aiops/services", json={"name": "checkout", "tier": 1, "owner": "payments",
                                                        "description": "takes money"})
    assert created.status_code == 201 and created.json["tier_name"] == "critical"
    assert call(c, "POST", "/aiops/services", json={"name": "checkout"}).status_code == 409
    bad = call(c, "POST", "/aiops/services", json={"name": "x", "tier": 7})
    assert bad.status_code == 400 and error_of(bad)["field"] == "tier" and "1 (critical)" in bad.json["detail"]
    assert error_of(call(c, "POST", "/aiops/services", data="nope"))["error"] == "invalid JSON body"
    listed = call(c, "GET", "/aiops/services").json["services"]
    assert [(s["name"], s["owner"], s["slo_count"]) for s in listed] == [("checkout", "payments", 0)]
    updated = call(c, "PUT", "/aiops/services/checkout", json={"owner": "team-b"})
    assert updated.json["owner"] == "team-b" and updated.json["tier"] == 1
    assert updated.json["description"] == "takes money"
    assert call(c, "GET", "/aiops/services/checkout").json["owner"] == "team-b"
    assert call(c, "PUT", "/aiops/services/nope", json={"owner": "a"}).status_code == 404
    not_allowed = call(c, "PATCH", "/aiops/services/checkout")
    assert not_allowed.status_code == 405 and "allowed: DELETE, GET, PUT" in error_of(not_allowed)["detail"]
    assert call(c, "DELETE", "/aiops/services/checkout").json == {"deleted": "checkout", "slos_deleted": 0}
    assert call(c, "GET", "/aiops/services/checkout").status_code == 404


def test_slo_targets_crud_validation_and_nothing_half_stored(app):
    c = app.test_client()
    bad = call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "latency", "target": 0.99})
    assert bad.status_code == 400 and error_of(bad)["field"] == "threshold_ms"
    assert call(c, "GET", "/aiops/services").json["services"] == []  # the rejected SLO created nothing
    mismatch = call(c, "POST", "/aiops/slo/shop/targets",
                    json={"service": "other", "indicator": "availability", "target": 0.99})
    assert error_of(mismatch)["field"] == "service"
    made = call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.999})
    assert made.status_code == 201 and made.json["timeWindow"] == "30d" and made.json["allowed_bad_ratio"] == 0.001
    slo_id = made.json["id"]
    assert call(c, "POST", "/aiops/slo/shop/targets",
                json={"indicator": "availability", "target": 0.99}).status_code == 409  # same default name
    # the SLO's service was created with defaults
    assert call(c, "GET", "/aiops/services/shop").json["tier"] == 3
    changed = call(c, "PUT", f"/aiops/slo/targets/{slo_id}", json={"target": 0.995, "timeWindow": "7d"})
    assert changed.json["target"] == 0.995 and changed.json["window_s"] == 7 * 86400
    assert error_of(call(c, "PUT", f"/aiops/slo/targets/{slo_id}", json={"target": 2}))["field"] == "target"
    assert call(c, "GET", "/aiops/slo/shop/targets").json["targets"][0]["target"] == 0.995
    too_long = call(c, "PUT", f"/aiops/slo/targets/{slo_id}", json={"timeWindow": "60d"})
    assert error_of(too_long)["field"] == "timeWindow" and "AIOPS_SLO_RETENTION_DAYS" in too_long.json["detail"]
    assert call(c, "PUT", "/aiops/slo/targets/999", json={"target": 0.9}).status_code == 404
    assert call(c, "PUT", "/aiops/slo/targets/abc", json={"target": 0.9}).status_code == 400
    status = call(c, "GET", "/aiops/slo/shop").json
    assert status["slo_count"] == 1 and status["slos"][0]["error_budget"] is None and "compute" in status["note"]
    assert call(c, "DELETE", f"/aiops/slo/targets/{slo_id}").json == {"deleted": slo_id}
    assert call(c, "GET", "/aiops/slo/shop/targets").json["targets"] == []


def test_api_key_guards_every_change(orders_app):
    app = orders_app(AIOPS_API_KEY="s3cret")
    c = app.test_client()
    for method, path in (("POST", "/aiops/services"), ("POST", "/aiops/slo/shop/targets"),
                         ("POST", "/aiops/burn/compute"), ("POST", "/aiops/release/shop/override"),
                         ("PATCH", "/aiops/slo-alerts/SLO-1-1/acknowledge"), ("DELETE", "/aiops/services/shop")):
        denied = call(c, method, path, json={})
        assert denied.status_code == 401, path
    ok = call(c, "POST", "/aiops/services", json={"name": "shop"}, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 201
    assert call(c, "GET", "/aiops/services").status_code == 200  # reads need no key


# -- burn, alerts, webhooks ------------------------------------------------------------------


def test_burn_compute_pages_once_through_the_webhook_and_acknowledge(tmp_path, live_server, orders_app):
    receiver = Receiver(live_server)
    app = orders_app(AIOPS_WEBHOOK_URLS=[receiver.url], AIOPS_WEBHOOK_BACKOFF_S=0.01)
    c = app.test_client()
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.999})
    now = time.time()
    # 6 minutes of a full outage of /orders, 50 requests a minute (stated: 5m window 250/250 bad, 1h 300/300)
    for m in range(6):
        write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", now - m * 60, 50, bad=50)
    first = call(c, "POST", "/aiops/burn/compute").json
    snap = first["snapshots"][0]
    assert snap["window_requests"]["1h"] == 300 and snap["window_bad_requests"]["1h"] == 300
    assert snap["burn_rate_1h"] == pytest.approx(1000.0) and snap["risk_level"] == "FREEZE"
    assert [e["event"] for e in first["alert_events"]] == ["opened"]
    call(c, "POST", "/aiops/burn/compute")
    bodies = receiver.wait_for(1)
    time.sleep(0.3)
    assert len(receiver.bodies) == 1  # the second compute paged nobody
    msg = bodies[0]
    assert msg["event"] == "opened" and msg["severity"] == "page" and "shop-availability" in msg["text"]
    alerts = call(c, "GET", "/aiops/slo-alerts").json
    assert alerts["alert_count"] == 1 and alerts["alerts"][0]["status"] == "firing"
    assert call(c, "GET", "/aiops/slo-alerts/shop").json["alert_count"] == 1
    assert call(c, "GET", "/aiops/slo-alerts/other").json["alert_count"] == 0
    alert_id = alerts["alerts"][0]["id"]
    acked = call(c, "PATCH", f"/aiops/slo-alerts/{alert_id}/acknowledge", json={"who": "ana"})
    assert acked.json["status"] == "acknowledged" and acked.json["acknowledged_by"] == "ana"
    assert receiver.wait_for(2)[1]["event"] == "acknowledged"
    again = call(c, "PATCH", f"/aiops/slo-alerts/{alert_id}/acknowledge")
    assert again.status_code == 409 and again.json["alert_status"] == "acknowledged"
    assert call(c, "PATCH", "/aiops/slo-alerts/SLO-0-0/acknowledge").status_code == 404
    loud = call(c, "GET", "/aiops/slo-alerts?status=loud")
    assert loud.status_code == 400 and error_of(loud)["detail"].startswith("status must be")
    assert loud.json["error"] == "unknown status 'loud'" and loud.json["field"] == "status"
    burn = call(c, "GET", "/aiops/burn").json["services"][0]
    assert burn["service_name"] == "shop" and burn["risk_level"] == "FREEZE"
    assert burn["slos"][0]["open_alert"] == alert_id
    history = call(c, "GET", "/aiops/burn/shop").json
    assert history["snapshot_count"] == 1  # two computes within AIOPS_SLO_HISTORY_INTERVAL_S keep one


def test_low_traffic_alert_is_suppressed_and_says_why(app, tmp_path):
    c = app.test_client()
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.999})
    write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", time.time(), 4, bad=1)
    result = call(c, "POST", "/aiops/burn/compute").json
    assert result["alert_events"] == []
    alerts = call(c, "GET", "/aiops/slo-alerts").json["alerts"]
    assert len(alerts) == 1 and alerts[0]["status"] == "suppressed"
    assert alerts[0]["reason"].startswith("low traffic: 1 bad of 4 requests in 1h")


def test_analysis_pass_computes_burn(app):
    c = app.test_client()
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.99,
                                                     "route": "/orders/<int:order_id>"})
    for i in range(20):
        call(c, "GET", f"/orders/{i if i % 4 else 500 + i}")
    call(c, "POST", "/aiops/analyze")  # the pass's hook rolls up and snapshots
    snap = call(c, "GET", "/aiops/burn/shop").json["current"]
    assert snap["slos"][0]["window_requests"]["5m"] == 20
    assert snap["slos"][0]["window_bad_requests"]["5m"] == 5
    assert snap["burn_rate_5m"] == pytest.approx(5 / 20 / 0.01)


# -- forecast, release gate, audit --------------------------------------------------------------


def test_release_gate_override_and_audit_trail(tmp_path, orders_app):
    app = orders_app(AIOPS_API_KEY="k")
    c = app.test_client()
    key = {"X-API-Key": "k"}
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.999}, headers=key)
    write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", time.time(), 200, bad=200)
    call(c, "POST", "/aiops/burn/compute", headers=key)
    gate = call(c, "GET", "/aiops/release/shop").json
    assert gate["decision"] == "blocked" and gate["risk_level"] == "FREEZE"
    assert any(b.startswith("SLO alert") for b in gate["blockers"])
    again = call(c, "GET", "/aiops/release/shop").json  # nothing changed: the first entry stands
    assert again["audit_id"] == gate["audit_id"] and again["audited"].startswith("unchanged")
    assert call(c, "GET", "/aiops/release/nope").status_code == 404

    good = {"reason": "hotfix that stops the outage", "who": "ana", "expires_in_hours": 2}
    assert call(c, "POST", "/aiops/release/shop/override", json=good).status_code == 401
    rejections = [({**good, "reason": "because"}, "reason"), ({k: v for k, v in good.items() if k != "who"}, "who"),
                  ({**good, "expires_in_hours": 500}, "expires_at"), ({**good, "expires_in_hours": -1}, "expires_at"),
                  ({"reason": good["reason"], "who": "ana"}, "expires_at"),
                  ({**{k: v for k, v in good.items() if k != "expires_in_hours"}, "expires_at": "tomorrow"},
                   "expires_at"),
                  ({**good, "force": True}, "force")]
    for body, field in rejections:
        response = call(c, "POST", "/aiops/release/shop/override", json=body, headers=key)
        assert response.status_code == 400 and error_of(response)["field"] == field, (body, response.json)
    trail = call(c, "GET", "/aiops/release/shop/audit").json["entries"]
    assert [e["kind"] for e in trail] == ["decision"]  # rejected overrides stored nothing
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    made = call(c, "POST", "/aiops/release/shop/override", headers=key,
                json={"reason": "hotfix that stops the outage", "who": "ana", "expires_at": expires})
    assert made.status_code == 201 and made.json["decision_before"] == "blocked"
    assert made.json["release"]["decision"] == "approved" and made.json["release"]["overridden"] is True
    gate = call(c, "GET", "/aiops/release/shop").json
    assert gate["decision"] == "approved" and gate["override"]["who"] == "ana" and gate["blockers"]
    trail = call(c, "GET", "/aiops/release/shop/audit").json["entries"]
    assert [e["kind"] for e in trail] == ["decision", "override", "decision"]
    assert [e["decision"] for e in trail] == ["approved", "approved", "blocked"]
    override = trail[1]["data"]  # newest first: the override's own decision (the GET after it changed
    # nothing), the override, the first GET
    assert override["reason"] == "hotfix that stops the outage"
    assert parse_time(override["expires_at"]) == parse_time(expires)  # shown in the one time format


def test_forecast_endpoint_from_burn_history(app, tmp_path):
    c = app.test_client()
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.99})
    engine = AIOps.feature(app, "slo")
    now = time.time()
    # 12 hourly snapshots; hour h adds 1,000 requests with h bad. After hour h: (h + 1) x 1,000 requests,
    # h (h + 1) / 2 bad -> bad ratio h / 2,000 -> consumed h / 20 of the 1 % budget -> remaining 1 - h / 20:
    # a line falling 0.05 an hour, at 0.45 after hour 11 -> exhausted in 0.45 / 0.05 = 9 hours.
    for h in range(12):
        write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", now - (11 - h) * 3600, 1000, bad=h)
        engine.compute(now - (11 - h) * 3600 + 1)
    fc = call(c, "GET", "/aiops/forecast/shop").json
    assert fc["data_points_used"] == 12 and fc["burn_rate_trend"] == "increasing"  # 5m burn h / 10
    assert fc["budget_remaining_ratio"] == pytest.approx(0.45)
    assert fc["budget_slope_per_hour"] == pytest.approx(-0.05)
    assert fc["time_to_exhaustion_hours"] == pytest.approx(9.0, abs=0.05)
    assert fc["confidence_level"] == "medium"  # R^2 = 1 but 12 points (high needs 30)
    assert "9.0 hours" in fc["forecast_message"]
    assert call(c, "GET", "/aiops/forecast/nobody").status_code == 404


def test_summaries(app, tmp_path):
    c = app.test_client()
    call(c, "POST", "/aiops/services", json={"name": "shop", "tier": 1, "owner": "payments"})
    call(c, "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.999})
    write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", time.time(), 1000, bad=3)
    call(c, "POST", "/aiops/burn/compute")
    overview = call(c, "GET", "/aiops/summary").json
    assert overview["service_count"] == 1 and overview["slo_count"] == 1
    assert overview["services"][0]["risk_level"] == overview["overall_risk"] == "FREEZE"  # 3 / 1000 = 3x
    story = call(c, "GET", "/aiops/summary/shop").json
    assert story["source"] == "template" and story["facts"]["slos"][0]["sli"] == pytest.approx(0.997)
    assert "99.7000%" in story["narrative"] and "owned by payments" in story["narrative"]
    grid = call(c, "GET", "/aiops/summary/heatmap?hours=3&bucket_minutes=30").json
    assert len(grid["buckets"]) == 6 and grid["services"][0]["risk"][-1] == "FREEZE"
    assert call(c, "GET", "/aiops/summary/heatmap?hours=0").status_code == 400
    crowded = call(c, "GET", "/aiops/summary/heatmap?hours=840&bucket_minutes=1")
    assert crowded.status_code == 400 and crowded.json["error"] == "too many buckets"
    assert crowded.json["field"] == "bucket_minutes" and "at most 2000" in crowded.json["detail"]
    assert call(c, "GET", "/aiops/summary/nobody").status_code == 404


def test_slo_file_at_startup(tmp_path, orders_app):
    path = tmp_path / "slos.yaml"
    path.write_text("services:\n  - {name: shop, tier: 2, owner: ops}\n"
                    "slos:\n  - {name: shop-avail, service: shop, indicator: availability, target: 0.995, "
                    "timeWindow: 7d, budgetingMethod: Occurrences}\n")
    app = orders_app(AIOPS_SLO_FILE=str(path))
    targets = call(app.test_client(), "GET", "/aiops/slo/shop/targets").json["targets"]
    assert [(t["name"], t["source"], t["timeWindow"]) for t in targets] == [("shop-avail", "file", "7d")]
    AIOps.shutdown(app)
    path.write_text("slos:\n  - {service: shop, indicator: availability, target: 0.995, timeWindow: 7 days}\n")
    with pytest.raises(ValueError, match=r"slos\[0\]\.timeWindow"):
        orders_app(name="again", AIOPS_SLO_FILE=str(path))
    path.write_text("slos:\n  - {service: shop, indicator: availability, target: 0.995, timeWindow: 60d}\n")
    with pytest.raises(ValueError, match=r"slos\[0\]\.timeWindow: 60 days is longer than the 35 days"):
        orders_app(name="third", AIOPS_SLO_FILE=str(path))


# -- /metrics --------------------------------------------------------------------------------


def _drive(base_url, n_ok=30, n_bad=5):
    for i in range(n_ok):
        requests.get(f"{base_url}/orders/{i}", timeout=5)
    for i in range(n_bad):
        requests.get(f"{base_url}/orders/{500 + i}", timeout=5)
    requests.get(f"{base_url}/slow", timeout=5)


def test_metrics_text_counts_requests_by_route_and_passes_promtool(tmp_path, live_server, orders_app):
    app = orders_app()
    server = live_server(app)
    _drive(server.url)
    time.sleep(0.1)  # the live server ends each span after the client has the answer
    Telemetry.flush(app)
    call(app.test_client(), "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.9})
    call(app.test_client(), "POST", "/aiops/burn/compute")
    response = requests.get(f"{server.url}/metrics", timeout=10)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.text
    orders = {"service_name": "shop", "http_route": "/orders/<int:order_id>", "http_request_method": "GET"}
    assert sample(text, "http_server_requests_total", **orders, http_response_status_code="200") == 30
    assert sample(text, "http_server_requests_total", **orders, http_response_status_code="503") == 5
    assert sample(text, "http_server_request_duration_seconds_count", **orders, http_response_status_code="200") == 30
    slow = {"service_name": "shop", "http_route": "/slow", "http_request_method": "GET",
            "http_response_status_code": "200"}
    assert sample(text, "http_server_request_duration_seconds_bucket", **slow, le="0.025") == 0  # it sleeps 30 ms
    assert sample(text, "http_server_request_duration_seconds_bucket", **slow, le="+Inf") == 1
    assert sample(text, "http_server_request_duration_seconds_sum", **slow) >= 0.03
    assert "/orders/3" not in text  # route templates only, never raw paths
    assert 'aiops_slo_burn_rate{service_name="shop",slo="shop-availability",window="5m"}' in text
    assert 'aiops_slo_error_budget_remaining_ratio{service_name="shop",slo="shop-availability"}' in text
    assert 'aiops_incidents_open{severity="critical"} 0.0' in text
    assert 'telemetry_writer_queue_depth{service_name="shop"}' in text
    assert 'telemetry_spans_dropped_total{service_name="shop"} 0.0' in text
    Telemetry.flush(app)
    conn = connect(str(tmp_path / "t.db"))
    assert conn.execute("SELECT count(*) FROM spans WHERE path = '/metrics'").fetchone()[0] == 0  # never recorded
    conn.close()
    skip_without(PROMTOOL, "promtool")
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=response.content, capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_two_apps_sharing_a_store_report_each_others_requests(orders_app):
    """Two workers (here: two apps in one process, each with its own
    /metrics) write one SQLite file: either one's scrape counts every request."""
    a = orders_app(name="shop")
    b = orders_app(name="shop2")
    b.config["TELEMETRY_SERVICE_NAME"] = "shop2"
    for i in range(7):
        call(a.test_client(), "GET", f"/orders/{i}")
    for i in range(4):
        call(b.test_client(), "GET", f"/orders/{i}")
    Telemetry.flush(a)
    Telemetry.flush(b)
    for app in (a, b):
        text = call(app.test_client(), "GET", "/metrics").get_data(as_text=True)
        for service, n in (("shop", 7), ("shop2", 4)):
            assert sample(text, "http_server_requests_total", service_name=service, http_route="/orders/<int:order_id>",
                          http_request_method="GET", http_response_status_code="200") == n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_two_workers_every_scrape_sees_every_request(tmp_path):
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("gunicorn not installed (requirements-dev.txt)")
    port = _free_port()
    env = dict(os.environ, TELEMETRY_DB_PATH=str(tmp_path / "g.db"), TELEMETRY_SERVICE_NAME="g",
               AIOPS_ANALYSIS_INTERVAL_S="1", TELEMETRY_FLUSH_INTERVAL_MS="20", PYTHONPATH=str(ROOT),
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path))  # set by many deployments: must change nothing here
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                                 "tests.aiops.slo._slo_wsgi:app"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        pids, deadline = set(), time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:  # until both workers have answered
            try:
                with requests.Session() as s:  # a fresh connection each time
                    pids.add(s.get(f"{base}/_pid", timeout=2).text)
            except requests.RequestException:
                time.sleep(0.1)
        assert len(pids) == 2, log_path.read_text()
        for i in range(60):
            requests.get(f"{base}/items/{i}", timeout=5, headers={"Connection": "close"})
        counts, deadline = [], time.monotonic() + 20
        labels = {"service_name": "g", "http_route": "/items/<int:item_id>", "http_request_method": "GET",
                  "http_response_status_code": "200"}
        while time.monotonic() < deadline:
            text = requests.get(f"{base}/metrics", timeout=10, headers={"Connection": "close"}).text
            counts.append(sample(text, "http_server_requests_total", **labels) or 0.0)
            if counts[-4:] == [60.0] * 4:
                break
            time.sleep(0.2)
        assert counts[-4:] == [60.0] * 4, counts
        # both workers published their span-store counters into the store
        assert sample(text, "telemetry_spans_written_total", service_name="g") is not None, text
    finally:
        proc.terminate()
        proc.wait(15)


def test_real_prometheus_scrapes_and_answers_promql(tmp_path, live_server, orders_app):
    skip_without(PROMETHEUS, "prometheus")
    app = orders_app()
    server = live_server(app)
    _drive(server.url, n_ok=12, n_bad=3)
    time.sleep(0.1)
    Telemetry.flush(app)
    target = server.url.split("//", 1)[1]
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "flask-aiops", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [target]}]}]}))
    log_path = tmp_path / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    query = ('sum by (http_route, http_response_status_code) '
             '(http_server_request_duration_seconds_count{job="flask-aiops"})')
    try:
        result, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                body = requests.get(api, params={"query": query}, timeout=5).json()
                result = body["data"]["result"]
                if len(result) >= 3:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.5)
        got = {(r["metric"]["http_route"], r["metric"]["http_response_status_code"]): float(r["value"][1])
               for r in result}
        assert got == {("/orders/<int:order_id>", "200"): 12.0, ("/orders/<int:order_id>", "503"): 3.0,
                       ("/slow", "200"): 1.0}, (got, log_path.read_text()[-2000:])
        up = requests.get(api, params={"query": 'up{job="flask-aiops"}'}, timeout=5).json()["data"]["result"]
        assert up[0]["value"][1] == "1"
    finally:
        proc.terminate()
        proc.wait(15)


# -- python -m aiops slo ---------------------------------------------------------------------


def test_cli_slo_computes_and_prints(tmp_path, orders_app):
    app = orders_app()
    call(app.test_client(), "POST", "/aiops/slo/shop/targets", json={"indicator": "availability", "target": 0.99})
    AIOps.shutdown(app)
    write_spans(tmp_path / "t.db", "shop", "/orders/<int:order_id>", time.time(), 300, bad=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "TELEMETRY_"))}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "aiops", "slo", "--db", str(tmp_path / "t.db"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)

    before = cli()
    assert before.returncode == 0 and "--compute" in before.stdout
    out = cli("--compute", "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    snap = body["services"][0]
    # 300 requests, 6 bad, 1 % allowed: burn 2.0 on every window with traffic -> the ticket rule (1x) fires
    assert snap["service_name"] == "shop" and snap["burn_rate_5m"] == pytest.approx(2.0)
    assert snap["risk_level"] == "DANGER"
    assert [(a["rule"], a["status"]) for a in body["open_alerts"]] == [("ticket", "firing")]
    table = cli()
    assert "shop-availability" in table.stdout and "DANGER" in table.stdout and "98.0000%" in table.stdout
    missing = subprocess.run([sys.executable, "-m", "aiops", "slo", "--db", str(tmp_path / "nope.db")], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, env=env)
    assert missing.returncode == 2 and "no span store" in missing.stderr
