"""Mean time to detect (MTTD), measured live on the demo shop.

Target: "median time from injecting a fault to the incident <= 10 s at
default settings, with >= 5 req/s on the affected route".

1. ``app.create_app`` with a temp ``TELEMETRY_DB_PATH`` and every other
   setting at its default (``AIOPS_ANALYSIS_INTERVAL_S`` 10, ``AIOPS_WINDOW_S``
   60, scheduler on, ``DEMO_ERROR_RATE`` 0.001, ...), served by a real
   threaded Werkzeug server on a free loopback port.
2. An open-loop load generator sends ``--rate`` requests/s (default 5, evenly
   spaced, whatever the response time) to each of GET /health, GET /inventory,
   POST /payment and POST /checkout (which calls /inventory and /payment, so
   those two routes see twice ``--rate``).
3. Warm-up: at least ``--warmup`` s and until GET /aiops/metrics reports
   ``baseline_ready`` for the four routes.
4. Each trial: wait a random 0..interval s (random phase to the scheduler's
   tick), resolve any open incident, inject the next fault of the cycle
   through the chaos API (injection time = the fault's ``created_at``), poll
   GET /aiops/incidents every 0.25 s until an incident first detected after
   the injection names the expected root cause (or ``--detect-timeout`` s),
   then clear the fault.
5. Isolation between trials: the same app keeps running (its baselines stay
   warm: a fresh app per trial would need a new warm-up of >= 60 s, longer
   than the cool-down) and after clearing the fault the script waits
   ``window + 1.5 x interval`` s (75 s by default), so that every faulty span
   has left the window and one pass has run on a clean window; then it
   resolves the open incidents (POST /aiops/incidents/<id>/resolve). An
   incident that opens after that, before the next injection, is reported as
   a false positive.

MTTD per trial, two clocks:
``incident``: the analysis time the incident carries minus the injection
time (``first_detected``, or the ``root_cause_changed`` event that named the
expected root cause when the incident opened with another one);
``poll``: when the poll first saw it (the pass must finish and the poll come
round: up to ~0.25 s + the pass duration later).

    .venv/bin/python bench/mttd.py [--trials 5] [--quick] [--rate 5] [--warmup 75] [--seed N] [--json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench._common import machine_info, print_machine_info  # noqa: E402

TARGET_MEDIAN_S = 10.0
POLL_S = 0.25

#: (chaos route, parameters, expected root-cause endpoint); trials cycle through these.
FAULTS = (
    ("delay", {"endpoint": "/payment", "duration": 2000}, "/payment"),
    ("error", {"endpoint": "/inventory", "rate": 0.8}, "/inventory"),
    ("error", {"endpoint": "/payment", "rate": 1.0}, "/payment"),
    ("delay", {"endpoint": "/inventory", "duration": 500}, "/inventory"),
    ("timeout", {"endpoint": "/payment"}, "/payment"),  # default duration: AIOPS_CHAOS_TIMEOUT_DEFAULT_MS (30 s)
)
LOAD_ROUTES = (("health", "GET", "/health"), ("inventory", "GET", "/inventory"),
               ("payment", "POST", "/payment"), ("checkout", "POST", "/checkout"))


def epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def fault_label(kind: str, params: dict) -> str:
    extra = {"delay": lambda p: f" {p['duration']} ms", "error": lambda p: f" rate {p['rate']:g}",
             "timeout": lambda p: f" {p['duration']} ms" if "duration" in p else " (default 30000 ms)"}[kind]
    return f"{kind} {params['endpoint']}{extra(params)}"


class Server:
    """A real threaded Werkzeug server on 127.0.0.1 and a free port (as tests/conftest.py's LiveServer)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Load:
    """Open loop: every route gets a request every 1/rate s, sent from a pool,
    however long the previous ones take (a hung route does not slow the load)."""

    def __init__(self, base_url: str, rate: float, timeout_s: float = 40.0):
        self.base_url, self.rate, self.timeout_s = base_url, rate, timeout_s
        self.pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix="load")
        self.local = threading.local()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.sent = {name: 0 for name, _, _ in LOAD_ROUTES}
        self.statuses: dict[str, dict[str, int]] = {name: {} for name, _, _ in LOAD_ROUTES}
        self.late_s = 0.0  # worst lag of a send behind its schedule
        self.started = time.time()
        self.threads = [threading.Thread(target=self._route, args=(r, i / len(LOAD_ROUTES)), daemon=True)
                        for i, r in enumerate(LOAD_ROUTES)]
        for t in self.threads:
            t.start()

    def _session(self) -> requests.Session:
        s = getattr(self.local, "session", None)
        if s is None:
            s = self.local.session = requests.Session()
        return s

    def _route(self, route, phase: float) -> None:
        name, method, path = route
        period = 1.0 / self.rate
        next_t = time.monotonic() + phase * period
        while not self.stop_event.is_set():
            delay = next_t - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                break
            self.late_s = max(self.late_s, -delay)
            with self.lock:
                self.sent[name] += 1
            self.pool.submit(self._send, name, method, path)
            next_t += period

    def _send(self, name: str, method: str, path: str) -> None:
        try:
            kwargs = {"json": {"amount": 19.99}} if path == "/payment" else {}
            status = str(self._session().request(method, self.base_url + path, timeout=self.timeout_s,
                                                 **kwargs).status_code)
        except requests.RequestException as exc:
            status = type(exc).__name__
        with self.lock:
            counts = self.statuses[name]
            counts[status] = counts.get(status, 0) + 1

    def snapshot(self) -> dict:
        with self.lock:
            return {"elapsed_s": time.time() - self.started, "sent": dict(self.sent),
                    "statuses": {k: dict(v) for k, v in self.statuses.items()}}

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)


