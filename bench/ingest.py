"""Ingest throughput of the span store, and requests/s under wrk, bare vs instrumented.

1. Writer throughput (``telemetry.store.SpanStore`` used directly, realistic
   span tuples: varied routes, services, trace trees, errors with stack traces):
   * end to end: enqueue N spans into a fresh store (default intervals) and
     flush; time from the first enqueue to the end of the flush;
   * write only: enqueue N spans while the writer is held (its flush interval
     is an hour, so it sleeps), then time ``flush()`` alone;
   * write only into a table that already holds those N rows (indexes grown).
2. ``wrk`` against ``gunicorn`` serving a trivial Flask route (bench/_wrk_app.py),
   bare and with ``Telemetry(app)``, alternated (bare, instr, bare, instr, ...),
   medians reported; after each instrumented run the DB is read and the stored
   spans compared with the requests wrk counted.

    .venv/bin/python bench/ingest.py [--spans 200000] [--duration 10] [--skip-wrk] [--json]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import (
    REPO_ROOT,
    count_rows,
    cpu_delta,
    cpu_snapshot,
    machine_info,
    median,
    print_machine_info,  # noqa: E402
)
from telemetry.store import SPAN_COLUMNS, SpanStore  # noqa: E402

WRITER_TARGET = 50_000  # spans/s

# (service, method, route, path maker) - what the demo shop and its neighbours serve.
_ROUTES = (
    ("shop", "GET", "/", lambda r: "/"),
    ("shop", "GET", "/api/products", lambda r: "/api/products"),
    ("shop", "GET", "/api/products/<int:product_id>", lambda r: f"/api/products/{r.randint(1, 5000)}"),
    ("shop", "GET", "/api/search", lambda r: "/api/search"),
    ("shop", "POST", "/api/cart/<cart_id>/items", lambda r: f"/api/cart/{r.getrandbits(48):012x}/items"),
    ("shop", "DELETE", "/api/cart/<cart_id>/items/<int:item_id>",
     lambda r: f"/api/cart/{r.getrandbits(48):012x}/items/{r.randint(1, 50)}"),
    ("shop", "POST", "/api/checkout", lambda r: "/api/checkout"),
    ("shop", "GET", "/api/orders/<int:order_id>", lambda r: f"/api/orders/{r.randint(1, 10 ** 6)}"),
    ("shop", "GET", "/health", lambda r: "/health"),
    ("shop", "GET", "<unmatched>", lambda r: f"/wp-login-{r.randint(1, 999)}.php"),
)
_CHILD_ROUTES = (
    ("inventory", "GET", "/stock/<int:product_id>", lambda r: f"/stock/{r.randint(1, 5000)}"),
    ("inventory", "POST", "/reserve", lambda r: "/reserve"),
    ("payments", "POST", "/charge", lambda r: "/charge"),
    ("recommendations", "GET", "/similar/<int:product_id>", lambda r: f"/similar/{r.randint(1, 5000)}"),
)
_EXCEPTIONS = (
    ("sqlite3.OperationalError", "database is locked"),
    ("requests.exceptions.ConnectTimeout", "HTTPConnectionPool(host='payments', port=80): Max retries exceeded"),
    ("KeyError", "'sku'"),
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
)


def _stacktrace(r: random.Random, exc_type: str, message: str) -> str:
    frames = "".join(
        f'  File "/srv/app/{mod}.py", line {r.randint(10, 900)}, in {fn}\n    {code}\n'
        for mod, fn, code in r.sample([
            ("flask/app", "full_dispatch_request", "rv = self.dispatch_request()"),
            ("flask/app", "dispatch_request",
             "return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)"),
            ("shop/views", "checkout", "order = orders.place(cart, payment)"),
            ("shop/orders", "place", "stock.reserve(cart.items)"),
            ("shop/stock", "reserve", "row = conn.execute(SQL_RESERVE, params).fetchone()"),
            ("shop/payments", "charge", "resp = session.post(url, json=body, timeout=2)"),
            ("shop/cart", "load", "return self.items[key]"),
        ], 5))
    return f"Traceback (most recent call last):\n{frames}{exc_type}: {message}\n"


def make_spans(n: int, seed: int = 1234) -> list[tuple]:
    """``n`` span tuples in ``SPAN_COLUMNS`` order: traces of 1-4 spans (a shop
    root span and calls to other services), ~3 % 4xx, ~1 % errors with stack
    traces, log-normal durations, start times spread over the last hour."""
    r = random.Random(seed)
    spans: list[tuple] = []
    t = time.time() - 3600.0
    step = 3600.0 / max(n, 1)
    while len(spans) < n:
        trace_id = f"{r.getrandbits(128) or 1:032x}"
        root_id = f"{r.getrandbits(64) or 1:016x}"
        incoming_parent = f"{r.getrandbits(64) or 1:016x}" if r.random() < 0.2 else None  # traced by a caller
        kids = r.choice((0, 0, 1, 2, 3))
        trace = [(root_id, incoming_parent, r.choice(_ROUTES))]
        trace += [(f"{r.getrandbits(64) or 1:016x}", root_id, r.choice(_CHILD_ROUTES)) for _ in range(kids)]
        for span_id, parent, (service, method, route, path_of) in trace:
            x = r.random()
            exc_type = exc_message = stack = None
            if route == "<unmatched>":
                status = 404
            elif x < 0.01:
                status = 500
                exc_type, exc_message = r.choice(_EXCEPTIONS)
                stack = _stacktrace(r, exc_type, exc_message)
            elif x < 0.03:
                status = r.choice((400, 404, 409, 422))
            elif method == "POST":
                status = 201
            else:
                status = 200
            duration_ms = r.lognormvariate(2.0, 1.0)
            spans.append((
                trace_id, span_id, parent, service, route, method, path_of(r), status,
                t + r.random() * 0.01, duration_ms, 1 if status >= 500 else 0, exc_type, exc_message, stack,
            ))
            t += step
    del spans[n:]
    assert all(len(s) == len(SPAN_COLUMNS) for s in spans[:10])
    return spans


# -- 1. writer throughput ------------------------------------------------------------


def _check_store(store: SpanStore, db_path: str, expected: int) -> dict:
    s = store.stats()
    rows = count_rows(db_path)
    return {"written": s.written, "db_rows": rows, "dropped_spans": s.dropped_spans,
            "write_errors": s.write_errors, "queued": s.queued, "ok": s.written == rows == expected
            and s.dropped_spans == 0 and s.write_errors == 0}


def writer_end_to_end(spans: list[tuple], db_path: str) -> dict:
    store = SpanStore(db_path, max_queue=len(spans) + 1000)
    try:
        enqueue = store.enqueue
        t0 = time.perf_counter()
        for span in spans:
            enqueue(span)
        t_enq = time.perf_counter()
        flushed = store.flush(300)
        t1 = time.perf_counter()
        check = _check_store(store, db_path, len(spans))
    finally:
        store.close(60)
    return {"seconds": t1 - t0, "enqueue_seconds": t_enq - t0, "spans_per_s": len(spans) / (t1 - t0),
            "flushed": flushed, **check}


def _retraced(spans: list[tuple], seed: int = 99) -> list[tuple]:
    """The same spans under new random trace ids (same trace grouping)."""
    r = random.Random(seed)
    ids: dict[str, str] = {}
    return [(ids.setdefault(s[0], f"{r.getrandbits(128) or 1:032x}"),) + s[1:] for s in spans]


def writer_write_only(spans: list[tuple], db_path: str) -> dict:
    """Enqueue with the writer asleep (1 h flush interval), then time flush();
    then do it again into the now-populated table."""
    store = SpanStore(db_path, max_queue=len(spans) + 1000, flush_interval_s=3600.0)
    out = {}
    try:
        for phase, expected in (("empty_table", len(spans)), ("populated_table", 2 * len(spans))):
            batch = spans if phase == "empty_table" else _retraced(spans)
            enqueue = store.enqueue
            written_before = store.written
            for span in batch:
                enqueue(span)
            held = store.written == written_before and store.stats().queued == len(batch)
            t0 = time.perf_counter()
            flushed = store.flush(300)
            t1 = time.perf_counter()
            check = _check_store(store, db_path, expected)
            out[phase] = {"seconds": t1 - t0, "spans_per_s": len(batch) / (t1 - t0), "writer_was_held": held,
                          "flushed": flushed, **check}
    finally:
        store.close(60)
    return out


def run_writer(n: int, repeat: int, tmpdir: str, quiet: bool) -> dict:
    spans = make_spans(n)
    runs = {"end_to_end": [], "write_only": [], "write_only_populated": []}
    for i in range(repeat):
        e2e = writer_end_to_end(spans, os.path.join(tmpdir, f"e2e-{i}.db"))
        wo = writer_write_only(spans, os.path.join(tmpdir, f"write-only-{i}.db"))
        runs["end_to_end"].append(e2e)
        runs["write_only"].append(wo["empty_table"])
        runs["write_only_populated"].append(wo["populated_table"])
        if not quiet:
            print(f"  writer run {i + 1}/{repeat}: end-to-end {e2e['spans_per_s']:9,.0f} spans/s   "
                  f"write-only {wo['empty_table']['spans_per_s']:9,.0f} spans/s   "
                  f"write-only into {n:,} rows {wo['populated_table']['spans_per_s']:9,.0f} spans/s", flush=True)
    size = os.path.getsize(os.path.join(tmpdir, "e2e-0.db"))
    return {
        "spans": n,
        "repeat": repeat,
        "error_spans": sum(1 for s in spans if s[10]),
        "db_bytes_per_span": size / n,
        "median_spans_per_s": {k: median([r["spans_per_s"] for r in v]) for k, v in runs.items()},
        "median_enqueue_us_per_span": median([r["enqueue_seconds"] / n * 1e6 for r in runs["end_to_end"]]),
        "runs": runs,
        "all_ok": all(r["ok"] for v in runs.values() for r in v)
        and all(r["writer_was_held"] for r in runs["write_only"] + runs["write_only_populated"]),
    }


# -- 2. wrk against gunicorn ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 1.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode() if resp.status == 200 else None
    except OSError:
        return None


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("could not parse wrk output:\n" + out)
    res["requests_per_s"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1))
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    res["latency_avg_ms"], res["latency_stdev_ms"], res["latency_max_ms"] = (_ms(x) for x in m.groups())
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"latency_p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    return res


def run_server_once(gunicorn: str, wrk: str, instrumented: bool, args, tmpdir: str, run_no: int) -> dict:
    cpu_before = cpu_snapshot()
    port = _free_port()
    db_path = os.path.join(tmpdir, f"wrk-{run_no}.db")
    stats_dir = os.path.join(tmpdir, f"stats-{run_no}")
    os.makedirs(stats_dir)
    env = dict(os.environ, BENCH_TELEMETRY="1" if instrumented else "0", TELEMETRY_DB_PATH=db_path,
               BENCH_STATS_DIR=stats_dir, PYTHONPATH=REPO_ROOT)
    log_path = os.path.join(tmpdir, f"gunicorn-{run_no}.log")
    cmd = [gunicorn, "-w", str(args.workers), "--threads", "1", "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", "bench._wrk_app:app"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    probes = 0
    try:
        pids: set[str] = set()
        deadline = time.monotonic() + 30
        while len(pids) < args.workers:  # every worker booted and answering
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up (see {log_path}):\n" + open(log_path).read()[-2000:])
            pid = _get(base + "/_pid")
            if pid:
                pids.add(pid)
            else:
                time.sleep(0.05)
        for _ in range(args.warmup_requests):  # untimed warm-up, counted in the span check
            if _get(base + "/ping") is not None:
                probes += 1
        out = subprocess.run([wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                              base + "/ping"], capture_output=True, text=True, check=True).stdout
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: workers run atexit (flush) before exiting
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result = parse_wrk(out)
    result["variant"] = "instrumented" if instrumented else "bare"
    result["cpu"] = cpu_delta(cpu_before, cpu_snapshot())  # server start to stop, incl. gunicorn and wrk
    result["gunicorn_exit_code"] = proc.returncode
    if instrumented:
        workers = []
        for path in sorted(glob.glob(os.path.join(stats_dir, "worker-*.json"))):
            with open(path, encoding="utf-8") as f:
                workers.append(json.load(f))
        served = result["requests"] + probes
        stored = count_rows(db_path, "route = ?", ("/ping",)) if os.path.exists(db_path) else 0
        result.update({
            "warmup_requests": probes,
            "ping_requests_sent": served,
            "ping_spans_stored": stored,
            "worker_stats": workers,
            "dropped_spans": sum(w["dropped_spans"] for w in workers),
            "write_errors": sum(w["write_errors"] for w in workers),
            "internal_errors": sum(w["internal_errors"] for w in workers),
            "workers_reporting": len(workers),
        })
    log_text = open(log_path, encoding="utf-8", errors="replace").read().strip()
    if log_text:
        result["gunicorn_log_tail"] = log_text[-1500:]
    return result


def run_wrk(args, tmpdir: str, quiet: bool) -> dict:
    gunicorn = _find_gunicorn()
    wrk = shutil.which("wrk")
    runs = []
    for _pair in range(args.pairs):
        for instrumented in (False, True):
            r = run_server_once(gunicorn, wrk, instrumented, args, tmpdir, len(runs))
            runs.append(r)
            if not quiet:
                line = (f"  wrk run {len(runs)}/{2 * args.pairs} {r['variant']:<12} {r['requests_per_s']:9,.0f} req/s"
                        f"  p50 {r.get('latency_p50_ms', float('nan')):6.2f} ms"
                        f"  p99 {r.get('latency_p99_ms', float('nan')):6.2f} ms")
                line += f"  other procs' cpu {r['cpu']['other_cpu_s']:4.1f} s, steal {r['cpu']['steal_cpu_s']:4.1f} s"
                if instrumented:
                    line += (f"  spans stored {r['ping_spans_stored']:,} / requests {r['ping_requests_sent']:,}"
                             f"  dropped {r['dropped_spans']:,}")
                print(line, flush=True)
    by = {v: [r for r in runs if r["variant"] == v] for v in ("bare", "instrumented")}
    med = {v: {k: median([r[k] for r in rs]) for k in ("requests_per_s", "latency_avg_ms", "latency_p50_ms",
                                                      "latency_p99_ms")} for v, rs in by.items()}
    return {
        "workers": args.workers,
        "threads_per_worker": 1,
        "connections": args.connections,
        "wrk_threads": 2,
        "duration_s": args.duration,
        "pairs": args.pairs,
        "medians": med,
        "instrumented_vs_bare_rps_percent": 100.0 * med["instrumented"]["requests_per_s"]
        / med["bare"]["requests_per_s"],
        "runs": runs,
    }


def _find_gunicorn() -> str | None:
    local = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    return local if os.access(local, os.X_OK) else shutil.which("gunicorn")


# -- main -------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=200_000, help="spans per writer run (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="writer runs, median reported (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--pairs", type=int, default=2, help="(bare, instrumented) wrk run pairs (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--warmup-requests", type=int, default=200,
                        help="sequential requests before each wrk run (default 200)")
    parser.add_argument("--skip-wrk", action="store_true", help="only measure the writer")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the text report")
    args = parser.parse_args(argv)
    if min(args.spans, args.repeat, args.duration, args.pairs, args.workers, args.connections) < 1:
        parser.error("numbers must be >= 1")

    if not args.skip_wrk:
        missing = [name for name, path in (("wrk", shutil.which("wrk")), ("gunicorn", _find_gunicorn())) if not path]
        if missing:
            print(f"error: {' and '.join(missing)} not found (install it, or run with --skip-wrk)", file=sys.stderr)
            return 2

    info = machine_info()
    quiet = args.json
    if not quiet:
        print_machine_info(info)
        print(flush=True)
    with tempfile.TemporaryDirectory(prefix="telemetry-ingest-") as tmpdir:
        writer = run_writer(args.spans, args.repeat, tmpdir, quiet)
        wrk = None if args.skip_wrk else run_wrk(args, tmpdir, quiet)

    result = {"benchmark": "ingest", "machine": info, "writer": writer, "wrk": wrk,
              "writer_target_spans_per_s": WRITER_TARGET}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        m = writer["median_spans_per_s"]
        print()
        print(f"writer: {writer['spans']:,} realistic spans per run ({writer['error_spans']:,} with errors/stack "
              f"traces), median of {writer['repeat']} runs, default batch size {SpanStore.__init__.__defaults__[1]}, "
              f"{writer['db_bytes_per_span']:.0f} DB bytes/span")
        print(f"  end to end (first enqueue -> flush done) : {m['end_to_end']:10,.0f} spans/s "
              f"(enqueue alone {writer['median_enqueue_us_per_span']:.2f} us/span)")
        print(f"  write only (flush of a pre-filled queue) : {m['write_only']:10,.0f} spans/s")
        print(f"  write only, table already {writer['spans']:,} rows  : {m['write_only_populated']:10,.0f} spans/s")
        print(f"  target >= {WRITER_TARGET:,} spans/s; every run stored all spans, no drops: "
              f"{'yes' if writer['all_ok'] else 'NO'}")
        if wrk:
            b, i = wrk["medians"]["bare"], wrk["medians"]["instrumented"]
            print()
            print(f"wrk -t2 -c{wrk['connections']} -d{wrk['duration_s']}s against gunicorn -w {wrk['workers']} "
                  f"--threads 1 (sync workers), GET /ping, {wrk['pairs']} alternating pairs, medians.")
            print(f"  NOTE: wrk, the gunicorn master/workers and the telemetry writer threads all share these "
                  f"{info['cpus']} CPU(s); figures are for relative comparison only.")
            print(f"  {'variant':<13} {'req/s':>10} {'avg ms':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for name, v in (("bare", b), ("instrumented", i)):
                print(f"  {name:<13} {v['requests_per_s']:10,.0f} {v['latency_avg_ms']:8.2f} "
                      f"{v['latency_p50_ms']:8.2f} {v['latency_p99_ms']:8.2f}")
            print(f"  instrumented / bare req/s: {wrk['instrumented_vs_bare_rps_percent']:.1f} %  (per run: "
                  + ", ".join(f"{r['variant'][:5]} {r['requests_per_s']:,.0f}" for r in wrk["runs"]) + ")")
            other = max(r["cpu"]["other_cpu_s"] for r in wrk["runs"])
            print(f"  CPU used by processes other than this benchmark during a run: at most {other:.1f} s "
                  f"(steal at most {max(r['cpu']['steal_cpu_s'] for r in wrk['runs']):.1f} s)")
            for r in wrk["runs"]:
                if r["variant"] == "instrumented":
                    print(f"  instrumented run: spans stored {r['ping_spans_stored']:,} vs /ping requests "
                          f"{r['ping_requests_sent']:,} (wrk {r['requests']:,} + warm-up {r['warmup_requests']}); "
                          f"dropped_spans {r['dropped_spans']}, write_errors {r['write_errors']}, "
                          f"internal_errors {r['internal_errors']}, workers reporting {r['workers_reporting']}/"
                          f"{wrk['workers']}; wrk socket errors {r['socket_errors']}, non-2xx {r['non_2xx']}")
            for r in wrk["runs"]:
                if "gunicorn_log_tail" in r:
                    print(f"  gunicorn log ({r['variant']}): {r['gunicorn_log_tail'][-300:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
