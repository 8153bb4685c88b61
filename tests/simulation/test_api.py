"""/api/v1/simulator/* on the demo app: shapes, errors, API key, runs in-process and against a live server."""
import dataclasses
import re
import time

import pytest
import requests

from aiops import AIOps
from simulation.scenarios import ChaosStep, TrafficPlan, get_scenario, register, unregister
from tests.chat_server import reply

BASE = "/api/v1/simulator"


DEMO = {"DEMO_LATENCY_SCALE": 0.2, "DEMO_SEED": 3}  # the demo shop with a little latency, seeded


@pytest.fixture
def app(demo_app):
    return demo_app(**DEMO)


def test_list_detail_and_filters(app):
    client = app.test_client()
    listed = client.get(f"{BASE}/scenarios").get_json()
    assert [s["id"] for s in listed][:5] == ["memory_leak_gradual", "cpu_spike_traffic_surge",
                                             "latency_spike_database", "pod_crash_loop", "dependency_failure_timeout"]
    first = listed[0]
    assert first["service"] == "payment-service" and first["severity"] == "critical"
    assert first["difficulty"] == "beginner" and first["tags"] == ["resource", "availability"]
    assert first["duration_seconds"] == 300.0 and first["metric_count"] == 4
    assert [s["id"] for s in client.get(f"{BASE}/scenarios?tag=dependency").get_json()] == [
        "dependency_failure_timeout"]
    bad = client.get(f"{BASE}/scenarios?severity=urgent")
    assert bad.status_code == 400 and "low, medium, high, critical" in bad.get_json()["detail"]
    detail = client.get(f"{BASE}/scenarios/latency_spike_database").get_json()
    assert detail["expected_outcome"]["action_types"] == ["add_index"]
    assert detail["context"]["recent_deployments"][0]["version"] == "migration-0042"
    assert {m["name"] for m in detail["metrics"]} == {"http_p95_latency_seconds", "db_query_duration_seconds",
                                                      "db_connections_active"}


def test_unknown_ids_are_json_404s(app):
    client = app.test_client()
    for path, words in ((f"{BASE}/scenarios/disk_full", "valid scenarios: memory_leak_gradual"),
                        (f"{BASE}/simulations/sim_00000000", "GET /api/v1/simulator/simulations"),
                        (f"{BASE}/simulations/sim_00000000/narrative", "GET /api/v1/simulator/simulations"),
                        (f"{BASE}/nope", "valid endpoints")):
        response = client.get(path)
        assert response.status_code == 404 and words in response.get_json()["detail"], path
    assert client.post(f"{BASE}/scenarios/disk_full/start", json={}).status_code == 404
    assert client.post(f"{BASE}/simulations/sim_00000000/stop").status_code == 404


@pytest.mark.parametrize("body,words", [
    ({"execution_mode": "turbo"}, "demo, background"), ({"auto_analyze": "yes"}, "true or false"),
    ({"seed": -1}, "seed must be"), ({"colour": "red"}, "valid fields: auto_analyze, execution_mode, seed"),
    ([1, 2], "JSON object"),
])
def test_start_rejects_bad_bodies(app, body, words):
    response = app.test_client().post(f"{BASE}/scenarios/memory_leak_gradual/start", json=body)
    assert response.status_code == 400 and words in response.get_json()["detail"]
    assert app.test_client().get(f"{BASE}/simulations").get_json() == []
    assert AIOps.feature(app, "metrics").store.metric_names() == []  # nothing injected


def test_start_in_demo_mode_runs_to_the_end_in_process(app):
    client = app.test_client()
    response = client.post(f"{BASE}/scenarios/memory_leak_gradual/start",
                           json={"auto_analyze": True, "execution_mode": "demo"})
    assert response.status_code == 200
    body = response.get_json()
    assert re.fullmatch(r"sim_[0-9a-f]{8}", body["simulation_id"])
    assert body["scenario_id"] == "memory_leak_gradual" and body["status"] == "completed"
    assert body["metrics_injected"] is True and body["points_injected"] == 4 * 421
    assert body["hypotheses_count"] >= 1 and body["actions_count"] >= 2
    assert body["started_at"].endswith("Z")
    incident = client.get(f"/aiops/incidents/{body['incident_id']}").get_json()
    assert {a["endpoint"] for a in incident["anomalies"]} >= {"memory_usage_bytes", "gc_collections"}
    full = client.get(f"{BASE}/simulations/{body['simulation_id']}").get_json()
    assert full["hypotheses"][0]["category"] == "memory_leak"
    assert [a["action_type"] for a in full["actions"]][:2] == ["restart", "rollback"]
    assert full["validation"]["passed"] is True
    assert [s["step"] for s in full["steps"]] == ["inject", "detect", "analyze", "validate"]
    assert full["what_if"][0]["time_to_recover_s"] == 90.0
    story = client.get(f"{BASE}/simulations/{body['simulation_id']}/narrative").get_json()
    assert story["source"] == "template" and body["incident_id"] in story["text"]
    stop = client.post(f"{BASE}/simulations/{body['simulation_id']}/stop").get_json()
    assert stop["stopped"] is False and "already completed" in stop["detail"]
    assert client.get(f"{BASE}/simulations").get_json()[0]["simulation_id"] == body["simulation_id"]
    assert client.get(f"{BASE}/scenarios/memory_leak_gradual/start").status_code == 405


