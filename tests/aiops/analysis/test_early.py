"""Early passes (aiops.early): a pass as soon as written spans look anomalous."""
from __future__ import annotations

import math
import threading
import time

import requests

from aiops import AIOps
from aiops.analysis.baseline import Baseline, slow_threshold_ms
from aiops.analysis.config import AnalysisConfig
from aiops.analysis.early import EarlyPassTrigger
from tests.helpers import wait_for_spans, wait_until

CONFIG = AnalysisConfig()
NOW = 1_800_000_000.0


def baseline(route: str, requests: int = 500, median_ms: float = 20.0, error_ratio: float = 0.001) -> Baseline:
    return Baseline("shop", route, requests=requests, log_mean=math.log(median_ms), log_var=0.04,
                    error_ratio=error_ratio)


def span(route: str, duration_ms: float = 20.0, error: int = 0, service: str = "shop") -> tuple:
    status = 500 if error else 200
    return ("a" * 32, "b" * 16, None, service, route, "GET", route, status, NOW, duration_ms, error, None, None, None)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trigger(last_started=None, min_gap_s=2.0):
    ran = threading.Event()
    calls = []

    def run_pass():
        calls.append(1)
        ran.set()

    clock = Clock()
    t = EarlyPassTrigger(run_pass, lambda: last_started, min_gap_s, clock=clock)
    t.learn({b.key: b for b in (baseline("/pay"), baseline("/cold", requests=5))}, NOW, CONFIG)
    return t, ran, calls, clock


def test_suspects_errors_and_slow_requests_against_ready_baselines_only():
    t, _, _, _ = trigger()
    slow_ms = slow_threshold_ms(baseline("/pay"), NOW, CONFIG)
    assert t.suspects([span("/pay") for _ in range(20)]) == []  # healthy
    assert t.suspects([span("/pay", error=1)] + [span("/pay")] * 20) == []  # one error: background
    assert t.suspects([span("/pay", error=1)] * 2 + [span("/pay")] * 8) == [("shop", "/pay")]
    assert t.suspects([span("/pay", slow_ms + 1)] * 3 + [span("/pay")] * 2) == [("shop", "/pay")]
    assert t.suspects([span("/pay", slow_ms + 1)] * 2 + [span("/pay")] * 2) == []  # half is not more than half
    assert t.suspects([span("/pay", slow_ms + 1)]) == []  # one slow request is jitter, even alone in its batch
    assert t.suspects([span("/pay", slow_ms + 1)] * 2) == [("shop", "/pay")]
    assert t.suspects([span("/cold", error=1)] * 5) == []  # baseline not ready (5 < min_samples requests)
    assert t.suspects([span("/new", error=1)] * 5) == []  # never seen
    assert t.suspects([span("/pay", error=1, service="other")] * 5) == []  # another service's /pay


def test_on_spans_runs_one_pass_for_a_suspect_batch():
    t, ran, calls, _ = trigger()
    t.on_spans([span("/pay")] * 10)
    assert t.fired == 0 and not calls
    t.on_spans([span("/pay", error=1)] * 5)
    assert ran.wait(5) and t.fired == 1
    t.wait()
    assert calls == [1]


def test_no_early_pass_within_the_gap_or_while_one_runs():
    t, ran, calls, clock = trigger(last_started=99.0, min_gap_s=2.0)  # a pass started 1 s ago
    bad = [span("/pay", error=1)] * 5
    t.on_spans(bad)
    assert t.fired == 0
    clock.now = 101.5  # 2.5 s after it
    release = threading.Event()
    t.run_pass = lambda: release.wait(5)
    t.on_spans(bad)
    t.on_spans(bad)  # the first early pass still runs: no second one
    assert t.fired == 1
    release.set()
    t.wait()
    t.on_spans(bad)
    assert t.fired == 2
    t.wait()


