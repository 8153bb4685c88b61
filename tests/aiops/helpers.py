"""Plain helpers for the aiops tests: seeded synthetic traffic analysed into a real SQLite file, spans written
straight into a store, requests through a test client, and a webhook receiver on loopback.

The app fixtures (``pay_app``, ``svc_app``, ``orders_app``) are in tests/aiops/conftest.py.
"""
from __future__ import annotations

import threading
import time

from flask import Flask, request

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.engine import Analyzer
from aiops.analysis.store import AnalysisStore
from aiops.testing.synthetic import Fault, generate, replay
from telemetry.store import INSERT_SPAN as _INSERT, connect
from tests.helpers import wait_until

T0 = 1_800_000_000.0  # a fixed epoch second, so runs are repeatable
#: requests per second of each demo-shop route in the synthetic runs
SHOP_RATES = {("shop", "/health"): 2, ("shop", "/inventory"): 3, ("shop", "/payment"): 3, ("shop", "/checkout"): 5}


class Run:
    """Synthetic traffic replayed into ``db_path`` with a pass every ``interval_s``."""

    def __init__(self, db_path, routes, rates, duration_s, faults=(), seed=0, config=None, interval_s=10.0):
        self.conn = connect(str(db_path))
        self.store = AnalysisStore(str(db_path))
        self.config = config or AnalysisConfig()
        self.analyzer = Analyzer(self.store, self.config)
        self.traffic = generate(routes, rates, T0, duration_s, list(faults), seed=seed)
        self.results = replay(self.traffic, self.write, self.analyzer.run_pass, T0 + interval_s,
                              T0 + duration_s, interval_s)
        self.conn.close()

    def write(self, rows):
        self.conn.execute("BEGIN")
        self.conn.executemany(_INSERT, rows)
        self.conn.execute("COMMIT")

    def opened(self):
        """(pass time - T0, incident) for every incident opened, in order."""
        return [(r.at - T0, c.incident) for r in self.results for c in r.changes if c.event == "opened"]

    def incidents(self):
        return self.store.incidents(limit=1000)


def fault(key, kind, start_s, end_s, magnitude):
    return Fault(key, kind, T0 + start_s, T0 + end_s, magnitude)


def write_spans(db_path, service, route, at, n, bad=0, duration_ms=5.0):
    """``n`` spans of ``service`` ``route`` at epoch second ``at`` straight into ``db_path``, the first ``bad``
    of them 500s."""
    conn = connect(str(db_path))
    rows = [(f"{i:032x}", f"{i:016x}", None, service, route, "GET", route, 500 if i < bad else 200, at, duration_ms,
             1 if i < bad else 0, None, None, None) for i in range(n)]
    conn.execute("BEGIN")
    conn.executemany(_INSERT, rows)
    conn.execute("COMMIT")
    conn.close()


def call(client, method, path, **kwargs):
    """A request through the test client, body read."""
    response = client.open(path, method=method, **kwargs)
    response.get_data()
    return response


def get(client, path, **kwargs):
    return call(client, "GET", path, **kwargs)


def drive(app, failing: bool, n: int):
    """``n`` requests to each of /pay and /ok of a ``svc_app``, /pay failing or not."""
    app.state["fail"] = failing
    client = app.test_client()
    for _ in range(n):
        get(client, "/pay")
        get(client, "/ok")


class Receiver:
    """A Flask webhook receiver on a live server: answers ``statuses`` in turn (then 200),
    after ``delay_s``, and waits for ``gate`` (an Event) when given."""

    def __init__(self, live_server, statuses=(), delay_s=0.0, gate=None, headers=None):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        self.request_headers: list[dict] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        app = Flask(f"receiver{id(self)}")

        @app.post("/hook/secret-token")
        def hook():
            with self._lock:
                self.bodies.append(request.get_json())
                self.request_headers.append(dict(request.headers))
                status = self.statuses.pop(0) if self.statuses else 200
            self.arrived.set()
            if gate is not None:
                gate.wait(5)
            if delay_s:
                time.sleep(delay_s)
            return "ok" if status < 400 else "nope", status, headers or {}

        self.url = live_server(app).url + "/hook/secret-token"

    def wait_for(self, n, timeout_s=5.0):
        """The bodies received, once there are ``n`` (or after ``timeout_s``)."""
        wait_until(lambda: len(self.bodies) >= n, timeout_s, interval_s=0.02)
        return self.bodies
