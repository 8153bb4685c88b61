"""SLO evaluation cost vs the number of SLOs and the spans stored.

For each store size (``--spans``, default 10k and 1M) a SQLite span store is
built in a temp dir (``telemetry.store`` schema and indexes) with spans of
one service and 10 routes spread evenly over the last 30 days, 2 % errors,
log-uniform latencies. The per-minute counts are folded once (timed:
``rollup, first``). Then for each number of SLOs (``--slos``, default 1, 10,
100; 30-day availability and latency SLOs over the routes, one in ten
service-wide):

* **ours**: ``SLOEngine.compute`` (what every analysis pass runs): fold the
  spans new since the last pass (``--new`` spans, default 1,000, inserted
  untimed before each run), then for each SLO one indexed range scan of the
  per-minute counts (at most 43,200 rows for 30 days), burn rates over 13
  windows, budget, alert rules and the snapshot/alert writes;
* **naive**: the same window counts taken straight from the span table,
  one query per SLO over the ``(service, route, start_time)`` index with a
  ``CASE`` per window (the way to do it without rollups), maths excluded.

Reported: median ms per evaluation of ``--runs`` runs, naive/ours, and the
rows each reads. The naive cost grows with the spans in the SLO window;
ours with the minutes in it.

    .venv/bin/python bench/slo.py [--spans 10000 1000000] [--slos 1 10 100] [--runs 5] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiops.slo.budgets import windows_needed_s
from aiops.slo.config import SLOSettings
from aiops.slo.definitions import LATENCY_BUCKETS_MS, validate_slo  # noqa: E402
from aiops.slo.engine import SLOEngine  # noqa: E402
from aiops.store.database import Database  # noqa: E402
from bench._common import machine_info, median, print_machine_info  # noqa: E402
from telemetry.store import INSERT_SPAN as _INSERT, connect  # noqa: E402

DAY = 86400.0
ROUTES = [f"/api/r{i}" for i in range(10)]


def rows(n: int, end_s: float, days: float, seed: int, first_id: int = 0):
    rng = random.Random(seed)
    span_s = days * DAY
    for i in range(n):
        route = ROUTES[i % len(ROUTES)]
        at = end_s - span_s + span_s * (i + 0.5) / n
        error = rng.random() < 0.02
        k = first_id + i
        yield (f"{k:032x}", f"{k:016x}", None, "shop", route, "GET", route, 500 if error else 200, at,
               10 ** rng.uniform(0.3, 3.3), 1 if error else 0, None, None, None)


def insert(conn, it, chunk=100_000) -> int:
    n, batch = 0, []
    for row in it:
        batch.append(row)
        if len(batch) == chunk:
            conn.execute("BEGIN"); conn.executemany(_INSERT, batch); conn.execute("COMMIT")  # noqa: E702
            n += len(batch)
            batch = []
    if batch:
        conn.execute("BEGIN"); conn.executemany(_INSERT, batch); conn.execute("COMMIT")  # noqa: E702
        n += len(batch)
    return n


def slo_defs(k: int):
    out = []
    for i in range(k):
        route = None if i % 10 == 9 else ROUTES[i % len(ROUTES)]
        if i % 2:
            raw = {"indicator": "latency", "threshold_ms": LATENCY_BUCKETS_MS[5 + i % 10], "target": 0.95}
        else:
            raw = {"indicator": "availability", "target": 0.99}
        out.append(validate_slo({**raw, "service": "shop", "name": f"slo-{i}", **({"route": route} if route else {})}))
    return out


def naive_counts(conn, slo, now_s: float) -> tuple:
    """Window counts straight from spans (one query, a CASE per window)."""
    windows = windows_needed_s(slo)
    bad = "error" if slo.indicator != "latency" else f"(duration_ms > {slo.threshold_ms})"
    cols = ", ".join(f"sum(CASE WHEN start_time >= {now_s - w} THEN 1 ELSE 0 END), "
                     f"sum(CASE WHEN start_time >= {now_s - w} THEN {bad} ELSE 0 END)" for w in windows)
    if slo.route is None:
        return conn.execute(f"SELECT {cols} FROM spans WHERE service = ? AND start_time >= ? AND start_time <= ?",
                            (slo.service, now_s - max(windows), now_s)).fetchone()
    return conn.execute(f"SELECT {cols} FROM spans WHERE service = ? AND route = ? AND start_time >= ? "
                        "AND start_time <= ?", (slo.service, slo.route, now_s - max(windows), now_s)).fetchone()


def run_size(n_spans: int, slo_counts: list[int], runs: int, new: int, tmp: str) -> dict:
    path = os.path.join(tmp, f"slo-{n_spans}.db")
    conn = connect(path)
    now = time.time()
    insert(conn, rows(n_spans, now - 60, 30.0, seed=n_spans))
    next_id = n_spans
    store = Database(path)
    engine = SLOEngine(store, SLOSettings())
    t = time.perf_counter()
    engine.store.rollup()
    first_rollup_ms = (time.perf_counter() - t) * 1000.0
    minute_rows = conn.execute("SELECT count(*) FROM aiops_slo_minutes").fetchone()[0]
    out = {"spans": n_spans, "first_rollup_ms": round(first_rollup_ms, 1), "minute_rows": minute_rows, "by_slos": []}
    for k in slo_counts:
        conn.execute("DELETE FROM aiops_slos")
        conn.execute("DELETE FROM aiops_slo_latest")
        engine.load_definitions([], slo_defs(k), now)
        ours, naive = [], []
        for r in range(runs):
            insert(conn, rows(new, now, 60.0 / DAY, seed=r, first_id=next_id))  # the last minute's new spans
            next_id += new
            t = time.perf_counter()
            result = engine.compute(now)
            ours.append((time.perf_counter() - t) * 1000.0)
            assert len(result.snapshots) == k and result.spans_rolled_up == new
            t = time.perf_counter()
            for slo in engine.store.slos():
                naive_counts(conn, slo, now)
            naive.append((time.perf_counter() - t) * 1000.0)
        # same counts both ways (the rollup counts whole minutes; compare the 30-day totals)
        slo = engine.store.slos()[0]
        mine = engine.store.window_counts(slo, [30 * DAY], now)[30 * DAY]
        theirs = naive_counts(conn, slo, now + 60)
        assert abs(mine.total - theirs[-2]) <= new, (mine, theirs)
        row = {"slos": k, "ours_ms": round(median(ours), 2), "naive_ms": round(median(naive), 2),
               "naive_over_ours": round(median(naive) / median(ours), 1),
               "ours_ms_per_slo": round(median(ours) / k, 3)}
        out["by_slos"].append(row)
        print(f"  {n_spans:>9,} spans  {k:>4} SLOs   ours {row['ours_ms']:>9.2f} ms "
              f"({row['ours_ms_per_slo']:.3f} ms/SLO)"
              f"   naive {row['naive_ms']:>10.2f} ms   naive/ours {row['naive_over_ours']:>6.1f}x", flush=True)
    store.close()
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--slos", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--new", type=int, default=1000, help="spans stored between two evaluations")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    info = machine_info()
    print_machine_info(info)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.spans:
            res = run_size(n, args.slos, args.runs, args.new, tmp)
            print(f"  {n:>9,} spans: first rollup {res['first_rollup_ms']:.0f} ms, "
                  f"{res['minute_rows']:,} per-minute rows", flush=True)
            results.append(res)
    if args.json:
        print(json.dumps({"machine": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
