"""Tests for simulation.chaos: fault injection through the /simulate API."""
from __future__ import annotations

import threading
import time

import pytest
from flask import Flask, got_request_exception
from hypothesis import HealthCheck, given, settings, strategies as st

from aiops.config import API_KEY
from simulation import Chaos, InjectedFault
from simulation.chaos import CHAOS_CONFIG, ChaosInputError

KEY = "s3cret"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """The host's environment must not leak into these tests."""
    for key in (*CHAOS_CONFIG, API_KEY):
        monkeypatch.delenv(key.name, raising=False)


@pytest.fixture
def chaos_app(make_app):
    """``chaos_app(**config)``: a small app with Chaos alone (no Telemetry, no AIOps)."""
    return lambda **config: with_chaos(make_app(__name__, telemetry=False, aiops=False, TESTING=True, **config))


def with_chaos(app: Flask) -> Flask:
    """POST /payment, GET /inventory, GET /orders/<int:id>, GET /aiops/health, plus Chaos."""

    @app.post("/payment")
    def payment():
        return {"paid": True}

    @app.get("/inventory")
    def inventory():
        return {"items": 3}

    @app.get("/orders/<int:id>")
    def order(id):
        return {"order": id}

    @app.get("/aiops/health")
    def aiops_health():
        return {"ok": True}

    Chaos(app)
    return app


@pytest.fixture
def app(chaos_app):
    return chaos_app()


@pytest.fixture
def client(app):
    return app.test_client()


def status_of(client) -> dict:
    resp = client.get("/simulate/status")
    assert resp.status_code == 200
    return resp.get_json()


# -- each fault type applies ---------------------------------------------------


def test_no_fault_requests_pass(client):
    assert client.get("/inventory").get_json() == {"items": 3}
    assert status_of(client)["faults"] == []


def test_delay_applies_then_request_proceeds(client):
    resp = client.post("/simulate/delay?endpoint=/payment&duration=50")
    assert resp.status_code == 201
    fault = resp.get_json()["fault"]
    assert fault["type"] == "delay" and fault["duration_ms"] == 50 and fault["rule"] == "/payment"
    start = time.perf_counter()
    resp = client.post("/payment")
    assert time.perf_counter() - start >= 0.05
    assert resp.status_code == 200 and resp.get_json() == {"paid": True}
    client.get("/inventory")  # other endpoints are untouched
    assert status_of(client)["faults"][0]["applied_count"] == 1


def test_error_rate_one_always_fails_with_status_and_json(client):
    resp = client.post("/simulate/error?endpoint=/inventory&rate=1&status=503")
    assert resp.status_code == 201
    fault = resp.get_json()["fault"]
    assert (fault["rate"], fault["status"]) == (1, 503)
    for _ in range(20):
        resp = client.get("/inventory")
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["error"] == "injected fault"
        assert body["endpoint"] == "/inventory"
        assert body["detail"] == "injected fault: 100% error rate on /inventory (HTTP 503)"
    assert status_of(client)["faults"][0]["applied_count"] == 20


def test_error_defaults_to_rate_one_status_500(client):
    fault = client.post("/simulate/error?endpoint=/inventory").get_json()["fault"]
    assert (fault["rate"], fault["status"]) == (1, 500)
    assert client.get("/inventory").status_code == 500


def test_error_rate_zero_never_fails(client):
    client.post("/simulate/error?endpoint=/inventory&rate=0")
    assert all(client.get("/inventory").status_code == 200 for _ in range(50))


def test_error_message_mentions_rate(client):
    client.post("/simulate/error", json={"endpoint": "/inventory", "rate": 0.8})
    app = client.application
    app.extensions["chaos"].rng.random = lambda: 0.0  # force the failure
    body = client.get("/inventory").get_json()
    assert body["detail"] == "injected fault: 80% error rate on /inventory (HTTP 500)"


def test_timeout_hangs_then_504(chaos_app):
    client = chaos_app(AIOPS_CHAOS_TIMEOUT_DEFAULT_MS=20).test_client()
    fault = client.post("/simulate/timeout?endpoint=/inventory").get_json()["fault"]
    assert fault["duration_ms"] == 20
    start = time.perf_counter()
    resp = client.get("/inventory")
    assert time.perf_counter() - start >= 0.02
    assert resp.status_code == 504
    body = resp.get_json()
    assert body["error"] == "injected fault" and body["type"] == "timeout"
    assert "timeout on /inventory" in body["detail"]


