"""Trace context through real HTTP calls between two live servers."""
import time

import pytest
import requests
from flask import jsonify, request

from telemetry.context import inject_trace_headers
from tests.helpers import wait_for_spans


@pytest.fixture
def backend_app(make_app):
    """``backend_app(db) -> app``: service "backend" (Telemetry alone) echoing the trace headers it got."""

    def make(db):
        app = make_app("backend", aiops=False, TELEMETRY_DB_PATH=str(db), TELEMETRY_SERVICE_NAME="backend")

        @app.get("/echo")
        def echo():
            return jsonify(traceparent=request.headers.get("traceparent"),
                           tracestate=request.headers.get("tracestate"))

        return app

    return make


@pytest.fixture
def frontend_app(make_app):
    """``frontend_app(db, backend_url, **config) -> app``: service "frontend" calling the backend three ways."""

    def make(db, backend_url, **config):
        app = make_app("frontend", aiops=False, TELEMETRY_DB_PATH=str(db), TELEMETRY_SERVICE_NAME="frontend",
                       **config)

        @app.get("/auto")
        def auto():
            return requests.get(f"{backend_url}/echo", timeout=5).json()

        @app.get("/explicit")
        def explicit():
            return requests.get(f"{backend_url}/echo", headers=inject_trace_headers(), timeout=5).json()

        @app.get("/session")
        def session():
            with requests.Session() as s:
                return s.get(f"{backend_url}/echo", timeout=5).json()

        return app

    return make


@pytest.fixture
def two_services(tmp_path, live_server, backend_app, frontend_app):
    def start(**frontend_config):
        back = live_server(backend_app(tmp_path / "back.db"))
        front = live_server(frontend_app(tmp_path / "front.db", back.url, **frontend_config))
        return front, back
    return start


def flushed_spans(server, db, count=1):
    return wait_for_spans(server.app, db, count)


@pytest.mark.parametrize("route", ["/auto", "/session", "/explicit"])
def test_one_trace_spans_both_services(two_services, tmp_path, route):
    front, back = two_services()
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = requests.get(front.url + route, headers={"traceparent": incoming, "tracestate": "rojo=1"}, timeout=5)
    assert response.status_code == 200
    [front_span] = flushed_spans(front, tmp_path / "front.db")
    [back_span] = flushed_spans(back, tmp_path / "back.db")
    assert front_span["trace_id"] == back_span["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert front_span["parent_span_id"] == "00f067aa0ba902b7"
    assert back_span["parent_span_id"] == front_span["span_id"]
    assert back_span["service"] == "backend" and front_span["service"] == "frontend"
    assert response.json()["traceparent"] == f"00-{front_span['trace_id']}-{front_span['span_id']}-01"
    assert response.json()["tracestate"] == "rojo=1"
    assert response.headers["X-Trace-Id"] == front_span["trace_id"]


def test_new_trace_started_at_the_edge_propagates(two_services, tmp_path):
    front, back = two_services()
    response = requests.get(front.url + "/auto", timeout=5)
    [front_span] = flushed_spans(front, tmp_path / "front.db")
    [back_span] = flushed_spans(back, tmp_path / "back.db")
    assert front_span["parent_span_id"] is None
    assert back_span["trace_id"] == front_span["trace_id"] == response.headers["X-Trace-Id"]
    assert back_span["parent_span_id"] == front_span["span_id"]


def test_automatic_propagation_can_be_turned_off(two_services, tmp_path):
    front, back = two_services(TELEMETRY_INSTRUMENT_REQUESTS=False)
    assert requests.get(front.url + "/auto", timeout=5).json()["traceparent"] is None
    explicit = requests.get(front.url + "/explicit", timeout=5).json()["traceparent"]
    front_spans = flushed_spans(front, tmp_path / "front.db", 2)
    assert explicit == f"00-{front_spans[1]['trace_id']}-{front_spans[1]['span_id']}-01"


def test_unsampled_trace_propagates_its_flag_and_records_nothing(two_services, tmp_path):
    front, back = two_services()
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    echoed = requests.get(front.url + "/auto", headers={"traceparent": incoming}, timeout=5).json()
    assert echoed["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert echoed["traceparent"].endswith("-00")
    time.sleep(0.2)  # give a (wrongly) recorded span time to land
    assert flushed_spans(front, tmp_path / "front.db", 0) == []
    assert flushed_spans(back, tmp_path / "back.db", 0) == []


def test_no_headers_outside_a_request():
    assert inject_trace_headers() == {}
    assert inject_trace_headers({"a": "b"}) == {"a": "b"}


def test_explicit_header_wins(two_services, tmp_path, live_server, make_app, backend_app):
    back = live_server(backend_app(tmp_path / "back.db"))
    app = make_app("frontend", aiops=False, TELEMETRY_DB_PATH=str(tmp_path / "front.db"))
    mine = "00-11111111111111111111111111111111-2222222222222222-01"

    @app.get("/mine")
    def mine_route():
        return requests.get(f"{back.url}/echo", headers={"traceparent": mine}, timeout=5).json()

    front = live_server(app)
    assert requests.get(front.url + "/mine", timeout=5).json()["traceparent"] == mine


def test_an_unclosed_response_leaves_no_current_span(tmp_path, backend_app):
    """A test client that never reads the body must not leak the trace into its thread."""
    from telemetry.context import current_span
    app = backend_app(tmp_path / "x.db")
    app.test_client().get("/echo")  # body never read nor closed
    assert current_span() is None and inject_trace_headers() == {}
