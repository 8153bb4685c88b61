"""The middleware against a real-shaped app: blueprints, errorhandlers,
streaming, 404, unhandled exceptions, config, failure isolation."""
import logging
import os
import re
import stat
import time

import pytest
from flask import Blueprint, Flask, Response, abort, stream_with_context

import telemetry
from telemetry import UNMATCHED_ROUTE, Telemetry
from tests.helpers import spans_in


class Conflict(Exception):
    pass


@pytest.fixture
def shop_app(make_app):
    """``shop_app(db_path, **config)``: service "shop" with Telemetry alone on ``db_path``: a blueprint,
    errorhandlers, aborts, streaming responses and an /aiops path."""
    return lambda db_path, **config: shop_routes(make_app("shop", aiops=False, **{
        "TELEMETRY_DB_PATH": str(db_path), "TELEMETRY_FLUSH_INTERVAL_MS": 20, **config}))


def shop_routes(app):
    orders = Blueprint("orders", __name__, url_prefix="/orders")

    @orders.get("/<int:order_id>")
    def get_order(order_id):
        return {"id": order_id}

    @orders.post("/<int:order_id>/cancel")
    def cancel(order_id):
        raise Conflict(f"order {order_id} already shipped")

    app.register_blueprint(orders)

    @app.errorhandler(Conflict)
    def conflict(exc):
        return {"error": str(exc)}, 409

    @app.get("/boom")
    def boom():
        raise ZeroDivisionError("division by zero in pricing")

    @app.get("/teapot")
    def teapot():
        abort(418)

    @app.get("/stream")
    def stream():
        def chunks():
            for i in range(3):
                time.sleep(0.05)
                yield f"chunk {i}\n"
        return Response(stream_with_context(chunks()), mimetype="text/plain")

    @app.get("/stream-fails")
    def stream_fails():
        def chunks():
            yield "first\n"
            raise RuntimeError("stream broke")
        return Response(chunks())

    @app.get("/aiops/metrics")
    def internal():
        return {"ok": True}

    return app


def request(app, method, path, **kwargs):
    """A request through the test client, body read (as a server would send it)."""
    response = app.test_client().open(path, method=method, **kwargs)
    response.get_data()
    response.close()
    return response


def stored(app, db_path, **where):
    Telemetry.flush(app)
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    return spans_in(db_path, clause, tuple(where.values()))