def test_timeout_explicit_duration(client):
    assert client.post("/simulate/timeout?endpoint=/inventory&duration=10").status_code == 201
    assert client.get("/inventory").status_code == 504


def test_delay_and_error_combine(client):
    client.post("/simulate/delay?endpoint=/inventory&duration=50")
    client.post("/simulate/error?endpoint=/inventory&rate=1&status=502")
    start = time.perf_counter()
    resp = client.get("/inventory")
    assert time.perf_counter() - start >= 0.05
    assert resp.status_code == 502
    assert {f["type"] for f in status_of(client)["faults"]} == {"delay", "error"}


def test_setting_again_replaces(client):
    first = client.post("/simulate/error?endpoint=/inventory&status=500").get_json()["fault"]
    resp = client.post("/simulate/error?endpoint=/inventory&status=503").get_json()
    assert resp["replaced"]["id"] == first["id"]
    faults = status_of(client)["faults"]
    assert len(faults) == 1 and faults[0]["status"] == 503
    assert client.get("/inventory").status_code == 503


def test_handled_by_app_errorhandler_not_unhandled(client):
    """InjectedFault is raised and turned into JSON by the app's errorhandler."""
    app = client.application
    assert InjectedFault in app.error_handler_spec[None][None]
    unhandled = []

    def record(sender, exception, **extra):
        unhandled.append(exception)

    client.post("/simulate/error?endpoint=/inventory&status=507")
    with got_request_exception.connected_to(record, app):
        resp = client.get("/inventory")
    assert unhandled == []
    assert resp.status_code == 507
    body = resp.get_json()
    assert set(body) >= {"error", "detail", "endpoint"}
    assert body["error"] == "injected fault" and body["detail"].startswith("injected fault:")


def test_injected_fault_is_runtime_error_and_handler_wins_over_generic(chaos_app):
    assert issubclass(InjectedFault, RuntimeError)
    app = chaos_app()
    app.register_error_handler(Exception, lambda exc: ("generic", 500))
    client = app.test_client()
    client.post("/simulate/error?endpoint=/inventory&status=503")
    assert client.get("/inventory").get_json()["error"] == "injected fault"


# -- targeting -------------------------------------------------------------------


def test_rule_target_applies_to_every_path(client):
    client.post("/simulate/error", json={"endpoint": "/orders/<int:id>", "status": 503})
    assert client.get("/orders/1").status_code == 503
    assert client.get("/orders/2").status_code == 503
    fault = status_of(client)["faults"][0]
    assert fault["rule"] == "/orders/<int:id>" and fault["match"] == "rule"


def test_path_target_applies_to_that_path_only(client):
    resp = client.post("/simulate/error?endpoint=/orders/5&status=503")
    fault = resp.get_json()["fault"]
    assert (fault["endpoint"], fault["rule"], fault["match"]) == ("/orders/5", "/orders/<int:id>", "path")
    assert client.get("/orders/5").status_code == 503
    assert client.get("/orders/6").status_code == 200


def test_path_for_post_only_route_is_valid(client):
    """/payment only allows POST; a path matching a rule for any method counts."""
    client.post("/simulate/error", json={"endpoint": "/payment"})
    assert client.post("/payment").status_code == 500


def test_path_fault_overrides_rule_fault_of_same_type(client):
    client.post("/simulate/error", json={"endpoint": "/orders/<int:id>", "status": 503})
    client.post("/simulate/error", json={"endpoint": "/orders/5", "status": 502})
    assert client.get("/orders/5").status_code == 502
    assert client.get("/orders/6").status_code == 503


def test_unrouted_requests_are_untouched(client):
    client.post("/simulate/error?endpoint=/inventory")
    assert client.get("/nowhere").status_code == 404
    assert client.post("/inventory").status_code == 405


def test_threaded_mutation_and_requests(chaos_app):
    """Requests keep working while another thread sets and clears faults."""
    app = chaos_app()
    errors, codes = [], set()

    def hammer():
        client = app.test_client()
        try:
            for _ in range(40):
                codes.add(client.get("/inventory").status_code)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    admin = app.test_client()
    for i in range(40):
        admin.post("/simulate/error", json={"endpoint": "/inventory", "status": 503})
        admin.post("/simulate/clear", json={"endpoint": "/inventory"} if i % 2 else None)
    for thread in threads:
        thread.join()
    assert errors == [] and codes <= {200, 503}


# -- clear, expiry, status -----------------------------------------------------


