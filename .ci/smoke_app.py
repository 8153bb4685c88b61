"""Smoke test of an installed flask-aiops wheel; .ci/smoke_wheel.sh runs it from outside the checkout.

    python smoke_app.py core WORKDIR   # the wheel without extras
    python smoke_app.py all WORKDIR    # the wheel with [all]

A small Flask app with ``Telemetry(app)`` and ``AIOps(app)`` serves requests
through the test client; analysis passes learn a healthy warm-up and open an
incident when a route fails; an SLO is defined and its burn computed; an
alert goes through triage and finds its runbook (package data, TF-IDF without
scikit-learn); the dashboard's static files are served. An LLM model is
configured at a closed loopback port: the documents still come from the
template. Core: the fallback names ``flask-aiops[llm]``, the replay answers
501 naming ``flask-aiops[replay]`` and no heavy package is loaded. All: a
replay of a seeded incident (4.5 h of synthetic spans written into the store)
answers 200 with its PNG plots. Prints one line per check; exits non-zero on
the first failure.
"""
from __future__ import annotations

import json
import os
import sys
import sysconfig
import time

sys.stdout.reconfigure(line_buffering=True)
MODE, WORK = sys.argv[1], sys.argv[2]
assert MODE in ("core", "all"), MODE
HEAVY = ("openai", "sklearn", "scipy", "matplotlib")

import aiops  # noqa: E402
import telemetry  # noqa: E402

site = sysconfig.get_paths()["purelib"]
for module in (aiops, telemetry):
    assert module.__file__.startswith(site), f"{module.__name__} imported from {module.__file__}, not {site}"
print(f"ok  imports come from the installed package ({site})")

from flask import Flask  # noqa: E402

from aiops import AIOps  # noqa: E402
from telemetry import Telemetry  # noqa: E402


class Broken(Exception):
    pass


def check(condition: bool, what: str, detail=None) -> None:
    if not condition:
        print(f"FAIL {what}: {json.dumps(detail, default=str)[:2000] if detail is not None else ''}", file=sys.stderr)
        sys.exit(1)
    print(f"ok  {what}")


def make_app(db: str) -> Flask:
    app = Flask("smoke")
    app.config.update({"TELEMETRY_DB_PATH": db, "TELEMETRY_SERVICE_NAME": "smoke", "TELEMETRY_FLUSH_INTERVAL_MS": 10,
                       "AIOPS_SCHEDULER": False, "AIOPS_MIN_SAMPLES": 10,
                       "AIOPS_LLM_BASE_URL": "http://127.0.0.1:9/v1", "AIOPS_LLM_MODEL": "smoke-model",
                       "AIOPS_LLM_TIMEOUT_S": 2, "AIOPS_LLM_RETRIES": 0})
    Telemetry(app)
    AIOps(app)
    state = {"fail": False}

    @app.get("/ok")
    def ok():
        return "ok"

    @app.get("/pay")
    def pay():
        if state["fail"]:
            raise Broken("card processor down")
        return "paid"

    @app.errorhandler(Broken)
    def broken(exc):
        return {"error": str(exc)}, 500

    app.state = state
    return app


def drive(app: Flask, failing: bool, n: int) -> None:
    app.state["fail"] = failing
    client = app.test_client()
    for _ in range(n):
        for path in ("/pay", "/ok"):
            client.get(path).get_data()  # the span is stored once the body is read