def test_span_fields_for_a_blueprint_route(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    response = request(app, "GET", "/orders/42")
    assert response.status_code == 200
    [span] = stored(app, db)
    assert re.fullmatch(r"[0-9a-f]{32}", span["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", span["span_id"])
    assert span["parent_span_id"] is None
    assert response.headers["X-Trace-Id"] == span["trace_id"]
    assert span["service"] == "shop"
    assert span["route"] == "/orders/<int:order_id>"
    assert span["path"] == "/orders/42"
    assert span["method"] == "GET" and span["status_code"] == 200 and span["error"] == 0
    assert abs(span["start_time"] - time.time()) < 60
    assert span["duration_ms"] > 0
    assert span["exception_type"] is None


def test_exception_turned_into_response_by_errorhandler_is_recorded(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    assert request(app, "POST", "/orders/7/cancel").status_code == 409
    [span] = stored(app, db)
    assert span["route"] == "/orders/<int:order_id>/cancel"
    assert span["status_code"] == 409 and span["error"] == 1
    assert span["exception_type"].endswith("Conflict")
    assert span["exception_message"] == "order 7 already shipped"
    assert "raise Conflict" in span["stacktrace"]


def test_unhandled_exception_is_recorded_and_app_still_answers_500(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    assert request(app, "GET", "/boom").status_code == 500
    [span] = stored(app, db)
    assert span["error"] == 1 and span["status_code"] == 500
    assert span["exception_type"] == "ZeroDivisionError"
    assert span["exception_message"] == "division by zero in pricing"


def test_unhandled_exception_propagates_unchanged_when_flask_propagates(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    app.testing = True  # PROPAGATE_EXCEPTIONS: the app's exception reaches the caller as it was
    with pytest.raises(ZeroDivisionError, match="division by zero in pricing"):
        app.test_client().get("/boom")
    [span] = stored(app, db)
    assert span["exception_type"] == "ZeroDivisionError" and span["error"] == 1


def test_http_errors_are_not_exceptions(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    assert request(app, "GET", "/teapot").status_code == 418
    [span] = stored(app, db)
    assert span["status_code"] == 418 and span["error"] == 0 and span["exception_type"] is None


def test_unmatched_request_gets_one_low_cardinality_route(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    for path in ("/nope", "/nope/1", "/x" * 400):
        assert request(app, "GET", path).status_code == 404
    spans = stored(app, db)
    assert {s["route"] for s in spans} == {UNMATCHED_ROUTE}
    assert max(len(s["path"]) for s in spans) == 512  # raw path is capped


def test_method_not_allowed_keeps_the_rule(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    assert request(app, "DELETE", "/orders/1").status_code == 405
    [span] = stored(app, db)
    assert span["status_code"] == 405


def test_streaming_duration_covers_the_whole_body(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    response = request(app, "GET", "/stream")
    assert response.data == b"chunk 0\nchunk 1\nchunk 2\n"
    [span] = stored(app, db)
    assert span["route"] == "/stream"
    assert span["duration_ms"] >= 150  # three 50 ms chunks were produced before the span ended


def test_streaming_failure_mid_body_is_recorded(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    client = app.test_client()
    response = client.get("/stream-fails")
    with pytest.raises(RuntimeError, match="stream broke"):
        response.get_data()
    [span] = stored(app, db)
    assert span["error"] == 1 and span["exception_type"] == "RuntimeError"


def test_span_is_recorded_when_the_body_is_closed_unread(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    response = app.test_client().get("/orders/1")
    response.close()
    assert len(stored(app, db)) == 1


def test_excluded_paths_are_not_recorded(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    request(app, "GET", "/aiops/metrics")
    assert stored(app, db) == []
    app2 = shop_app(tmp_path / "u.db", TELEMETRY_EXCLUDE_PATHS=[r"^/orders/"])
    request(app2, "GET", "/orders/1")
    request(app2, "GET", "/aiops/metrics")
    assert [s["route"] for s in stored(app2, tmp_path / "u.db")] == ["/aiops/metrics"]


def test_incoming_traceparent_continues_the_trace(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = request(app, "GET", "/orders/1", headers={"traceparent": header})
    assert response.headers["X-Trace-Id"] == "0af7651916cd43dd8448eb211c80319c"
    [span] = stored(app, db)
    assert span["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert span["parent_span_id"] == "b7ad6b7169203331"


def test_invalid_traceparent_starts_a_new_trace(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    bad = "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"
    assert request(app, "GET", "/orders/1", headers={"traceparent": bad}).status_code == 200
    [span] = stored(app, db)
    assert span["trace_id"] != "0af7651916cd43dd8448eb211c80319c" and span["parent_span_id"] is None


def test_sampling_is_parent_based(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db, TELEMETRY_SAMPLE_RATE=0.0)
    request(app, "GET", "/orders/1")  # new trace, rate 0: not recorded, but still tagged
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request(app, "GET", "/orders/2", headers={"traceparent": sampled})
    spans = stored(app, db)
    assert [s["path"] for s in spans] == ["/orders/2"]
    app2 = shop_app(tmp_path / "u.db", TELEMETRY_SAMPLE_RATE=1.0)
    request(app2, "GET", "/orders/3", headers={"traceparent": sampled[:-2] + "00"})
    assert stored(app2, tmp_path / "u.db") == []


@pytest.mark.parametrize("key,value,message", [
    ("TELEMETRY_SAMPLE_RATE", 1.5, r"TELEMETRY_SAMPLE_RATE must be a number within \[0, 1\], got 1.5"),
    ("TELEMETRY_SAMPLE_RATE", "often", r"TELEMETRY_SAMPLE_RATE must be a number"),
    ("TELEMETRY_RETENTION_HOURS", 0, r"TELEMETRY_RETENTION_HOURS must be a number > 0"),
    ("TELEMETRY_ENABLED", "maybe", r"TELEMETRY_ENABLED must be a boolean"),
    ("TELEMETRY_EXCLUDE_PATHS", ["(unclosed"], r"TELEMETRY_EXCLUDE_PATHS must be a list of valid regular"),
    ("TELEMETRY_QUEUE_SIZE", 0, r"TELEMETRY_QUEUE_SIZE must be an integer >= 1"),
    ("TELEMETRY_SERVICE_NAME", "", r"TELEMETRY_SERVICE_NAME must be a non-empty string"),
])
def test_bad_config_fails_at_startup_saying_what_is_valid(tmp_path, key, value, message, shop_app):
    with pytest.raises(ValueError, match=message):
        shop_app(tmp_path / "t.db", **{key: value})


def test_environment_sets_config_and_app_config_wins(tmp_path, monkeypatch, shop_app):
    monkeypatch.setenv("TELEMETRY_SERVICE_NAME", "from-env")
    monkeypatch.setenv("TELEMETRY_SAMPLE_RATE", "0.5")
    app = shop_app(tmp_path / "t.db")
    assert app.extensions["telemetry"].service == "from-env"
    assert app.extensions["telemetry"].sample_rate == 0.5
    app2 = shop_app(tmp_path / "u.db", TELEMETRY_SERVICE_NAME="explicit")
    assert app2.extensions["telemetry"].service == "explicit"
    monkeypatch.setenv("TELEMETRY_SAMPLE_RATE", "2")
    with pytest.raises(ValueError, match="TELEMETRY_SAMPLE_RATE"):
        shop_app(tmp_path / "v.db")


def test_disabled_installs_nothing(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db, TELEMETRY_ENABLED=False)
    response = request(app, "GET", "/orders/1")
    assert response.status_code == 200 and "X-Trace-Id" not in response.headers
    assert not db.exists()


def test_default_db_path_is_in_the_instance_folder(tmp_path):
    app = Flask("shop", instance_path=str(tmp_path / "instance"))
    Telemetry(app)
    assert app.config["TELEMETRY_DB_PATH"] == str(tmp_path / "instance" / "telemetry.db")


def test_factory_pattern_and_two_apps_in_one_process(tmp_path):
    ext = Telemetry()
    apps = []
    for name in ("a", "b"):
        app = Flask(name)
        app.config.update(TELEMETRY_DB_PATH=str(tmp_path / f"{name}.db"), TELEMETRY_SERVICE_NAME=f"svc-{name}")
        ext.init_app(app)
        app.add_url_rule("/ping", "ping", lambda: "pong")
        apps.append(app)
    for app in apps:
        request(app, "GET", "/ping")
        request(app, "GET", "/ping")
    for name, app in zip("ab", apps):
        spans = stored(app, tmp_path / f"{name}.db")
        assert [s["service"] for s in spans] == [f"svc-{name}"] * 2
    with pytest.raises(RuntimeError, match="already initialised"):
        ext.init_app(apps[0])


def test_unwritable_database_still_serves_200(tmp_path, caplog, shop_app):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "t.db"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): see the read-only file test")
        with caplog.at_level(logging.WARNING, logger="telemetry"):
            app = shop_app(db)
            for _ in range(3):
                assert request(app, "GET", "/orders/1").status_code == 200
            Telemetry.flush(app)
        assert Telemetry.stats(app)["dropped_spans"] == 3
    finally:
        folder.chmod(stat.S_IRWXU)


def test_read_only_database_file_still_serves_200_and_counts(tmp_path, caplog, shop_app):
    """Works as root too: SQLite's query_only pragma cannot be bypassed by file permissions."""
    db = tmp_path / "t.db"
    app = shop_app(db)
    store = app.extensions["telemetry"].store
    request(app, "GET", "/orders/1")
    Telemetry.flush(app)
    store._connection().execute("PRAGMA query_only=1")  # from now on every write fails
    with caplog.at_level(logging.WARNING, logger="telemetry"):
        for _ in range(5):
            assert request(app, "GET", "/orders/2").status_code == 200
        Telemetry.flush(app)
    stats = Telemetry.stats(app)
    assert stats["written"] == 1 and stats["dropped_spans"] == 5 and stats["write_errors"] >= 1
    warnings = [r for r in caplog.records if "could not write" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one warning, however many failures


def test_locked_database_never_blocks_requests(tmp_path, shop_app):
    import sqlite3
    db = tmp_path / "t.db"
    app = shop_app(db)
    app.extensions["telemetry"].store._connection().execute("PRAGMA busy_timeout=50")
    request(app, "GET", "/orders/1")
    Telemetry.flush(app)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        for _ in range(20):
            assert request(app, "GET", "/orders/2").status_code == 200
        served_s = time.perf_counter() - started
        Telemetry.flush(app, timeout=2)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert served_s < 5  # behaviour, not performance: requests never waited on the lock's timeout
    assert Telemetry.stats(app)["write_errors"] >= 1


def test_full_queue_drops_and_counts(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db, TELEMETRY_QUEUE_SIZE=5, TELEMETRY_FLUSH_INTERVAL_MS=60000)
    store = app.extensions["telemetry"].store
    store.enqueue(("x",) * 14)  # start the writer, then keep it from draining
    store._queue.clear()
    for _ in range(12):
        assert request(app, "GET", "/orders/1").status_code == 200
    assert Telemetry.stats(app)["dropped_spans"] == 7
    assert Telemetry.stats(app)["queued"] == 5
    Telemetry.flush(app)
    assert len(stored(app, db)) == 5


def test_internal_failure_never_reaches_the_app(tmp_path, monkeypatch, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    store = app.extensions["telemetry"].store

    def broken(span):
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(store, "enqueue", broken)
    assert request(app, "GET", "/orders/1").status_code == 200
    monkeypatch.setattr("telemetry.extension.parse_traceparent", lambda h: 1 / 0)
    response = request(app, "GET", "/orders/1")
    assert response.status_code == 200 and response.json == {"id": 1}
    assert Telemetry.stats(app)["internal_errors"] == 2


def test_writer_crash_is_survived(tmp_path, monkeypatch, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    store = app.extensions["telemetry"].store
    calls = {"n": 0}
    original = store._drain

    def crash_once():
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError("writer crash")
        original()

    monkeypatch.setattr(store, "_drain", crash_once)
    request(app, "GET", "/orders/1")
    Telemetry.flush(app)
    request(app, "GET", "/orders/2")
    Telemetry.flush(app)
    assert {s["path"] for s in stored(app, db)} == {"/orders/1", "/orders/2"}


def test_module_flush_and_stats(tmp_path, shop_app):
    db = tmp_path / "t.db"
    app = shop_app(db)
    request(app, "GET", "/orders/1")
    assert telemetry.flush(timeout=5)
    assert Telemetry.stats(app)["written"] == 1
