"""Resilience replay at scale: a week of 1-minute history for 20 metrics, ours against a simple peer.

Four copies of the seeded autoscaling-stall incident (``aiops.replay.sample``,
seeds 7, 11, 23, 31; services ``inventory-k`` and ``checkout-k``; five metrics
each: requests, pods, CPU, latency of inventory and checkout's latency) make
20 metrics with 7 days of 1-minute history (10,080 points each) plus the
incident day. Both methods of ``aiops.replay.model.FORECASTERS`` run in the
same process on the same data:

* ``gradient_boosting`` (ours): HistGradientBoostingRegressor on time,
  lags, seasonal profile and load regressors, locally adaptive conformal band;
* ``seasonal_quantile`` (peer): the same minute +-15 on the 7 previous days,
  median and 2.5/97.5 % quantiles (a seasonal-naive rolling-quantile band).

Printed per method: wall time of the whole replay (train + replay + zones) for
the 20 metrics, backtest error and band coverage on the same held-out rows,
how many of the ground truth's 16 zones were found (right metric, direction,
start within 2 minutes before to 10 minutes after the stall), how many of the
4 stacks put checkout after inventory, and the share of metric-minutes in a
zone when the same day is replayed without a stall (false deviation).

With ``--store-hours H`` it instead measures reading a stored incident's
history: H hours of seeded shop traffic (``aiops.synthetic``, /checkout at
2 requests/s, three spans each) written into a SQLite span store in a
temporary directory, rolled up per minute by ``aiops.replay.source.span_series``
(the store's ``window_spans`` an hour at a time, ``aiops.series.aggregate``
per minute), and prints µs per span.

    .venv/bin/python bench/replay.py [--repeat 3] [--json] [--store-hours H]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops.replay.core import ReplayConfig, run_replay  # noqa: E402
from aiops.replay.data import IncidentMeta, Series  # noqa: E402
from aiops.replay.model import FORECASTERS, ModelConfig  # noqa: E402
from aiops.testing.replay_sample import generate  # noqa: E402

SEEDS = (7, 11, 23, 31)
STEP_S = 60.0


def dataset(stall: bool):
    series, truths, incident = [], [], None
    for k, seed in enumerate(SEEDS):
        s, inc, truth = generate(history_days=7, seed=seed, stall_minutes=38 if stall else 0)
        rename = {"inventory": f"inventory-{k}", "checkout": f"checkout-{k}"}
        for x in s:
            if (x.service, x.metric) == ("checkout", "requests_per_s"):
                continue
            series.append(Series(rename[x.service], x.metric, x.timestamps_s, x.values))
        truths.append((rename, truth))
        incident = inc
    services = sorted({x.service for x in series})
    meta = IncidentMeta("BENCH", incident.start_s, incident.end_s, services, [], "bench")
    return series, meta, truths


def score(result, truths) -> tuple[int, int]:
    found, ordered = 0, 0
    for rename, truth in truths:
        for service, metric, direction, earliest, latest in truth.zones:
            service = rename[service]
            if any(z.service == service and z.metric == metric and z.direction == direction
                   and earliest - 2 * STEP_S <= z.start_s <= latest + 300 for z in result.zones):
                found += 1
        order = [c.service for c in result.cascade]
        inv, chk = rename["inventory"], rename["checkout"]
        if inv in order and chk in order and order.index(inv) < order.index(chk):
            ordered += 1
    return found, ordered


def zone_share(result) -> float:
    return sum(z.duration_s for z in result.zones) / STEP_S / sum(len(m.times_s) for m in result.metrics)


def store_rollup(hours: float) -> int:
    import tempfile

    from aiops.replay.source import span_series
    from aiops.store.database import Database
    from aiops.testing.synthetic import as_row, generate as traffic, shop_routes
    from telemetry.store import INSERT_SPAN as _INSERT, connect

    t0 = 1_800_000_000.0
    spans = traffic(shop_routes(), {("shop", "/checkout"): 2.0}, t0, hours * 3600, seed=1).spans
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/t.db"
        conn = connect(db)
        conn.execute("BEGIN")
        conn.executemany(_INSERT, [as_row(x) for x in spans])
        conn.execute("COMMIT")
        conn.close()
        store = Database(db)
        keys = {("shop", "/checkout"), ("shop", "/payment"), ("shop", "/inventory")}
        started = time.perf_counter()
        series = span_series(store, keys, t0, t0 + hours * 3600, STEP_S)
        elapsed = time.perf_counter() - started
        store.close()
    print(f"{len(spans)} spans over {hours:g} h rolled up into {len(series)} series of 1-minute points in "
          f"{elapsed:.2f} s: {elapsed / len(spans) * 1e6:.1f} µs per span")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store-hours", type=float, default=None, help="measure the store roll-up instead")
    args = parser.parse_args()
    if args.store_hours:
        return store_rollup(args.store_hours)
    import sklearn.ensemble  # noqa: F401  (import cost outside the clock)

    series, meta, truths = dataset(stall=True)
    quiet_series, quiet_meta, _ = dataset(stall=False)
    n_metrics = len(series)
    history_points = int(sum(1 for t in series[0].timestamps_s if t < meta.start_s - 1800))
    rows = {}
    for method in FORECASTERS:
        config = ReplayConfig(model=ModelConfig(method=method))
        times, result = [], None
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = run_replay(meta, series, config)
            times.append(time.perf_counter() - started)
        quiet = run_replay(quiet_meta, quiet_series, config)
        found, ordered = score(result, truths)
        backtests = [m.forecast.backtest for m in result.metrics]
        rows[method] = {
            "seconds": statistics.median(times), "seconds_runs": [round(t, 2) for t in times],
            "median_mape_ratio": statistics.median(b.mape_ratio for b in backtests if b.mape_ratio is not None),
            "median_coverage_ratio": statistics.median(b.coverage_ratio for b in backtests),
            "mean_coverage_gap": statistics.fmean(abs(b.coverage_ratio - b.nominal_coverage) for b in backtests),
            "truth_zones_found": found, "truth_zones": 4 * len(truths[0][1].zones),
            "stacks_in_order": ordered, "stacks": len(truths),
            "normal_day_zone_share": zone_share(quiet),
            "metrics": len(result.metrics),
        }
    ours, peer = rows["gradient_boosting"], rows["seasonal_quantile"]
    if args.json:
        print(json.dumps({"metrics": n_metrics, "history_points_per_metric": history_points, "methods": rows},
                         indent=2))
        return 0
    print(f"{n_metrics} metrics x {history_points} points of 1-minute history (7 days) + the incident day; "
          f"median of {args.repeat} runs")
    print(f"{'method':<20} {'train+replay s':>14} {'backtest MAPE':>13} {'coverage':>9} {'|cov-0.95|':>10} "
          f"{'truth zones':>11} {'cascades':>8} {'normal-day zone share':>21}")
    for method, r in rows.items():
        print(f"{method:<20} {r['seconds']:>14.2f} {r['median_mape_ratio']:>13.1%} {r['median_coverage_ratio']:>9.1%} "
              f"{r['mean_coverage_gap']:>10.3f} {r['truth_zones_found']:>5}/{r['truth_zones']:<5} "
              f"{r['stacks_in_order']:>4}/{r['stacks']:<3} {r['normal_day_zone_share']:>21.1%}")
    print(f"ratios ours/peer: time {ours['seconds'] / peer['seconds']:.1f}x, backtest MAPE "
          f"{ours['median_mape_ratio'] / peer['median_mape_ratio']:.2f}x, coverage gap "
          f"{ours['mean_coverage_gap'] / max(peer['mean_coverage_gap'], 1e-9):.2f}x, normal-day zone share "
          f"{ours['normal_day_zone_share'] / max(peer['normal_day_zone_share'], 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