def core_checks(app: Flask) -> str:
    c = app.test_client()
    check(c.get("/ok").headers.get("X-Trace-Id") is not None, "a request is served with X-Trace-Id")
    drive(app, False, 30)
    learned = c.post("/aiops/analyze")
    check(learned.status_code == 200, "an analysis pass learns the healthy warm-up", learned.get_json())
    drive(app, True, 20)
    result = c.post("/aiops/analyze").get_json()
    opened = [i for i in result["incidents"] if i["event"] == "opened"]
    check(len(opened) == 1, "a failing route opens an incident", result)
    incident_id = opened[0]["id"]
    listed = c.get("/aiops/incidents").get_json()
    check(listed["incident_count"] == 1 and listed["active_incidents"][0]["id"] == incident_id, "GET /aiops/incidents")

    made = c.post("/aiops/slo/smoke/targets", json={"indicator": "availability", "target": 0.999})
    check(made.status_code == 201, "an SLO is defined", made.get_json())
    burn = c.post("/aiops/burn/compute").get_json()
    snap = [s for s in burn["snapshots"] if s["service_name"] == "smoke"]
    check(bool(snap) and snap[0]["burn_rate_1h"] > 1.0, "its burn rate is computed from the failures", burn)

    # another service than the app's own: the incident and the SLO burn are triaged too, in the app's group
    alert = {"alert_name": "PodCrashLoopBackOff", "service": "payments", "severity": "critical",
             "message": "Pod payments-1 in CrashLoopBackOff (12 restarts)", "labels": {"pod": "payments-1"}}
    posted = c.post("/aiops/alerts", json=alert)
    check(posted.status_code == 202 and posted.get_json()["created"] == 1, "an alert is triaged", posted.get_json())
    group_id = posted.get_json()["groups"][0]
    group = c.get(f"/aiops/alerts/groups/{group_id}").get_json()
    check(group["runbooks"] and group["runbooks"][0]["path"] == "oomkilled-crashloop.md",
          "triage finds the shipped runbook (TF-IDF over numpy)", group.get("runbooks"))

    metrics = c.get("/metrics")
    check(metrics.status_code == 200 and b"# TYPE" in metrics.data, "GET /metrics (Prometheus text)")
    dashboard = c.get("/aiops/dashboard/")
    check(dashboard.status_code == 200 and b"<html" in dashboard.data.lower(), "the dashboard page (package data)")
    vendor = c.get("/aiops/dashboard/static/vendor/uplot/uPlot.iife.min.js")
    check(vendor.status_code == 200 and len(vendor.data) > 10000, "the dashboard's vendored uPlot (package data)")

    narrative = c.get(f"/aiops/incidents/{incident_id}/narrative").get_json()
    check(narrative["source"] == "template" and bool(narrative["text"]),
          "an LLM document with a model configured answers from the template", narrative)
    if MODE == "core":
        check(narrative["fallback_reason"] == "the LLM writer needs openai: pip install 'flask-aiops[llm]'",
              "  and its fallback_reason names flask-aiops[llm]", narrative["fallback_reason"])
        for path in (f"/aiops/incidents/{incident_id}/replay", f"/aiops/incidents/{incident_id}/replay.png"):
            replay = c.get(path)
            body = replay.get_json()
            check(replay.status_code == 501 and "pip install 'flask-aiops[replay]'" in body["error"],
                  f"GET {path.replace(incident_id, '<id>')} answers 501 naming flask-aiops[replay]", body)
        loaded = [m for m in HEAVY if m in sys.modules]
        check(not loaded, f"no {', '.join(HEAVY)} loaded after all that", loaded)
    else:
        check("flask-aiops[llm]" not in narrative["fallback_reason"],
              "  (openai installed: the model was tried, the closed port failed)", narrative["fallback_reason"])
    return incident_id


def seeded_replay_db(db: str) -> str:
    """4.5 h of the synthetic shop's spans with a /payment latency fault, analysed: the incident's id."""
    from aiops.analysis.config import AnalysisConfig
    from aiops.analysis.engine import Analyzer
    from aiops.analysis.store import AnalysisStore
    from aiops.testing.synthetic import Fault, as_row, generate, replay, shop_routes
    from telemetry.store import INSERT_SPAN, connect
    t0, duration_s = 1_800_000_000.0, 4.5 * 3600
    fault = (t0 + 15000, t0 + 15900)
    traffic = generate(shop_routes(), {("shop", "/checkout"): 1.0, ("shop", "/health"): 0.3}, t0, duration_s,
                       [Fault(("shop", "/payment"), "latency", *fault, 300.0)], seed=3)
    conn = connect(db)
    store = AnalysisStore(db)

    def write(rows):
        conn.execute("BEGIN")
        conn.executemany(INSERT_SPAN, rows)
        conn.execute("COMMIT")
    start = fault[0] - 600
    early = [s for s in traffic.spans if s["start_time"] + s["duration_ms"] / 1000 <= start]
    write([as_row(s) for s in early])
    traffic.spans = traffic.spans[len(early):]
    analyzer = Analyzer(store, AnalysisConfig())
    replay(traffic, write, analyzer.run_pass, start, t0 + duration_s, 10.0)
    store.release_lock(analyzer.owner)
    conn.close()
    incidents = [i for i in store.incidents(limit=10) if i.root_cause["endpoint"] == "/payment"]
    store.close()
    check(bool(incidents), "the seeded fault opened an incident")
    return incidents[-1].id


def main() -> None:
    db = os.path.join(WORK, f"smoke-{MODE}.db")
    for old in (db, db + "-wal", db + "-shm", os.path.join(WORK, "replay.db")):
        if os.path.exists(old):
            os.remove(old)
    app = make_app(db)
    try:
        core_checks(app)
    finally:
        AIOps.shutdown(app)
        Telemetry.flush(app)
    if MODE == "all":
        started = time.perf_counter()
        replay_db = os.path.join(WORK, "replay.db")
        incident_id = seeded_replay_db(replay_db)
        app = Flask("smoke-replay")
        app.config.update({"AIOPS_DB_PATH": replay_db, "AIOPS_SCHEDULER": False})
        AIOps(app)
        try:
            c = app.test_client()
            replay = c.get(f"/aiops/incidents/{incident_id}/replay?points=0")
            body = replay.get_json()
            check(replay.status_code == 200 and body["incident"]["id"] == incident_id and body["zones"],
                  "GET /aiops/incidents/<id>/replay answers 200 with [replay] installed", body)
            png = c.get(f"/aiops/incidents/{incident_id}/replay.png")
            check(png.status_code == 200 and png.data[:4] == b"\x89PNG", "  and its timeline PNG")
        finally:
            AIOps.shutdown(app)
        print(f"    (replay part {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