def test_request_level_scenario_in_process_without_a_server_degrades_to_metrics(app):
    """Through the test client the app is not served: traffic is skipped, the metrics still tell the story."""
    client = app.test_client()
    body = client.post(f"{BASE}/scenarios/dependency_failure_timeout/start", json={}).get_json()
    full = client.get(f"{BASE}/simulations/{body['simulation_id']}").get_json()
    assert full["status"] == "completed"
    assert full["traffic"]["driven"] is False and "did not answer" in full["traffic"]["reason"]
    assert full["hypotheses"][0]["category"] == "external_dependency_failure"


def test_without_an_llm_and_with_metric_detection_off_the_runner_judges_locally(demo_app):
    app = demo_app(**DEMO, AIOPS_METRIC_DETECTION=False)
    client = app.test_client()
    body = client.post(f"{BASE}/scenarios/pod_crash_loop/start", json={}).get_json()
    full = client.get(f"{BASE}/simulations/{body['simulation_id']}").get_json()
    assert full["incident_id"] is None and full["incident_source"] == "local"
    assert full["hypotheses"][0]["category"] == "bad_deployment"
    assert client.get("/aiops/incidents?status=all").get_json()["incident_count"] == 0


def test_api_key_guards_every_simulator_call(demo_app):
    app = demo_app(**DEMO, AIOPS_API_KEY="k3y")
    client = app.test_client()
    assert client.get(f"{BASE}/scenarios").status_code == 401
    assert client.post(f"{BASE}/scenarios/pod_crash_loop/start", json={}).status_code == 401
    assert AIOps.feature(app, "metrics").store.metric_names() == []
    assert client.get(f"{BASE}/scenarios", headers={"X-API-Key": "k3y"}).status_code == 200
    started = client.post(f"{BASE}/scenarios/pod_crash_loop/start", json={}, headers={"X-API-Key": "k3y"})
    assert started.status_code == 200 and started.get_json()["status"] == "completed"


def test_disabled_simulator_registers_nothing(demo_app):
    app = demo_app(**DEMO, AIOPS_SIMULATOR_ENABLED=False)
    assert app.test_client().get(f"{BASE}/scenarios").status_code == 404
    assert "simulator" not in app.extensions