def test_clear_all(client):
    client.post("/simulate/error?endpoint=/inventory")
    client.post("/simulate/delay?endpoint=/payment&duration=1")
    resp = client.post("/simulate/clear")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["count"] == 2 and {f["type"] for f in body["cleared"]} == {"error", "delay"}
    assert body["endpoint"] is None
    assert status_of(client)["faults"] == []
    assert client.get("/inventory").status_code == 200


def test_clear_one_endpoint(client):
    client.post("/simulate/error?endpoint=/inventory")
    client.post("/simulate/error?endpoint=/payment")
    body = client.post("/simulate/clear?endpoint=/inventory").get_json()
    assert [f["endpoint"] for f in body["cleared"]] == ["/inventory"]
    assert client.get("/inventory").status_code == 200
    assert client.post("/payment").status_code == 500


def test_clear_rule_removes_its_path_faults_but_clear_path_only_its_own(client):
    client.post("/simulate/error", json={"endpoint": "/orders/<int:id>"})
    client.post("/simulate/delay", json={"endpoint": "/orders/5", "duration": 1})
    cleared = client.post("/simulate/clear", json={"endpoint": "/orders/5"}).get_json()["cleared"]
    assert [f["endpoint"] for f in cleared] == ["/orders/5"]
    client.post("/simulate/delay", json={"endpoint": "/orders/5", "duration": 1})
    cleared = client.post("/simulate/clear", json={"endpoint": "/orders/<int:id>"}).get_json()["cleared"]
    assert len(cleared) == 2


def test_clear_unknown_endpoint_is_400(client):
    assert client.post("/simulate/clear?endpoint=/nope").status_code == 400


def test_expires_in_makes_fault_lapse(client):
    fault = client.post("/simulate/error?endpoint=/inventory&expires_in=0.1").get_json()["fault"]
    assert fault["expires_at"] is not None and fault["expires_at"].endswith("Z")
    assert client.get("/inventory").status_code == 500
    time.sleep(0.15)
    assert client.get("/inventory").status_code == 200
    assert status_of(client)["faults"] == []


def test_status_shape(client):
    client.post("/simulate/delay?endpoint=/payment&duration=10")
    client.post("/simulate/error?endpoint=/inventory&rate=0.5&status=503")
    body = status_of(client)
    assert body["enabled"] is True
    assert body["endpoints"] == ["/inventory", "/orders/<int:id>", "/payment"]
    delay, error = body["faults"]
    assert set(delay) == {"id", "type", "endpoint", "rule", "match", "duration_ms", "created_at",
                          "expires_at", "applied_count"}
    assert set(error) == {"id", "type", "endpoint", "rule", "match", "rate", "status", "created_at",
                          "expires_at", "applied_count"}
    assert delay["created_at"].endswith("Z") and delay["expires_at"] is None
    assert (error["rate"], error["status"]) == (0.5, 503)


def test_responses_are_pretty_json(client):
    resp = client.get("/simulate/status")
    assert resp.mimetype == "application/json"
    assert resp.get_data(as_text=True).startswith('{\n  "enabled"')


# -- inputs ----------------------------------------------------------------------


def test_json_body_accepted_and_wins_over_query(client):
    resp = client.post("/simulate/delay?endpoint=/inventory&duration=5000",
                       json={"endpoint": "/payment", "duration": 5, "unknown": "ignored"})
    assert resp.status_code == 201
    fault = resp.get_json()["fault"]
    assert (fault["endpoint"], fault["duration_ms"]) == ("/payment", 5)


def test_unknown_fields_ignored(client):
    assert client.post("/simulate/error?endpoint=/inventory&colour=blue").status_code == 201