def test_a_route_already_judged_anomalous_does_not_trigger():
    t, _, _, _ = trigger()
    bad = [span("/pay", error=1)] * 5
    assert t.suspects(bad) == [("shop", "/pay")]
    t.learn({("shop", "/pay"): baseline("/pay")}, NOW, CONFIG, anomalous={("shop", "/pay")})
    assert t.suspects(bad) == []
    t.on_spans(bad)
    assert t.fired == 0


def test_nothing_learned_nothing_fired():
    t = EarlyPassTrigger(lambda: None, lambda: None)
    t.on_spans([span("/pay", error=1)] * 5)
    assert t.fired == 0


# -- on a live app ------------------------------------------------------------------

def _warm(app, url):
    with requests.Session() as s:
        for _ in range(40):
            s.get(url + "/pay", timeout=5)
    wait_for_spans(app, app.config["TELEMETRY_DB_PATH"], 40)  # a live server ends a span after the answer
    AIOps.analyze(app)  # learns the baseline; the scheduler's own tick is an hour away
    assert AIOps.feature(app).store.load_baselines()[("shop", "/pay")].requests >= 40


def test_a_fault_is_found_without_waiting_for_the_next_tick(live_server, pay_app):
    app = pay_app(AIOPS_ANALYSIS_INTERVAL_S=3600, AIOPS_EARLY_PASS_MIN_GAP_S=0)
    server = live_server(app)
    _warm(app, server.url)
    state, analysis = AIOps.state(app), AIOps.feature(app)
    passes = state.passes
    app.failing = True
    with requests.Session() as s:
        for _ in range(10):
            s.get(server.url + "/pay", timeout=5)
    # the pass stores the incident, then counts itself: wait for both
    assert wait_until(lambda: analysis.store.open_incidents() and state.passes > passes, timeout_s=15), \
        "no incident from an early pass"
    assert analysis.early.fired >= 1
    incident = analysis.store.open_incidents()[0]
    assert incident.root_key == ("shop", "/pay")
    status = requests.get(server.url + "/aiops/status", timeout=5).json()
    assert status["early_passes"] >= 1


def test_early_passes_off(live_server, pay_app):
    app = pay_app(AIOPS_ANALYSIS_INTERVAL_S=3600, AIOPS_EARLY_PASS=False)
    server = live_server(app)
    _warm(app, server.url)
    state, analysis = AIOps.state(app), AIOps.feature(app)
    assert analysis.early is None
    app.failing = True
    with requests.Session() as s:
        for _ in range(10):
            s.get(server.url + "/pay", timeout=5)
    app.extensions["telemetry"].store.flush(5)
    time.sleep(0.5)  # what an early pass would have had to start
    assert state.passes == 1 and not analysis.store.open_incidents()
    assert requests.get(server.url + "/aiops/status", timeout=5).json()["early_passes"] is None


def test_shutdown_stops_listening(pay_app):
    app = pay_app(AIOPS_ANALYSIS_INTERVAL_S=3600, AIOPS_EARLY_PASS_MIN_GAP_S=0)
    span_store = app.extensions["telemetry"].store
    on_spans = AIOps.feature(app).early.on_spans
    assert on_spans in span_store._listeners
    AIOps.shutdown(app)
    assert on_spans not in span_store._listeners


def test_a_forked_child_is_not_stuck_behind_the_parents_early_pass():
    import os

    t, _, _, _ = trigger()
    release = threading.Event()
    t.run_pass = lambda: release.wait(5)
    t.on_spans([span("/pay", error=1)] * 5)  # an early pass is running in this process
    assert t._busy.locked()
    pid = os.fork()
    if pid == 0:  # child: the lock was reset, so a suspect batch starts a pass here
        t.run_pass = lambda: None
        t.on_spans([span("/pay", error=1)] * 5)
        os._exit(0 if t.fired == 2 else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    t.wait()
    assert os.WEXITSTATUS(status) == 0