class Client:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str, **params) -> dict:
        r = self.http.get(self.base_url + path, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, **params) -> dict:
        r = self.http.post(self.base_url + path, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def open_incidents(self) -> list[dict]:
        return self.get("/aiops/incidents", status="open", limit=1000)["active_incidents"]

    def resolve_open(self, note: str) -> list[dict]:
        resolved = []
        for inc in self.open_incidents():
            r = self.http.post(f"{self.base_url}/aiops/incidents/{inc['id']}/resolve", json={"note": note},
                               timeout=30)
            if r.status_code == 200:
                resolved.append(inc)
        return resolved


def brief(inc: dict) -> dict:
    return {"id": inc["id"], "title": inc["title"], "severity": inc["severity"],
            "root_cause": inc["root_cause"]["endpoint"], "confidence": inc["root_cause"].get("confidence"),
            "reason": inc["root_cause"].get("reason"), "first_detected": inc["first_detected"],
            "affected": inc["affected_endpoints"]}


def detection_time(inc: dict, expected: str) -> float | None:
    """Analysis time at which ``inc`` named ``expected`` as its root cause."""
    changes = [e for e in inc.get("timeline", []) if e["event"] == "root_cause_changed"]
    if not changes:
        return epoch(inc["first_detected"]) if inc["root_cause"]["endpoint"] == expected else None
    for e in changes:
        if e["detail"].endswith(f"-> {expected}"):
            return epoch(e["at"])
    return None


def run_trial(client: Client, n: int, kind: str, params: dict, expected: str, rng: random.Random,
              interval_s: float, detect_timeout_s: float, say) -> dict:
    wait_s = rng.uniform(0.0, interval_s)
    time.sleep(wait_s)
    stray = client.resolve_open("bench/mttd: resolved before the next injection")
    status = client.get("/aiops/status")
    last_pass = epoch(status["last_pass"]["at"]) if status.get("last_pass") else None
    injected = client.post(f"/simulate/{kind}", **params)["fault"]
    t_inject = epoch(injected["created_at"])
    phase = (t_inject - last_pass) if last_pass else None
    say(f"trial {n}: {fault_label(kind, params)} injected {phase if phase is not None else float('nan'):.1f} s "
        f"after the last pass; expecting root cause {expected} ...")

    first_any = None        # first incident first detected after the injection, any root cause
    found = None            # the incident once it names the expected root cause
    deadline = time.time() + detect_timeout_s
    while time.time() < deadline:
        polled = time.time()
        incidents = client.get("/aiops/incidents", status="all", limit=50)["active_incidents"]
        fresh = sorted((i for i in incidents if epoch(i["first_detected"]) >= t_inject),
                       key=lambda i: i["first_detected"])
        if fresh and first_any is None:
            first_any = {"incident": brief(fresh[0]), "poll_s": polled - t_inject,
                         "incident_s": epoch(fresh[0]["first_detected"]) - t_inject}
        for inc in fresh:
            at = detection_time(inc, expected)
            if at is not None:
                found = {"incident": brief(inc), "poll_s": polled - t_inject, "incident_s": at - t_inject,
                         "root_cause_changed": any(e["event"] == "root_cause_changed" for e in inc["timeline"])}
                break
        if found:
            break
        time.sleep(max(0.0, POLL_S - (time.time() - polled)))
    cleared = client.post("/simulate/clear")
    t_clear = time.time()
    applied = sum(f.get("applied_count", 0) for f in cleared.get("cleared", []))

    shown = found or first_any
    trial = {
        "trial": n, "fault": fault_label(kind, params), "chaos": {"type": kind, **params},
        "expected_root_cause": expected, "random_wait_s": round(wait_s, 3),
        "injected_at": injected["created_at"], "phase_after_last_pass_s": phase,
        "strays_resolved_before_injection": [brief(i) for i in stray],
        "detected": shown is not None, "root_cause_correct": found is not None,
        "detected_root_cause": shown["incident"]["root_cause"] if shown else None,
        "confidence": shown["incident"]["confidence"] if shown else None,
        "mttd_incident_s": found["incident_s"] if found else None,
        "mttd_poll_s": found["poll_s"] if found else None,
        "first_incident": first_any,
        "incident": found["incident"] if found else None,
        "fault_applied_count": applied,
        "injected_at_s": t_inject,
        "cleared_at": t_clear,
    }
    if found:
        say(f"  detected: {found['incident']['id']} root cause {found['incident']['root_cause']} "
            f"(confidence {found['incident']['confidence']}), MTTD {found['incident_s']:.2f} s "
            f"(seen by poll at {found['poll_s']:.2f} s); fault applied to {applied} requests")
    elif first_any:
        say(f"  WRONG root cause: {first_any['incident']['root_cause']} (incident at "
            f"{first_any['incident_s']:.2f} s), never {expected} within {detect_timeout_s:g} s")
    else:
        say(f"  NOT detected within {detect_timeout_s:g} s")
    return trial


def fmt(v, spec=".2f", none="-"):
    return none if v is None else format(v, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="fault injections (default 5; cycle of 5 faults)")
    parser.add_argument("--quick", action="store_true", help="3 trials, 60 s minimum warm-up")
    parser.add_argument("--rate", type=float, default=5.0, help="requests/s per route sent by the load (default 5)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="minimum warm-up seconds before the first trial (default 75; --quick 60)")
    parser.add_argument("--detect-timeout", type=float, default=60.0,
                        help="give up on a trial after this many seconds (default 60)")
    parser.add_argument("--cooldown", type=float, default=None,
                        help="seconds after clearing a fault before the next trial (default window + 1.5 x interval)")
    parser.add_argument("--faults", default="1,2,3,4,5",
                        help="which faults of the cycle to use, in order, 1-based (default 1,2,3,4,5: " +
                        "; ".join(f"{i} {fault_label(k, p)}" for i, (k, p, _) in enumerate(FAULTS, 1)) + ")")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random phases (default: random)")
    parser.add_argument("--json", action="store_true", help="print one JSON document (progress goes to stderr)")
    args = parser.parse_args(argv)
    trials = 3 if args.quick and args.trials == 5 else args.trials
    warmup = args.warmup if args.warmup is not None else (60.0 if args.quick else 75.0)
    if trials < 1 or args.rate <= 0 or warmup < 0:
        parser.error("--trials >= 1, --rate > 0, --warmup >= 0")
    try:
        cycle = [FAULTS[int(i) - 1] for i in args.faults.split(",")]
        if any(int(i) < 1 for i in args.faults.split(",")):
            raise ValueError
    except (ValueError, IndexError):
        parser.error(f"--faults: comma-separated numbers 1..{len(FAULTS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10 ** 6)
    rng = random.Random(seed)
    out = sys.stderr if args.json else sys.stdout

    def say(*a):
        print(*a, file=out, flush=True)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    info = machine_info()
    if not args.json:
        print_machine_info(info)
        print()

    from aiops import AIOps
    from app import create_app
    from telemetry.store import SpanStore

    started = time.time()
    tmpdir = tempfile.mkdtemp(prefix="aiops-mttd-")
    app = create_app({"TELEMETRY_DB_PATH": os.path.join(tmpdir, "telemetry.db")})
    server = Server(app)
    client = Client(server.url)
    load = None
    result: dict = {}
    try:
        status = client.get("/aiops/status")
        interval_s, window_s = status["interval_s"], status["window_s"]
        cooldown = args.cooldown if args.cooldown is not None else window_s + 1.5 * interval_s
        say(f"demo shop on {server.url} (span store {status['db_path']}); analysis every {interval_s:g} s, "
            f"window {window_s:g} s, scheduler running: {status['scheduler_running']}; "
            f"DEMO_ERROR_RATE {app.config.get('DEMO_ERROR_RATE', 0.001)}")
        load = Load(server.url, args.rate)
        say(f"load: {args.rate:g} req/s to each of /health, /inventory, /payment, /checkout (open loop); "
            f"warming up >= {warmup:g} s until every route's baseline is ready ...")
        routes = [p for _, _, p in LOAD_ROUTES]
        while True:
            time.sleep(2.0)
            metrics = client.get("/aiops/metrics")["metrics"]
            ready = all(metrics.get(r, {}).get("baseline_ready") for r in routes)
            if time.time() - started >= warmup and ready:
                break
            if time.time() - started > warmup + 120:
                raise RuntimeError(f"baselines not ready after {time.time() - started:.0f} s: "
                                   + json.dumps({r: metrics.get(r) for r in routes}))
        warm_s = time.time() - started
        rates = {r: metrics[r]["requests_per_s"] for r in routes}
        warmup_incidents = [brief(i) for i in client.get("/aiops/incidents", status="all")["active_incidents"]]
        client.resolve_open("bench/mttd: opened during warm-up")
        say(f"warm-up done after {warm_s:.0f} s; server-side req/s over the last window: "
            + ", ".join(f"{r} {v:.2f}" for r, v in rates.items())
            + f"; incidents during warm-up: {len(warmup_incidents)}")

        results = []
        for n in range(trials):
            kind, params, expected = cycle[n % len(cycle)]
            trial = run_trial(client, n + 1, kind, params, expected, rng, interval_s, args.detect_timeout, say)
            results.append(trial)
            remaining = trial["cleared_at"] + cooldown - time.time()
            say(f"  cleared; cool-down {max(0.0, remaining):.0f} s (window must hold no faulty span) ...")
            time.sleep(max(0.0, remaining))
            # Every incident this trial opened besides the one that named the expected root cause.
            found_id = (trial["incident"] or {}).get("id")
            trial["other_incidents"] = [
                {**brief(i), "opened_after_s": round(epoch(i["first_detected"]) - trial["injected_at_s"], 2),
                 "before_clear": epoch(i["first_detected"]) < trial["cleared_at"]}
                for i in client.get("/aiops/incidents", status="all", limit=1000)["active_incidents"]
                if epoch(i["first_detected"]) >= trial["injected_at_s"] and i["id"] != found_id]
            for o in trial["other_incidents"]:
                say(f"  other incident {o['id']}: root cause {o['root_cause']} ({o['title']}), opened "
                    f"{o['opened_after_s']:.1f} s after the injection, {'before' if o['before_clear'] else 'after'}"
                    f" the clear")
            trial["resolved_after_cooldown"] = [i["id"] for i in client.resolve_open("bench/mttd: trial over")]

        load_stats = load.snapshot()
        status = client.get("/aiops/status")
        after_last = client.get("/aiops/incidents", status="all", limit=1000)["active_incidents"]
        ok = [t for t in results if t["mttd_incident_s"] is not None]
        mttd_inc = [t["mttd_incident_s"] if t["mttd_incident_s"] is not None else float("inf") for t in results]
        mttd_poll = [t["mttd_poll_s"] if t["mttd_poll_s"] is not None else float("inf") for t in results]
        median_inc, median_poll = statistics.median(mttd_inc), statistics.median(mttd_poll)
        result = {
            "benchmark": "mttd", "machine": info, "seed": seed,
            "settings": {"interval_s": interval_s, "window_s": window_s, "scheduler": status["scheduler_running"],
                         "rate_per_route": args.rate, "faults": args.faults, "warmup_s": round(warm_s, 1),
                         "cooldown_s": cooldown,
                         "detect_timeout_s": args.detect_timeout, "poll_s": POLL_S},
            "warmup": {"server_requests_per_s": rates, "incidents": warmup_incidents},
            "trials": results,
            "median_mttd_incident_s": median_inc, "max_mttd_incident_s": max(mttd_inc),
            "median_mttd_poll_s": median_poll, "max_mttd_poll_s": max(mttd_poll),
            "root_cause_correct": len(ok), "trials_run": len(results),
            "false_positives_between_trials": sum(len(t["strays_resolved_before_injection"]) for t in results),
            "other_incidents_during_trials": sum(len(t["other_incidents"]) for t in results),
            "target_median_s": TARGET_MEDIAN_S, "meets_target": median_inc <= TARGET_MEDIAN_S,
            "incidents_total": len(after_last),
            "load": load_stats,
            "analysis": {"passes": status["passes"], "failed_passes": status["failed_passes"],
                         "last_error": status["last_error"], "last_pass": status["last_pass"],
                         "telemetry": status["telemetry"]},
            "total_s": round(time.time() - started, 1),
        }
    finally:
        try:
            client.post("/simulate/clear")
        except requests.RequestException:
            pass
        if load is not None:
            load.stop()
        AIOps.shutdown(app)
        server.stop()
        SpanStore.close_all(timeout=5.0)
        shutil.rmtree(tmpdir, ignore_errors=True)

    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    r = result
    print()
    print(f"MTTD at default settings (interval {r['settings']['interval_s']:g} s, window "
          f"{r['settings']['window_s']:g} s), {args.rate:g} req/s per route (/inventory and /payment "
          f"{2 * args.rate:g} req/s with /checkout's calls); random phase seed {seed}")
    print(f"  {'#':>2} {'fault':<37} {'expected':<11} {'detected':<11} {'ok':<3} {'conf':>5} "
          f"{'MTTD s':>7} {'poll s':>7} {'phase s':>7} {'other':>5}  incident")
    for t in r["trials"]:
        inc = t["incident"] or (t["first_incident"] or {}).get("incident") or {}
        print(f"  {t['trial']:>2} {t['fault']:<37} {t['expected_root_cause']:<11} "
              f"{t['detected_root_cause'] or 'none':<11} {'yes' if t['root_cause_correct'] else 'NO':<3} "
              f"{fmt(t['confidence'], '.2f'):>5} {fmt(t['mttd_incident_s']):>7} {fmt(t['mttd_poll_s']):>7} "
              f"{fmt(t['phase_after_last_pass_s'], '.1f'):>7} {len(t['other_incidents']):>5}  "
              f"{inc.get('id', '-')} {inc.get('title', '')}")
    print(f"  MTTD (incident time) median {r['median_mttd_incident_s']:.2f} s, max {r['max_mttd_incident_s']:.2f} s;"
          f" (poll time) median {r['median_mttd_poll_s']:.2f} s, max {r['max_mttd_poll_s']:.2f} s")
    print(f"  root cause right in {r['root_cause_correct']}/{r['trials_run']} trials; "
          f"false positives (incidents opened on a clean window between trials): "
          f"{r['false_positives_between_trials']}; incidents during warm-up: {len(r['warmup']['incidents'])}")
    print(f"  other incidents opened during the trials (a root cause other than the expected one, or a "
          f"second incident): {r['other_incidents_during_trials']}")
    for t in r["trials"]:
        for o in t["other_incidents"]:
            print(f"    trial {t['trial']}: {o['id']} root cause {o['root_cause']} (confidence {o['confidence']}), "
                  f"{o['title']}; opened {o['opened_after_s']:.1f} s after the injection, "
                  f"{'before' if o['before_clear'] else 'after'} the clear")
    print(f"  target: median <= {TARGET_MEDIAN_S:g} s: {'met' if r['meets_target'] else 'NOT met'}")
    ls = r["load"]
    print(f"load: {ls['elapsed_s']:.0f} s, sent " + ", ".join(
        f"{k} {v} ({v / ls['elapsed_s']:.2f}/s)" for k, v in ls["sent"].items()) + "; answers "
        + "; ".join(f"{k} {sorted(v.items())}" for k, v in ls["statuses"].items()))
    a = r["analysis"]
    print(f"analysis: {a['passes']} passes, {a['failed_passes']} failed; last pass "
          f"{(a['last_pass'] or {}).get('duration_ms')} ms over {(a['last_pass'] or {}).get('spans_in_window')} "
          f"spans; telemetry {a['telemetry']}")
    print("isolation: one app for all trials (a fresh app would need >= 60 s of warm-up per trial, longer than "
          f"the cool-down); after each clear, {r['settings']['cooldown_s']:g} s so no faulty span is left in the "
          f"{r['settings']['window_s']:g} s window and a pass ran on a clean window, then open incidents resolved.")
    print(f"total run time {r['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