def test_invalid_json_body_is_400(client):
    resp = client.post("/simulate/delay?endpoint=/payment&duration=1", data="{not json",
                       content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid JSON body"
    resp = client.post("/simulate/delay", json=["/payment", 1])
    assert resp.status_code == 400


CAP = 120000


@pytest.mark.parametrize(
    ("route", "params", "error"),
    [
        ("delay", {"duration": 10}, "missing endpoint"),
        ("error", {}, "missing endpoint"),
        ("timeout", {"endpoint": ""}, "missing endpoint"),
        ("delay", {"endpoint": "/nope", "duration": 10}, "unknown endpoint"),
        ("error", {"endpoint": "/orders/abc"}, "unknown endpoint"),
        ("error", {"endpoint": "/simulate/status"}, "endpoint not targetable"),
        ("error", {"endpoint": "/simulate/delay"}, "endpoint not targetable"),
        ("error", {"endpoint": "/aiops/health"}, "endpoint not targetable"),
        ("error", {"endpoint": "/static/<path:filename>"}, "endpoint not targetable"),
        ("error", {"endpoint": "/static/app.js"}, "endpoint not targetable"),
        ("delay", {"endpoint": "/payment"}, "missing duration"),
        ("delay", {"endpoint": "/payment", "duration": "soon"}, "invalid duration"),
        ("timeout", {"endpoint": "/payment", "duration": "nan"}, "invalid duration"),
        ("delay", {"endpoint": "/payment", "duration": -1}, "negative duration"),
        ("timeout", {"endpoint": "/payment", "duration": -5}, "negative duration"),
        ("delay", {"endpoint": "/payment", "duration": CAP + 1}, "duration over the cap"),
        ("timeout", {"endpoint": "/payment", "duration": CAP + 1}, "duration over the cap"),
        ("error", {"endpoint": "/payment", "rate": "often"}, "invalid rate"),
        ("error", {"endpoint": "/payment", "rate": 1.5}, "rate out of range"),
        ("error", {"endpoint": "/payment", "rate": -0.1}, "rate out of range"),
        ("error", {"endpoint": "/payment", "status": "bad"}, "invalid status"),
        ("error", {"endpoint": "/payment", "status": 503.5}, "invalid status"),
        ("error", {"endpoint": "/payment", "status": 404}, "status out of range"),
        ("error", {"endpoint": "/payment", "status": 600}, "status out of range"),
        ("error", {"endpoint": "/payment", "expires_in": "later"}, "invalid expires_in"),
        ("delay", {"endpoint": "/payment", "duration": 1, "expires_in": 0}, "expires_in not positive"),
        ("timeout", {"endpoint": "/payment", "expires_in": -3}, "expires_in not positive"),
        ("error", {"endpoint": "/payment", "expires_in": 10**12}, "expires_in over the cap"),
    ],
)
@pytest.mark.parametrize("via", ["query", "json"])
def test_validation_errors(client, route, params, error, via):
    if via == "query":
        resp = client.post(f"/simulate/{route}", query_string=params)
    else:
        resp = client.post(f"/simulate/{route}", json=params)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == error
    assert body["detail"]
    if error in ("unknown endpoint", "missing endpoint", "endpoint not targetable"):
        assert "/orders/<int:id>" in body["detail"]
        assert body["endpoints"] == ["/inventory", "/orders/<int:id>", "/payment"]
    if error == "duration over the cap":
        assert str(CAP) in body["detail"]
    assert status_of(client)["faults"] == []


def test_cap_follows_config(chaos_app):
    client = chaos_app(AIOPS_CHAOS_MAX_DURATION_MS=100, AIOPS_CHAOS_TIMEOUT_DEFAULT_MS=50).test_client()
    resp = client.post("/simulate/delay?endpoint=/payment&duration=101")
    assert resp.status_code == 400 and "100 ms" in resp.get_json()["detail"]
    assert client.post("/simulate/delay?endpoint=/payment&duration=100").status_code == 201


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                       st.lists(st.integers(), max_size=2)))
def test_any_json_value_gets_201_or_400(value, chaos_app):
    client = chaos_app(AIOPS_CHAOS_MAX_DURATION_MS=5, AIOPS_CHAOS_TIMEOUT_DEFAULT_MS=5).test_client()
    for field in ("duration", "rate", "status", "expires_in", "endpoint"):
        body = {"endpoint": "/orders/7", "duration": 1, field: value}
        resp = client.post("/simulate/timeout" if field == "duration" else "/simulate/error", json=body)
        assert resp.status_code in (201, 400), (field, value, resp.get_data(as_text=True))
    client.post("/simulate/clear")


# -- methods, API key, enable switch ---------------------------------------------


