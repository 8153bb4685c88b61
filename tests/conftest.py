"""Shared fixtures: a live HTTP server on loopback, and clean span stores per test."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from werkzeug.serving import make_server

from telemetry.store import SPAN_COLUMNS, SpanStore, read_spans


class LiveServer:
    """A real threaded Werkzeug server on 127.0.0.1 and a free port."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def live_server():
    """``live_server(app) -> LiveServer``; every server is stopped after the test."""
    servers = []

    def start(app):
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _close_span_stores():
    yield
    SpanStore.close_all(timeout=5.0)


def spans_in(db_path, where: str = "1", params=()) -> list[dict]:
    """Every span stored in ``db_path`` matching ``where``, oldest first."""
    conn = sqlite3.connect(db_path)
    try:
        return read_spans(conn, where, params)
    finally:
        conn.close()


def wait_for_spans(app, db_path, count: int, timeout_s: float = 5.0) -> list[dict]:
    """Spans of ``db_path`` once at least ``count`` are stored (a live server
    ends a span after the client already has the response, so poll)."""
    from telemetry import Telemetry
    deadline = time.monotonic() + timeout_s
    while True:
        Telemetry.flush(app)
        spans = spans_in(db_path)
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


__all__ = ["LiveServer", "SPAN_COLUMNS", "spans_in", "wait_for_spans"]
