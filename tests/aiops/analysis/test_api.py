"""The /aiops/* API on a real app: shapes, lifecycle, errors, API key."""
import re

import pytest
from flask import Flask

from aiops import AIOps
from telemetry import Telemetry
from tests.aiops.helpers import drive, get


@pytest.fixture
def app(svc_app):
    return svc_app()


def open_incident(app):
    client = app.test_client()
    drive(app, False, 40)
    assert client.post("/aiops/analyze").status_code == 200  # learn
    drive(app, True, 20)
    result = client.post("/aiops/analyze").json
    assert [i["event"] for i in result["incidents"]] == ["opened"]
    return result["incidents"][0]


def test_incident_shape_matches_the_product_description(app):
    incident = open_incident(app)
    client = app.test_client()
    listed = client.get("/aiops/incidents")
    assert listed.status_code == 200 and listed.content_type == "application/json"
    assert listed.data.startswith(b"{\n  ")  # pretty-printed for curl users
    body = listed.json
    assert body["incident_count"] == 1
    got = body["active_incidents"][0]
    for key in ("id", "severity", "status", "title", "root_cause", "affected_endpoints", "anomalies",
                "trace_correlation", "first_detected"):
        assert key in got
    assert re.fullmatch(r"INC-\d+-1", got["id"])
    assert got["status"] == "active" and got["severity"] == "critical"
    assert got["root_cause"]["endpoint"] == "/pay" and got["root_cause"]["confidence"] == 1.0
    assert got["affected_endpoints"] == ["/pay"]
    anomaly = got["anomalies"][0]
    assert {"type", "endpoint", "severity", "baseline_ms", "current_ms", "deviation"} <= set(anomaly)
    assert anomaly["sample_errors"][0]["message"] == "card processor down"
    sample = got["trace_correlation"]["sample_traces"][0]
    assert {"trace_id", "root_endpoint", "root_status", "affected_chain"} <= set(sample)
    assert sample["root_status"] == 500
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", got["first_detected"])  # the one time format
    assert client.get(f"/aiops/incidents/{incident['id']}").json["id"] == incident["id"]


def test_next_pass_grows_the_incident_instead_of_duplicating(app):
    open_incident(app)
    drive(app, True, 10)
    result = app.test_client().post("/aiops/analyze").json
    assert [i["event"] for i in result["incidents"]] == ["updated"]
    assert app.test_client().get("/aiops/incidents").json["incident_count"] == 1


def test_acknowledge_then_resolve_and_status_filter(app):
    incident = open_incident(app)
    client = app.test_client()
    acked = client.post(f"/aiops/incidents/{incident['id']}/acknowledge", json={"note": "looking"})
    assert acked.status_code == 200 and acked.json["status"] == "acknowledged"
    assert acked.json["timeline"][-1]["detail"] == "looking"
    again = client.post(f"/aiops/incidents/{incident['id']}/acknowledge")
    assert again.status_code == 409 and "only an active incident" in again.json["detail"]
    assert client.post(f"/aiops/incidents/{incident['id']}/resolve").json["status"] == "resolved"
    assert client.get("/aiops/incidents").json["incident_count"] == 0
    assert client.get("/aiops/incidents?status=resolved").json["incident_count"] == 1
    assert client.get("/aiops/incidents?status=all").json["incident_count"] == 1
    bad = client.get("/aiops/incidents?status=closed")
    assert bad.status_code == 400 and "open, all, active, acknowledged, resolved" in bad.json["detail"]


def test_unknown_ids_and_paths_get_json_404(app):
    client = app.test_client()
    for path in ("/aiops/incidents/INC-0-0", "/aiops/traces/" + "a" * 32, "/aiops/nope"):
        response = client.get(path)
        assert response.status_code == 404 and response.json["error"]
    assert client.post("/aiops/incidents/INC-0-0/resolve").status_code == 404
    bad_trace = client.get("/aiops/traces/XYZ")
    assert bad_trace.status_code == 400 and "32 lowercase hex" in bad_trace.json["detail"]
    wrong_method = client.get("/aiops/analyze")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert client.get("/aiops/metrics?window_s=-3").status_code == 400


def test_api_key_guards_mutating_calls(svc_app):
    app = svc_app(AIOPS_API_KEY="s3cret")
    client = app.test_client()
    assert client.post("/aiops/analyze").status_code == 401
    assert client.post("/aiops/analyze", headers={"X-API-Key": "nope"}).json["error"] == "invalid API key"
    assert client.post("/aiops/analyze", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/aiops/incidents").status_code == 200  # reads need no key


def test_metrics_dependencies_and_traces(app):
    client = app.test_client()
    drive(app, False, 40)
    client.post("/aiops/analyze")
    metrics = client.get("/aiops/metrics").json
    pay = metrics["metrics"]["/pay"]
    assert pay["request_count"] == 40 and pay["error_rate"] == 0.0
    assert pay["status_distribution"] == {"200": 40}
    assert pay["baseline_ready"] and pay["baseline_latency_ms"] > 0
    assert pay["health"] == {"health_score": pytest.approx(pay["health"]["health_score"]), "status": "healthy"}
    assert {"avg_latency_ms", "p95_latency_ms"} <= set(pay)
    trace_id = get(client, "/pay").headers["X-Trace-Id"]
    Telemetry.flush(app)
    trace = client.get(f"/aiops/traces/{trace_id}").json
    assert trace["span_count"] == 1 and trace["roots"][0]["route"] == "/pay" and trace["roots"][0]["children"] == []
    deps = client.get("/aiops/dependencies").json
    assert {n["route"] for n in deps["nodes"]} >= {"/pay", "/ok"} and deps["edges"] == []
    status = client.get("/aiops/status").json
    assert status["passes"] == 1 and status["scheduler_running"] is False


def test_aiops_needs_a_span_store():
    app = Flask("bare")
    with pytest.raises(ValueError, match="initialise Telemetry\\(app\\) before AIOps\\(app\\)"):
        AIOps(app)


def test_bad_aiops_config_fails_at_startup(svc_app):
    with pytest.raises(ValueError, match="AIOPS_WINDOW_S must be a number > 0, got -1"):
        svc_app(AIOPS_WINDOW_S=-1)


def test_disabled_registers_nothing(svc_app):
    app = svc_app(AIOPS_ENABLED=False)
    assert app.test_client().get("/aiops/incidents").status_code == 404