@pytest.mark.parametrize("route", ["delay", "error", "timeout", "clear"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_on_mutating_route_is_json_405(client, route, method):
    resp = client.open(f"/simulate/{route}?endpoint=/payment&duration=1", method=method)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert resp.get_json()["error"].startswith(f"method {method} not allowed")
    assert status_of(client)["faults"] == []


def test_post_on_status_is_json_405(client):
    resp = client.post("/simulate/status")
    assert resp.status_code == 405 and resp.get_json()["error"].startswith("method POST")


@pytest.mark.parametrize("route", ["delay", "error", "timeout", "clear"])
def test_api_key_required_when_set(route, chaos_app):
    client = chaos_app(AIOPS_API_KEY=KEY).test_client()
    url = f"/simulate/{route}?endpoint=/payment&duration=1"
    assert client.post(url).status_code == 401
    assert client.post(url, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post(url, headers={"X-API-Key": KEY}).status_code in (200, 201)
    assert client.get("/simulate/status").status_code == 200


def test_api_key_checked_before_validation(chaos_app):
    client = chaos_app(AIOPS_API_KEY=KEY).test_client()
    resp = client.post("/simulate/delay")
    assert resp.status_code == 401 and resp.get_json()["error"] == "missing API key"


def test_api_key_from_environment(monkeypatch, chaos_app):
    monkeypatch.setenv("AIOPS_API_KEY", KEY)
    client = chaos_app().test_client()
    assert client.post("/simulate/clear").status_code == 401
    assert client.post("/simulate/clear", headers={"X-API-Key": KEY}).status_code == 200


ALL_ROUTES = [("POST", "/simulate/delay"), ("POST", "/simulate/error"), ("POST", "/simulate/timeout"),
              ("POST", "/simulate/clear"), ("GET", "/simulate/status")]


def _assert_disabled(app):
    client = app.test_client()
    for method, url in ALL_ROUTES:
        assert client.open(url, method=method).status_code == 404
    assert not any(rule.rule.startswith("/simulate") for rule in app.url_map.iter_rules())
    assert app.before_request_funcs.get(None, []) == []
    assert client.get("/inventory").status_code == 200


def test_disabled_by_config(chaos_app):
    _assert_disabled(chaos_app(AIOPS_CHAOS_ENABLED=False))


@pytest.mark.parametrize("value", ["false", "0", "off"])
def test_disabled_by_environment(monkeypatch, value, chaos_app):
    monkeypatch.setenv("AIOPS_CHAOS_ENABLED", value)
    _assert_disabled(chaos_app())


def test_python_api_refuses_when_disabled(chaos_app):
    app = chaos_app(AIOPS_CHAOS_ENABLED=False)
    with pytest.raises(RuntimeError, match="disabled"):
        Chaos().inject("error", "/inventory", app=app)


@pytest.mark.parametrize(
    "config",
    [
        {"AIOPS_CHAOS_ENABLED": "maybe"},
        {"AIOPS_CHAOS_MAX_DURATION_MS": 0},
        {"AIOPS_CHAOS_MAX_DURATION_MS": "lots"},
        {"AIOPS_CHAOS_TIMEOUT_DEFAULT_MS": -1},
        {"AIOPS_CHAOS_TIMEOUT_DEFAULT_MS": 200_000},  # over the default cap
        {"AIOPS_API_KEY": 1234},
    ],
)
def test_bad_config_raises_at_init(config, chaos_app):
    with pytest.raises(ValueError, match=next(iter(config))):
        chaos_app(**config)


def test_bad_config_from_environment_raises(monkeypatch, chaos_app):
    monkeypatch.setenv("AIOPS_CHAOS_MAX_DURATION_MS", "-5")
    with pytest.raises(ValueError, match="AIOPS_CHAOS_MAX_DURATION_MS"):
        chaos_app()


def test_config_keys_are_documented():
    for key in CHAOS_CONFIG:
        assert key.unit and key.doc


# -- extension pattern -------------------------------------------------------------


def test_init_app_pattern_and_two_apps_keep_separate_faults():
    ext = Chaos()
    apps = []
    for _ in range(2):
        app = Flask(__name__)
        app.config["TESTING"] = True
        app.add_url_rule("/inventory", "inventory", lambda: {"items": 3})
        ext.init_app(app)
        apps.append(app)
    assert not hasattr(ext, "app")
    first, second = (app.test_client() for app in apps)
    first.post("/simulate/error?endpoint=/inventory&status=503")
    assert first.get("/inventory").status_code == 503
    assert second.get("/inventory").status_code == 200
    assert status_of(second)["faults"] == []
    assert apps[0].extensions["chaos"] is not apps[1].extensions["chaos"]


def test_init_twice_on_one_app_raises(app):
    with pytest.raises(RuntimeError, match="already"):
        Chaos(app)


def test_python_api_mirrors_http(app):
    ext = Chaos()
    client = app.test_client()
    result = ext.inject("delay", "/payment", duration_ms=1, app=app)
    assert result["fault"]["duration_ms"] == 1 and result["replaced"] is None
    with app.app_context():
        assert [f["type"] for f in ext.status()["faults"]] == ["delay"]
        with pytest.raises(ChaosInputError) as info:
            ext.inject("error", "/payment", rate=2)
        assert info.value.error == "rate out of range"
        assert len(ext.clear("/payment")) == 1
    assert status_of(client)["faults"] == []
