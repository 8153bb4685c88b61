"""False alarms on healthy traffic, and root-cause accuracy on random faults.

Seeded synthetic traffic (aiops.synthetic: log-normal latencies, 0.1 %
background errors) is written into a real SQLite file as it would arrive,
and the analysis runs every 10 s of simulated time with default settings.

    .venv/bin/python bench/accuracy.py [--healthy-seeds 4] [--minutes 30] [--faults 24]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aiops.analysis.config import AnalysisConfig  # noqa: E402
from aiops.analysis.engine import Analyzer  # noqa: E402
from aiops.analysis.store import AnalysisStore  # noqa: E402
from aiops.testing.synthetic import Fault, deep_routes, generate, replay, shop_routes  # noqa: E402
from telemetry.store import INSERT_SPAN as _INSERT, connect  # noqa: E402

T0 = 1_800_000_000.0
SHOP_RATES = {("shop", "/health"): 2, ("shop", "/inventory"): 3, ("shop", "/payment"): 3, ("shop", "/checkout"): 5}
DEEP_RATES = {("gateway", "/order"): 6, ("gateway", "/status"): 2}


def run(routes, rates, duration_s, faults, seed, folder):
    """Replay the traffic; return the analysis results of every pass."""
    path = os.path.join(folder, f"run-{seed}-{len(faults)}-{random.random():.6f}.db")
    conn = connect(path)

    def write(rows):
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")

    analyzer = Analyzer(AnalysisStore(path), AnalysisConfig())
    traffic = generate(routes, rates, T0, duration_s, faults, seed=seed)
    results = replay(traffic, write, analyzer.run_pass, T0 + 10, T0 + duration_s, 10)
    conn.close()
    return traffic, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy-seeds", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--faults", type=int, default=24)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        print(f"healthy: shop traffic (13 req/s at the edge), {args.minutes:g} simulated minutes per seed")
        total_incidents = total_anomalies = total_spans = 0
        for seed in range(args.healthy_seeds):
            traffic, results = run(shop_routes(), SHOP_RATES, args.minutes * 60, [], 100 + seed, folder)
            incidents = sum(1 for r in results for c in r.changes if c.event == "opened")
            anomalies = sum(len(r.anomalies) for r in results)
            total_incidents += incidents
            total_anomalies += anomalies
            total_spans += len(traffic.spans)
            print(f"  seed {100 + seed}: {len(traffic.spans):,} spans, {len(results)} passes, "
                  f"{anomalies} anomalies, {incidents} incidents")
        hours = max(args.healthy_seeds * args.minutes / 60, 1e-9)
        print(f"  total: {total_spans:,} spans over {hours:g} simulated hours: {total_incidents} incidents "
              f"({total_incidents / hours:.2f}/hour), {total_anomalies} anomalies")

        print(f"\nfaults: {args.faults} random faults on a 3-service chain 4 deep with a fan-out "
              "(route, kind and magnitude drawn at random), fault at 600 s for 120 s")
        right = detected = 0
        delays = []
        for i in range(args.faults):
            rng = random.Random(i)
            target = rng.choice([k for k in deep_routes() if k != ("gateway", "/status")])
            kind = rng.choice(["latency", "error", "timeout"])
            magnitude = {"latency": rng.choice([100, 300, 800, 2000]), "error": rng.choice([0.3, 0.5, 0.8, 1.0]),
                         "timeout": 30000}[kind]
            fault = Fault(target, kind, T0 + 600, T0 + 720, magnitude)
            _, results = run(deep_routes(), DEEP_RATES, 780, [fault], i, folder)
            opened = [(r.at - T0, c.incident) for r in results for c in r.changes if c.event == "opened"]
            found = next(((at, inc) for at, inc in opened if at >= 600), None)
            ok = found is not None and found[1].root_key == target
            detected += found is not None
            right += ok
            if found is not None:
                delays.append(found[0] - 600)
            blamed = f"{found[1].root_key[0]} {found[1].root_key[1]}" if found else "-"
            print(f"  {i:2d} {kind:<7} {magnitude:>7} on {target[0]} {target[1]:<9} -> {blamed:<18} "
                  f"{'right' if ok else 'WRONG' if found else 'missed'}"
                  f"{'' if found is None else f'  after {found[0] - 600:.0f} s'}  incidents opened {len(opened)}")
        print(f"  detected {detected}/{args.faults}, root cause right {right}/{args.faults}; "
              f"detection at the first pass after the fault in {sum(d <= 10 for d in delays)}/{len(delays)}")
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