def test_request_level_scenario_against_the_live_demo(live_server, demo_app):
    """Real traffic with a real chaos fault through /simulate, started over HTTP on a loopback server."""
    app = demo_app(**DEMO)
    server = live_server(app)
    response = requests.post(f"{server.url}{BASE}/scenarios/latency_spike_database/start",
                             json={"execution_mode": "demo"}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed", body
    full = requests.get(f"{server.url}{BASE}/simulations/{body['simulation_id']}", timeout=10).json()
    traffic = full["traffic"]
    assert traffic["driven"] is True and traffic["faults"] == ["delay on /inventory"]
    assert traffic["requests"] == 24 and traffic["failed"] == 0 and traffic["median_ms"] >= 400
    incident = requests.get(f"{server.url}/aiops/incidents/{body['incident_id']}", timeout=10).json()
    kinds = {(a["type"], a["endpoint"]) for a in incident["anomalies"]}
    assert ("latency_anomaly", "/inventory") in kinds            # from the spans of the real requests
    assert ("metric_spike", "db_query_duration_seconds") in kinds  # from the pushed metrics
    assert incident["root_cause"]["endpoint"] == "/inventory"
    assert full["hypotheses"][0]["category"] == "database_performance"
    assert full["actions"][0]["action_type"] == "add_index"
    assert requests.get(f"{server.url}/simulate/status", timeout=5).json()["faults"] == []  # cleared


def test_background_run_can_be_stopped_and_clears_its_faults(live_server, demo_app):
    slow = dataclasses.replace(get_scenario("latency_spike_database"), scenario_id="slow_for_stop_test",
                               traffic=TrafficPlan("GET", "/inventory", (ChaosStep("delay", "/inventory",
                                                                                   duration_ms=1000.0),),
                                                   requests=200, warmup_requests=5, concurrency=2))
    register(slow)
    app = demo_app(**DEMO)
    try:
        server = live_server(app)
        started = requests.post(f"{server.url}{BASE}/scenarios/slow_for_stop_test/start",
                                json={"execution_mode": "background"}, timeout=30)
        assert started.status_code == 202 and started.json()["status"] == "running"
        sim_id = started.json()["simulation_id"]
        assert started.headers["Location"] == f"{BASE}/simulations/{sim_id}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the fault is in force
            if requests.get(f"{server.url}/simulate/status", timeout=5).json()["faults"]:
                break
            time.sleep(0.1)
        stopped = requests.post(f"{server.url}{BASE}/simulations/{sim_id}/stop", timeout=60).json()
        assert stopped["stopped"] is True and stopped["status"] == "stopped"
        assert requests.get(f"{server.url}/simulate/status", timeout=5).json()["faults"] == []
        full = requests.get(f"{server.url}{BASE}/simulations/{sim_id}", timeout=5).json()
        assert full["steps"][-1]["step"] == "stopped" and full["finished_at"] is not None
    finally:
        unregister("slow_for_stop_test")


def test_realtime_mode_pushes_the_incident_as_it_unfolds_and_measures_detection(app):
    from simulation.scenarios import MetricPattern, Phase
    quick = dataclasses.replace(
        get_scenario("pod_crash_loop"), scenario_id="quick_realtime_test", baseline_s=240.0, step_s=1.0,
        phases=(Phase("crash", 4.0, (MetricPattern("pods_ready", 1, 3, 8.0, "drop", "pods", noise_sigma=0.0,
                                                   integer=True),)),))
    register(quick)
    try:
        client = app.test_client()
        started = time.time()
        response = client.post(f"{BASE}/scenarios/quick_realtime_test/start", json={"execution_mode": "realtime"})
        assert response.status_code == 202
        sim_id = response.get_json()["simulation_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            full = client.get(f"{BASE}/simulations/{sim_id}").get_json()
            if full["status"] not in ("pending", "running"):
                break
            time.sleep(0.2)
        assert full["status"] == "completed", full
        assert time.time() - started >= 4.0  # the incident took its declared time to unfold
        points = AIOps.feature(app, "metrics").store.metric_series("checkout-service", "pods_ready")
        assert len(points) == 245 and points[-1].timestamp_s <= time.time()
        live = full["detection"]["live"]
        assert 0.0 <= live["detected_after_onset_s"] < 4.0  # the first pass after the drop saw it
        assert full["hypotheses"][0]["category"] == "bad_deployment"
    finally:
        unregister("quick_realtime_test")


def test_a_configured_model_reranks_the_hypotheses_and_a_bad_order_keeps_the_evidence(chat_server, demo_app):
    """The real openai client against a loopback chat-completions server: the
    model's order replaces the evidence's ranks (confidences stay), and an
    order that drops a hypothesis is refused."""
    import json

    app = demo_app(**DEMO, AIOPS_LLM_BASE_URL=chat_server.url, AIOPS_LLM_API_KEY="sk-test-0123456789abcdef",
                   AIOPS_LLM_MODEL="fake-model", AIOPS_LLM_RETRIES=0, AIOPS_LLM_TIMEOUT_S=5,
                   AIOPS_ALERTS_FROM_INCIDENTS=False)  # only the ranking talks to the model here
    client = app.test_client()
    start = {"auto_analyze": True, "execution_mode": "demo"}
    baseline = client.post(f"{BASE}/scenarios/memory_leak_gradual/start", json={**start}).get_json()
    first = client.get(f"{BASE}/simulations/{baseline['simulation_id']}").get_json()
    # the first run's ranking request got the default (non-JSON) answer: the evidence ranking stands
    assert first["hypotheses_ranked_by"] == "evidence" and "evidence ranking kept" in first["ranking_note"]
    evidence_order = [h["category"] for h in first["hypotheses"]]
    assert len(evidence_order) >= 2 and evidence_order[0] == "memory_leak"
    ranking_prompts = [p for p in chat_server.prompts() if "Re-rank these incident hypotheses" in p]
    assert ranking_prompts and all(c in ranking_prompts[-1] for c in evidence_order)

    swapped = [evidence_order[1], evidence_order[0], *evidence_order[2:]]
    chat_server.default = reply(json.dumps({"order": swapped, "reason": "the deploy came first"}))
    second = client.post(f"{BASE}/scenarios/memory_leak_gradual/start", json={**start}).get_json()
    full = client.get(f"{BASE}/simulations/{second['simulation_id']}").get_json()
    assert full["hypotheses_ranked_by"] == "llm" and full["ranking_note"] == "the deploy came first"
    assert [h["category"] for h in full["hypotheses"]] == swapped
    assert [h["rank"] for h in full["hypotheses"]] == list(range(1, len(swapped) + 1))
    assert full["hypotheses"][0]["evidence_rank"] == 2
    by_category = {h["category"]: h["confidence"] for h in first["hypotheses"]}
    assert all(h["confidence"] == by_category[h["category"]] for h in full["hypotheses"])

    chat_server.default = reply(json.dumps({"order": evidence_order[:1]}))  # drops hypotheses: invalid twice
    app.extensions["aiops"].llm.cache.items.clear()  # same scenario, same facts: else a cache hit
    third = client.post(f"{BASE}/scenarios/memory_leak_gradual/start", json={**start}).get_json()
    kept = client.get(f"{BASE}/simulations/{third['simulation_id']}").get_json()
    assert kept["hypotheses_ranked_by"] == "evidence"
    assert [h["category"] for h in kept["hypotheses"]] == evidence_order
