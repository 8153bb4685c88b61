"""Plain helpers for every test package: a live server on loopback, stored spans, polling, shared data.

The fixtures built on them (``live_server``, ``make_app``, ``demo_app``, ...) are in tests/conftest.py.
"""
from __future__ import annotations

import sqlite3
import threading
import time

from werkzeug.serving import make_server

from telemetry import Telemetry
from telemetry.store import read_spans


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
    deadline = time.monotonic() + timeout_s
    while True:
        Telemetry.flush(app)
        spans = spans_in(db_path)
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def wait_until(predicate, timeout_s: float = 15.0, interval_s: float = 0.05):
    """The first true value of ``predicate()``, polled every ``interval_s`` seconds; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return False


# -- a user's own incident (POST /aiops/postmortems, ``aiops postmortem --input``, llm.facts) --------------------

USER_INCIDENT = {
    "title": "Payment Gateway OOM Incident",
    "severity": "P2",
    "duration_minutes": 45,
    "services_affected": ["payment-gateway"],
    "timeline": [
        {"time": "14:00", "event": "Deployment v2.3.1 rolled out."},
        {"time": "14:23", "event": "Both pods OOMKilled; error rate 4.7%."},
        {"time": "14:35", "event": "Memory limits raised from 512Mi to 2Gi."},
        {"time": "14:45", "event": "Error rate back to 0.02%."},
    ],
    "root_cause": "BatchReconciliation loaded 2.1M rows into memory. The pod limit was 512Mi. "
                  "Two of five pods crashed.",
    "fix_applied": "Increased memory limits to 2Gi and restarted pods.",
    "data_points": {"error_rate_peak": "4.7%", "pods_affected": 2, "customer_tickets": 12},
}
