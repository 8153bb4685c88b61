"""What the early-pass listener adds to the span writer.

Writes the same spans into a fresh SQLite span store twice per round, with
and without ``EarlyPassTrigger.on_spans`` as a listener (healthy traffic over
``--routes`` routes with ready baselines, so no pass is started), and prints
the writer's time per span both ways and the ratio. The listener runs on the
writer thread, never on the request path.

    .venv/bin/python bench/early_listener.py [--spans 200000] [--routes 20] [--rounds 5]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiops.analysis.baseline import Baseline  # noqa: E402
from aiops.analysis.config import AnalysisConfig  # noqa: E402
from aiops.analysis.early import EarlyPassTrigger  # noqa: E402
from telemetry.store import SpanStore  # noqa: E402


def spans(n: int, routes: list[str], t0: float) -> list[tuple]:
    return [(f"{i:032x}", f"{i:016x}", None, "shop", routes[i % len(routes)], "GET", routes[i % len(routes)],
             200, t0 + i * 1e-4, 20.0 + (i % 7), 0, None, None, None) for i in range(n)]


def write_time_s(batch: list[tuple], listener) -> float:
    """Seconds from the first enqueue to the flush returning, in a fresh store."""
    with tempfile.TemporaryDirectory() as d:
        store = SpanStore(os.path.join(d, "s.db"), max_queue=len(batch) + 1, flush_interval_s=3600.0)
        if listener is not None:
            store.add_listener(listener)
        started = time.perf_counter()
        for span in batch:
            store.enqueue(span)
        store.flush(600.0)
        elapsed = time.perf_counter() - started
        store.close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    routes = [f"/r{i}" for i in range(args.routes)]
    now = time.time()
    trigger = EarlyPassTrigger(lambda: None, lambda: None)
    trigger.learn({("shop", r): Baseline("shop", r, requests=500, log_mean=math.log(20.0), log_var=0.04,
                                        error_ratio=0.001) for r in routes}, now, AnalysisConfig())
    batch = spans(args.spans, routes, now)
    bare, listened = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        bare.append(write_time_s(batch, None))
        listened.append(write_time_s(batch, trigger.on_spans))
    b, w = statistics.median(bare), statistics.median(listened)
    print(f"{args.spans} spans over {args.routes} routes, median of {args.rounds} interleaved rounds")
    print(f"writer alone           : {1e6 * b / args.spans:6.2f} us/span")
    print(f"writer + early listener: {1e6 * w / args.spans:6.2f} us/span")
    print(f"ratio                  : {w / b:.3f}  (listener ~{1e9 * (w - b) / args.spans:.0f} ns/span); "
          f"early passes started: {trigger.fired}")


if __name__ == "__main__":
    main()
