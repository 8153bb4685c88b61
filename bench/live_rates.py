"""Faults at production rates, live through the API: surge, errors and latency at 60 req/s.

Issue 15's live targets: "a route at 60 req/s then 180 req/s raises a
traffic-surge incident; 4 % errors at 60 req/s and +40 ms at 60 req/s are
each found with the right root cause".

1. A small Flask app (``/work``: about 20 ms of simulated I/O, lognormal;
   ``/other``: a second route of the same service) with ``Telemetry``,
   ``AIOps`` (every setting at its default: the scheduler every 10 s, a 60 s
   window) and ``Chaos``, on a real threaded Werkzeug server on loopback.
2. An open-loop load generator sends ``--rate`` req/s to ``/work`` and 5 req/s
   to ``/other``, evenly spaced whatever the response time.
3. Warm-up ``--warmup`` s (the traffic detector arms after 6 passes and two
   windows), then each trial in turn: the fault (the rate times
   ``--surge`` on ``/work``; chaos ``error`` at ``--error-rate``; chaos
   ``delay`` of ``--delay-ms``), until an incident whose root cause is
   ``/work`` opens or ``--detect-timeout`` s pass; then the fault is cleared,
   the window left to drain (window + 1.5 intervals) and open incidents
   resolved through the API.

Printed per trial: found or not, the incident's type and title, time to
detect (the incident's ``first_detected`` minus the fault's start), and any
other incident opened during the run (a false positive).

    .venv/bin/python bench/live_rates.py [--rate 60] [--warmup 150] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests  # noqa: E402
from flask import Flask  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from aiops import AIOps  # noqa: E402
from bench._common import machine_info, print_machine_info  # noqa: E402
from simulation import Chaos  # noqa: E402
from telemetry import Telemetry  # noqa: E402
from telemetry.timefmt import parse_time  # noqa: E402


def make_app(db_path: str) -> Flask:
    app = Flask("live")
    app.config.update(TELEMETRY_DB_PATH=db_path, TELEMETRY_SERVICE_NAME="live")
    Telemetry(app)
    AIOps(app)
    Chaos(app)
    rng = random.Random(5)
    lock = threading.Lock()

    def work(median_ms: float) -> None:
        with lock:
            ms = median_ms * math.exp(rng.gauss(0.0, 0.25))
        time.sleep(ms / 1000.0)

    @app.get("/work")
    def work_route():
        work(20.0)
        return {"ok": True}

    @app.get("/other")
    def other_route():
        work(10.0)
        return {"ok": True}

    return app


class Load:
    """Open loop per route: a request every 1/rate s, sent from a pool; the rate can change live."""

    def __init__(self, base_url: str, rates: dict[str, float]):
        self.base_url, self.rates = base_url, dict(rates)
        self.pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="load")
        self.local = threading.local()
        self.stop_event = threading.Event()
        self.sent = {path: 0 for path in rates}
        self.threads = [threading.Thread(target=self._route, args=(path,), daemon=True) for path in rates]
        for t in self.threads:
            t.start()

    def _route(self, path: str) -> None:
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            delay = next_t - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            self.sent[path] += 1
            self.pool.submit(self._send, path)
            next_t += 1.0 / self.rates[path]

    def _send(self, path: str) -> None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        try:
            session.get(self.base_url + path, timeout=30)
        except requests.RequestException:
            pass

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)


def open_incidents(base: str) -> list[dict]:
    return requests.get(f"{base}/aiops/incidents?status=open", timeout=30).json()["active_incidents"]


def all_incidents(base: str) -> list[dict]:
    return requests.get(f"{base}/aiops/incidents?status=all&limit=1000", timeout=30).json()["active_incidents"]


def run_trial(base: str, load: Load, name: str, start_fault, stop_fault, timeout_s: float, drain_s: float) -> dict:
    known = {i["id"] for i in all_incidents(base)}
    started = time.time()
    start_fault()
    found = None
    while time.time() - started < timeout_s and found is None:
        time.sleep(0.5)
        for incident in open_incidents(base):
            if incident["id"] not in known and incident["root_cause"]["endpoint"] == "/work":
                found = incident
    stop_fault()
    others = [i for i in all_incidents(base) if i["id"] not in known and (found is None or i["id"] != found["id"])]
    time.sleep(drain_s)
    for incident in open_incidents(base):
        requests.post(f"{base}/aiops/incidents/{incident['id']}/resolve", json={"note": "bench"}, timeout=30)
    return {
        "trial": name, "found": found is not None,
        "type": found["anomalies"][0]["type"] if found else None, "title": found["title"] if found else None,
        "detect_s": round(parse_time(found["first_detected"]) - started, 1) if found else None,
        "other_incidents": [{"id": i["id"], "title": i["title"], "root": i["root_cause"]["endpoint"]} for i in others],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=60.0, help="req/s to /work (default 60)")
    parser.add_argument("--surge", type=float, default=3.0, help="surge multiple (default 3: 60 -> 180 req/s)")
    parser.add_argument("--error-rate", type=float, default=0.04)
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=150.0, help="seconds of healthy traffic first")
    parser.add_argument("--detect-timeout", type=float, default=90.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="aiops-live-") as tmp:
        app = make_app(os.path.join(tmp, "live.db"))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        load = Load(base, {"/work": args.rate, "/other": 5.0})
        drain_s = 60.0 + 15.0
        results = []
        try:
            time.sleep(args.warmup)
            warm_false = [{"id": i["id"], "title": i["title"]} for i in all_incidents(base)]

            def chaos(kind: str, **params):
                return lambda: requests.post(f"{base}/simulate/{kind}", json={"endpoint": "/work", **params},
                                             timeout=30).raise_for_status()

            def surge():
                load.rates["/work"] = args.rate * args.surge

            def calm():
                load.rates["/work"] = args.rate

            clear = chaos("clear")
            results.append(run_trial(base, load, f"surge {args.rate:g} -> {args.rate * args.surge:g} req/s",
                                     surge, calm, args.detect_timeout, drain_s))
            results.append(run_trial(base, load, f"{args.error_rate:.0%} errors at {args.rate:g} req/s",
                                     chaos("error", rate=args.error_rate), clear, args.detect_timeout, drain_s))
            results.append(run_trial(base, load, f"+{args.delay_ms:g} ms at {args.rate:g} req/s",
                                     chaos("delay", duration=args.delay_ms), clear, args.detect_timeout, drain_s))
            stats = requests.get(f"{base}/aiops/status", timeout=30).json()
        finally:
            load.stop()
            server.shutdown()
            AIOps.shutdown(app)
    if args.json:
        print(json.dumps({"machine": info, "warmup_incidents": warm_false, "trials": results,
                          "telemetry": stats["telemetry"]}, indent=2))
        return 0
    print_machine_info(info)
    print(f"warm-up {args.warmup:g} s at {args.rate:g} req/s: {len(warm_false)} incident(s) {warm_false or ''}")
    for r in results:
        outcome = f"found {r['type']} after {r['detect_s']} s: {r['title']}" if r["found"] else "NOT FOUND"
        print(f"{r['trial']:<28} {outcome}; other incidents: {r['other_incidents'] or 'none'}")
    print(f"telemetry: {stats['telemetry']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
