"""What the dashboard costs the server: one refresh, and the RED series per time range.

A span store is filled with seeded synthetic demo-shop traffic (``aiops.synthetic.generate`` over
``shop_routes``: /health, /inventory, /payment and /checkout -> /inventory, /payment) at ``--rate``
requests/s per entry route for the last ``--hours`` hours, ending now. The demo app (``app.create_app``,
no background scheduler, one analysis pass so baselines and the graph exist) serves it on a loopback
Werkzeug server; ``requests`` then times, median of ``--repeat`` calls:

* ``GET /aiops/dashboard/series?range_s=R&points=90`` (every route's RED buckets with the baseline band)
  side by side with ``GET /aiops/metrics?window_s=R`` (the existing per-route aggregate over the same
  spans: the peer it is compared with) for R = 15 min, 1 h, 6 h, 24 h;
* one page refresh: the eleven GETs the page sends per poll at the default 15-minute range;
* the page's weight: every static file, raw and gzip-compressed.

    .venv/bin/python bench/dashboard.py [--hours 24] [--rate 1.0] [--repeat 5] [--json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests  # noqa: E402
from _common import machine_info, print_machine_info  # noqa: E402

from aiops import AIOps  # noqa: E402
from aiops.dashboard.views import STATIC_DIR  # noqa: E402
from aiops.testing.synthetic import as_row, generate, shop_routes  # noqa: E402
from telemetry.store import INSERT_SPAN as _INSERT, SpanStore, connect  # noqa: E402

RANGES_S = (900, 3600, 6 * 3600, 24 * 3600)
REFRESH = ("/aiops/status", "/aiops/metrics?window_s=900", "/aiops/metrics",
           "/aiops/dashboard/series?range_s=900&points=90", "/aiops/dependencies",
           "/aiops/incidents?status=all&limit=200", "/simulate/status", "/aiops/summary",
           "/aiops/burn", "/aiops/alerts/groups?status=open", "/api/v1/simulator/simulations")


def fill(db_path: str, hours: float, rate: float) -> int:
    routes = shop_routes()
    entry = {key: rate for key in routes}
    now = time.time()
    traffic = generate(routes, entry, now - hours * 3600.0, hours * 3600.0, seed=11)
    conn = connect(db_path)
    conn.execute("BEGIN")
    conn.executemany(_INSERT, (as_row(s) for s in traffic.spans))
    conn.execute("COMMIT")
    conn.close()
    return len(traffic.spans)


def timed(http, url: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = http.get(url, timeout=600)
        times.append((time.perf_counter() - t0) * 1000.0)
        r.raise_for_status()
        size = len(r.content)
    return statistics.median(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rate", type=float, default=1.0, help="requests/s per entry route")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from app import create_app
    from tests.helpers import LiveServer

    out = {"machine": machine_info(), "hours": args.hours, "rate_per_entry_route": args.rate}
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        t0 = time.perf_counter()
        out["spans_stored"] = fill(db, args.hours, args.rate)
        out["fill_s"] = round(time.perf_counter() - t0, 1)
        app = create_app({"TELEMETRY_DB_PATH": db, "AIOPS_SCHEDULER": False, "DEMO_LATENCY_SCALE": 0})
        server = LiveServer(app)
        http = requests.Session()
        try:
            http.post(server.url + "/aiops/analyze", timeout=600).raise_for_status()
            rows = []
            for range_s in RANGES_S:
                series_ms, series_bytes = timed(
                    http, f"{server.url}/aiops/dashboard/series?range_s={range_s}&points=90", args.repeat)
                metrics_ms, metrics_bytes = timed(http, f"{server.url}/aiops/metrics?window_s={range_s}", args.repeat)
                rows.append({"range_s": range_s, "series_ms": round(series_ms, 1), "series_bytes": series_bytes,
                             "metrics_ms": round(metrics_ms, 1), "metrics_bytes": metrics_bytes,
                             "ratio": round(series_ms / metrics_ms, 2) if metrics_ms else None})
            out["series_vs_metrics"] = rows
            refresh_ms, refresh_bytes = [], 0
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                refresh_bytes = sum(len(http.get(server.url + path, timeout=600).content) for path in REFRESH)
                refresh_ms.append((time.perf_counter() - t0) * 1000.0)
            out["refresh_15min"] = {"requests": len(REFRESH), "ms": round(statistics.median(refresh_ms), 1),
                                    "bytes": refresh_bytes}
        finally:
            server.stop()
            AIOps.shutdown(app)
            SpanStore.close_all()
    files = {}
    for root, _, names in os.walk(STATIC_DIR):
        for name in names:
            if name.endswith((".html", ".css", ".js")):
                data = open(os.path.join(root, name), "rb").read()
                files[os.path.relpath(os.path.join(root, name), STATIC_DIR)] = (len(data), len(gzip.compress(data)))
    out["page_files"] = {k: {"bytes": v[0], "gzip_bytes": v[1]} for k, v in sorted(files.items())}
    out["page_total"] = {"bytes": sum(v[0] for v in files.values()), "gzip_bytes": sum(v[1] for v in files.values())}

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print_machine_info(out["machine"])
    print(f"{out['spans_stored']} spans over {args.hours:g} h ({args.rate:g} req/s per entry route), filled in "
          f"{out['fill_s']} s")
    print(f"{'range':>8} {'series ms':>10} {'metrics ms':>11} {'ratio':>6} {'series KiB':>11} {'metrics KiB':>12}")
    for r in out["series_vs_metrics"]:
        print(f"{r['range_s'] / 60:>6.0f} m {r['series_ms']:>10.1f} {r['metrics_ms']:>11.1f} {r['ratio']:>6.2f} "
              f"{r['series_bytes'] / 1024:>11.1f} {r['metrics_bytes'] / 1024:>12.1f}")
    f = out["refresh_15min"]
    print(f"one page refresh at 15 min: {f['requests']} GETs, {f['ms']:.1f} ms, {f['bytes'] / 1024:.1f} KiB")
    t = out["page_total"]
    print(f"page weight: {t['bytes'] / 1024:.1f} KiB ({t['gzip_bytes'] / 1024:.1f} KiB gzip) in {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
