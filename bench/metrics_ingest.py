"""Pushed-metric ingestion and judging: how fast, compared with a plain executemany.

1. Store: ``MetricStore.insert_metrics`` (one transaction, labels as JSON,
   two indexes) vs a bare ``executemany`` of the same rows into an
   unindexed table of the same shape in its own file (the floor SQLite
   allows), and vs the same bare insert with the two indexes.
2. Validation: ``parse_metric_batch`` points/s (pure Python).
3. HTTP: ``POST /aiops/metrics/ingest`` batches of ``--batch`` points from
   ``--clients`` threads against a threaded Werkzeug server on loopback.
4. Judging: one analysis pass over ``--series`` fresh series of 420 points
   (a scenario's size) with the online detector.

    .venv/bin/python bench/metrics_ingest.py [--points 200000] [--batch 5000] [--clients 2] [--series 20] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiops.analysis.store import AnalysisStore  # noqa: E402
from aiops.metrics.detect import MetricSignals  # noqa: E402
from aiops.metrics.model import MetricPoint, parse_metric_batch  # noqa: E402
from aiops.metrics.store import MetricStore  # noqa: E402
from bench._common import machine_info, median, print_machine_info  # noqa: E402

T0 = 1_800_000_000.0


def raw_points(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    services = [f"svc-{i}" for i in range(10)]
    names = ["cpu_usage_percent", "memory_usage_bytes", "http_requests_per_second", "db_query_duration_seconds",
             "pod_restarts_total"]
    return [{"timestamp": T0 + i * 0.5, "service": rng.choice(services), "name": rng.choice(names),
             "value": rng.random() * 100, "labels": {"pod": f"p-{rng.randint(1, 5)}", "region": "eu"}}
            for i in range(n)]


def bench_store(points: list[MetricPoint], batch: int, repeats: int) -> dict:
    rows = [(p.timestamp_s, p.service, p.name, p.value, json.dumps(p.labels, sort_keys=True, separators=(",", ":")))
            for p in points]
    ours, bare, bare_idx = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            store = MetricStore(os.path.join(d, "a.db"))
            t = time.perf_counter()
            for i in range(0, len(points), batch):
                store.insert_metrics(points[i:i + batch])
            ours.append(len(points) / (time.perf_counter() - t))
            store.close()
            for indexed, out in ((False, bare), (True, bare_idx)):
                conn = sqlite3.connect(os.path.join(d, f"bare{indexed}.db"), isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE m (ts REAL, service TEXT, name TEXT, value REAL, labels TEXT)")
                if indexed:
                    conn.execute("CREATE INDEX m1 ON m (service, name, ts)")
                    conn.execute("CREATE INDEX m2 ON m (ts)")
                t = time.perf_counter()
                for i in range(0, len(rows), batch):
                    conn.execute("BEGIN")
                    conn.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", rows[i:i + batch])
                    conn.execute("COMMIT")
                out.append(len(rows) / (time.perf_counter() - t))
                conn.close()
    return {"ours_points_per_s": median(ours), "bare_executemany_points_per_s": median(bare),
            "bare_executemany_indexed_points_per_s": median(bare_idx),
            "ratio_vs_bare": median(ours) / median(bare), "ratio_vs_bare_indexed": median(ours) / median(bare_idx)}


def bench_parse(raw: list[dict], batch: int) -> dict:
    t = time.perf_counter()
    for i in range(0, len(raw), batch):
        parse_metric_batch(raw[i:i + batch], max_points=batch)
    return {"parse_points_per_s": len(raw) / (time.perf_counter() - t)}


def bench_http(raw: list[dict], batch: int, clients: int) -> dict:
    import logging

    import requests
    from flask import Flask
    from werkzeug.serving import make_server

    from aiops import AIOps
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        app = Flask(__name__)
        app.config.update({"AIOPS_DB_PATH": os.path.join(d, "h.db"), "AIOPS_SCHEDULER": False})
        AIOps(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}/aiops/metrics/ingest"
        bodies = [json.dumps(raw[i:i + batch]) for i in range(0, len(raw), batch)]
        stored, latencies = [0], []
        lock = threading.Lock()

        def client(k: int) -> None:
            session = requests.Session()
            for body in bodies[k::clients]:
                t = time.perf_counter()
                r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120)
                with lock:
                    latencies.append((time.perf_counter() - t) * 1000)
                    stored[0] += r.json()["stored"]

        t = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        count = len(AIOps.feature(app, "metrics").store.metric_series(limit=10 ** 7))
        server.shutdown()
        server.server_close()
        AIOps.shutdown(app)
    return {"http_points_per_s": stored[0] / elapsed, "http_batch_median_ms": median(latencies),
            "http_stored": stored[0], "rows_in_table": count}


def bench_judge(series: int) -> dict:
    from aiops.analysis.config import AnalysisConfig
    from aiops.analysis.engine import Analyzer
    from simulation.generators import generate
    from simulation.scenarios import get_scenario
    scenario = get_scenario("memory_leak_gradual")
    with tempfile.TemporaryDirectory() as d:
        store = AnalysisStore(os.path.join(d, "j.db"))
        metrics = MetricStore(store.db)
        analyzer = Analyzer(store, AnalysisConfig(), sources=[MetricSignals(metrics)])
        points = []
        for k in range(series // 4 + 1):
            g = generate(scenario, T0, seed=k)
            points += [{**p, "service": f"svc-{k}"} for p in g.points]
        parsed = [p for p in parse_metric_batch(points, max_points=10 ** 7)]
        parsed = [p for p in parsed if int(p.service.split("-")[1]) * 4 + ["memory_usage_bytes", "heap_allocations",
                  "gc_collections", "cpu_usage_percent"].index(p.name) < series]
        metrics.insert_metrics(parsed)
        t = time.perf_counter()
        result = analyzer.run_pass(T0 + 1)
        elapsed = time.perf_counter() - t
        store.close()
    return {"judge_series": series, "judge_points": len(parsed), "judge_pass_ms": elapsed * 1000,
            "judge_anomalies": len(result.anomalies), "judge_us_per_point": elapsed * 1e6 / len(parsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    raw = raw_points(args.points)
    points = parse_metric_batch(raw, max_points=len(raw))
    out = {"points": args.points, "batch": args.batch, "clients": args.clients, **bench_parse(raw, args.batch),
           **bench_store(points, args.batch, args.repeats), **bench_http(raw, args.batch, args.clients),
           **bench_judge(args.series), "machine": machine_info()}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print_machine_info(out["machine"])
    print(f"{args.points} points, batches of {args.batch}")
    print(f"  parse_metric_batch               {out['parse_points_per_s']:>12,.0f} points/s")
    print(f"  MetricStore.insert_metrics     {out['ours_points_per_s']:>12,.0f} points/s")
    print(f"  bare executemany, no index       {out['bare_executemany_points_per_s']:>12,.0f} points/s   "
          f"ours = {out['ratio_vs_bare']:.2f}x")
    print(f"  bare executemany, same indexes   {out['bare_executemany_indexed_points_per_s']:>12,.0f} points/s   "
          f"ours = {out['ratio_vs_bare_indexed']:.2f}x")
    print(f"  POST /aiops/metrics/ingest       {out['http_points_per_s']:>12,.0f} points/s   "
          f"({args.clients} clients, median {out['http_batch_median_ms']:.0f} ms a batch; "
          f"{out['rows_in_table']} rows stored)")
    print(f"  analysis pass judging {out['judge_series']} series ({out['judge_points']} points): "
          f"{out['judge_pass_ms']:.0f} ms ({out['judge_us_per_point']:.1f} µs a point, "
          f"{out['judge_anomalies']} anomalies)")


if __name__ == "__main__":
    main()
