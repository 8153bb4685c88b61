"""Scenario outcomes over many seeds: how often the expected root cause ranks first.

Each scenario runs in-process (a fresh demo app and SQLite file per run,
metrics through POST /aiops/metrics/ingest, no HTTP traffic), for seeds
0..N-1, and is scored like ``python -m simulation validate``.

    .venv/bin/python bench/simulation_accuracy.py [--seeds 20] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiops import AIOps  # noqa: E402
from app import create_app  # noqa: E402
from simulation.runner import AppTarget, Run, SimulationRecord  # noqa: E402
from simulation.scenarios import SCENARIOS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = {sid: {"runs": 0, "root_cause_first": 0, "actions_in_top3": 0, "passed": 0, "metrics_detected": 0,
                  "metrics_total": 0, "delays_s": []} for sid in SCENARIOS}
    started = time.perf_counter()
    for seed in range(args.seeds):
        for sid, scenario in SCENARIOS.items():
            with tempfile.TemporaryDirectory() as d:
                app = create_app({"TELEMETRY_DB_PATH": os.path.join(d, "t.db"), "AIOPS_SCHEDULER": False})
                record = SimulationRecord(f"sim_{seed}", sid, "demo", True, seed)
                Run(scenario, AppTarget(app), record).execute()
                AIOps.shutdown(app)
                app.extensions["telemetry"].store.close()
            v, row = record.validation, rows[sid]
            row["runs"] += 1
            row["root_cause_first"] += v["root_cause"]["points"] == 0.5
            row["actions_in_top3"] += set(v["actions"]["expected"]) <= set(v["actions"]["top_three"])
            row["passed"] += v["passed"]
            row["metrics_detected"] += record.detection["detected"]
            row["metrics_total"] += record.detection["total"]
            row["delays_s"] += [m["delay_s"] for m in record.detection["metrics"] if m["delay_s"] is not None]
    elapsed = time.perf_counter() - started
    for row in rows.values():
        delays = sorted(d for d in row.pop("delays_s") if d >= 0)
        row["median_delay_s"] = delays[len(delays) // 2] if delays else None
    if args.json:
        print(json.dumps({"seeds": args.seeds, "elapsed_s": elapsed, "scenarios": rows}, indent=2))
        return
    print(f"{args.seeds} seeds x {len(rows)} scenarios in {elapsed:.0f} s")
    print(f"{'scenario':<30} {'root cause 1st':>14} {'actions top3':>12} {'passed':>7} {'metrics found':>14} "
          f"{'median delay':>12}")
    for sid, r in rows.items():
        delay = "-" if r["median_delay_s"] is None else f"{r['median_delay_s']:g} s"
        print(f"{sid:<30} {r['root_cause_first']:>9}/{r['runs']:<4} {r['actions_in_top3']:>7}/{r['runs']:<4} "
              f"{r['passed']:>3}/{r['runs']:<3} {r['metrics_detected']:>8}/{r['metrics_total']:<5} {delay:>12}")


if __name__ == "__main__":
    main()
