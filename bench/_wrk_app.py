"""WSGI app for the wrk benchmark in bench/ingest.py (``gunicorn bench._wrk_app:app``).

``BENCH_TELEMETRY=1`` installs ``Telemetry(app)``; its settings come from the
``TELEMETRY_*`` environment variables (``TELEMETRY_DB_PATH`` at least).
With ``BENCH_STATS_DIR`` set, each worker writes its telemetry counters to
``worker-<pid>.json`` there when it exits (after a flush).
"""
from __future__ import annotations

import atexit
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flask import Flask  # noqa: E402

app = Flask("wrk_bench")


@app.get("/ping")
def ping():
    return "pong"


@app.get("/_pid")
def worker_pid():  # readiness probe: which worker answered
    return str(os.getpid())


if os.environ.get("BENCH_TELEMETRY") == "1":
    from telemetry import Telemetry

    Telemetry(app)
    _stats_dir = os.environ.get("BENCH_STATS_DIR")
    if _stats_dir:
        def _dump_stats() -> None:  # registered after the store's own atexit hook, so it runs first
            flushed = Telemetry.flush(app, timeout=10)
            stats = dict(Telemetry.stats(app), flushed=flushed, pid=os.getpid())
            with open(os.path.join(_stats_dir, f"worker-{os.getpid()}.json"), "w", encoding="utf-8") as f:
                json.dump(stats, f)

        atexit.register(_dump_stats)
