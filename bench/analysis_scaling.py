"""Cost of one analysis pass vs the history stored: 10k spans vs 1M spans.

Target: "analysis cost grows with the window, not with the history. One pass
with 1M spans stored must stay within 1.5x of one pass with 10k spans stored."

Two SQLite span stores are built in a temp dir with ``executemany`` of
``telemetry.store._INSERT`` (the schema and indexes of ``telemetry.store``):

* *live traffic*, identical in both stores: ``aiops.synthetic.generate`` over
  the demo shop's routes (``shop_routes``: /health, /inventory, /payment and
  /checkout -> /inventory, /payment) at ``--rate`` requests/s per entry route.
  It starts 2 windows before the first pass and runs to the last pass;
* *history*, older than all live traffic and spread evenly over
  ``--history-days`` days: one synthetic hour of the same routes, replicated
  with shifted timestamps and fresh trace/span ids, so that the store holds
  ``--small`` (resp. ``--history``) rows when the first timed pass runs.

Passes then run on a simulated clock every ``AIOPS_ANALYSIS_INTERVAL_S``
(default 10 s, default ``AnalysisConfig``), ``Analyzer.run_pass(now_s=t)``;
before each pass the live spans that completed by ``t`` are inserted into
both stores (untimed), as the telemetry writer would. ``--warm-passes`` passes
first (the first pass over an existing store learns from up to
``FIRST_PASS_LOOKBACK_S`` of history; after 6 passes and 2 windows every
detector, traffic included, is armed), then ``--passes`` timed passes,
alternating which store goes first. Every timed pass of the two stores sees
the same window (same spans, same new spans), which the script checks.

Reported: median (and p90) ms per pass per store, the ratio 1M/10k, a
breakdown of the pass (the store's reads, timed by wrapping the
``AnalysisStore`` instance's methods, and the rest: Python work and the
writes), row counts, DB sizes, and the first pass over each store.

    .venv/bin/python bench/analysis_scaling.py [--history 1000000] [--small 10000] [--passes 20] [--json]
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiops.analysis.config import AnalysisConfig  # noqa: E402
from aiops.analysis.engine import FIRST_PASS_LOOKBACK_S, Analyzer  # noqa: E402
from aiops.analysis.store import AnalysisStore  # noqa: E402
from aiops.testing.synthetic import as_row, generate, shop_routes  # noqa: E402
from bench._common import machine_info, print_machine_info  # noqa: E402
from telemetry.store import INSERT_SPAN as _INSERT, SPAN_COLUMNS, connect  # noqa: E402

TARGET_RATIO = 1.5
#: Spans per round of one request to each entry route: /checkout makes 3 (itself, /inventory, /payment).
SPANS_PER_ROUND = 6
_I_TRACE, _I_SPAN, _I_PARENT, _I_START = (SPAN_COLUMNS.index(c) for c in
                                          ("trace_id", "span_id", "parent_span_id", "start_time"))
#: AnalysisStore methods whose time is reported in the breakdown.
TIMED_METHODS = ("try_lock", "window_spans", "spans_after", "first_span_id_since", "load_baselines",
                 "load_graph", "last_seen", "open_incidents", "incidents_with_root", "save_baselines",
                 "add_to_graph", "save_incidents", "set_state", "get_state")
_READS = ("window_spans", "spans_after", "first_span_id_since", "last_seen", "load_baselines", "load_graph",
          "open_incidents", "incidents_with_root")


def completed_at(span: dict) -> float:
    return span["start_time"] + span["duration_ms"] / 1000.0


def history_rows(n: int, end_s: float, days: float, seed: int) -> list[tuple]:
    """``n`` span rows of the shop's routes, evenly spread over ``days`` days
    before ``end_s``: one synthetic hour replicated with shifted timestamps and
    fresh ids (a copy index written over the ids' leading hex digits), then
    thinned evenly to exactly ``n`` rows."""
    if n <= 0:
        return []
    span_s = days * 86400.0
    block_s = min(3600.0, span_s)
    copies = math.ceil(span_s / block_s)
    routes = shop_routes()
    spare = 1.1
    while True:
        rate = spare * n / (span_s * SPANS_PER_ROUND)  # per entry route
        template = generate(routes, {k: rate for k in routes}, 0.0, block_s, seed=seed).spans
        base = [as_row(s) for s in template if completed_at(s) < block_s]
        if len(base) * copies >= n:
            break
        spare *= 1.25 * n / max(1, len(base) * copies)
    rows: list[tuple] = []
    start = end_s - copies * block_s
    for k in range(copies):
        shift = start + k * block_s
        tp, sp = f"{k:06x}", f"{k:05x}"
        for r in base:
            row = list(r)
            row[_I_TRACE] = tp + r[_I_TRACE][6:]
            row[_I_SPAN] = sp + r[_I_SPAN][5:]
            if r[_I_PARENT]:
                row[_I_PARENT] = sp + r[_I_PARENT][5:]
            row[_I_START] = r[_I_START] + shift
            rows.append(tuple(row))
    if len(rows) > n:  # thin evenly, so the history still spans all the days
        step = len(rows) / n
        rows = [rows[int(i * step)] for i in range(n)]
    return rows


def insert(conn: sqlite3.Connection, rows: list[tuple], chunk: int = 100_000) -> None:
    for i in range(0, len(rows), chunk):
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows[i:i + chunk])
        conn.execute("COMMIT")


def db_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))


def row_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]


class TimedStore(AnalysisStore):
    """An ``AnalysisStore`` whose SQL methods add their wall time to ``times``
    (a bench-only subclass: the engine and its queries are unchanged)."""

    def __init__(self, path: str):
        super().__init__(path)
        self.times: dict[str, float] = {}
        for name in TIMED_METHODS:
            setattr(self, name, self._timed(name, getattr(self, name)))

    def _timed(self, name, method):
        times, clock = self.times, time.perf_counter

        def wrapper(*args, **kwargs):
            t0 = clock()
            try:
                return method(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + (clock() - t0)
        return wrapper

    def take_times(self) -> dict[str, float]:
        out = {k: v * 1000.0 for k, v in self.times.items()}
        self.times.clear()
        return out


class Subject:
    """One store under test."""

    def __init__(self, name: str, path: str, target_rows: int):
        self.name, self.path, self.target_rows = name, path, target_rows
        self.writer = connect(path)
        self.history = 0
        self.build_s = 0.0
        self.store: TimedStore | None = None
        self.analyzer: Analyzer | None = None
        self.first_pass: dict | None = None
        self.warm: list[dict] = []
        self.timed: list[dict] = []
        self.rows_at_first_timed = 0

    def open(self, config: AnalysisConfig) -> None:
        self.store = TimedStore(self.path)
        self.analyzer = Analyzer(self.store, config)

    def run(self, now_s: float) -> dict:
        gc.collect()  # outside the clock: each pass starts with the same collector state
        self.store.take_times()
        t0 = time.perf_counter()
        result = self.analyzer.run_pass(now_s=now_s)
        wall_ms = (time.perf_counter() - t0) * 1000.0
        if result.skipped:
            raise RuntimeError(f"{self.name}: pass skipped: {result.skipped}")
        parts = self.store.take_times()
        return {"now_s": now_s, "ms": wall_ms, "engine_ms": result.duration_ms,
                "spans_in_window": result.spans_in_window, "new_spans": result.new_spans,
                "anomalies": len(result.anomalies), "incident_changes": len(result.changes), "parts_ms": parts}


def summarize(passes: list[dict]) -> dict:
    ms = sorted(p["ms"] for p in passes)
    parts: dict[str, list[float]] = {}
    for p in passes:
        for name in TIMED_METHODS:
            parts.setdefault(name, []).append(p["parts_ms"].get(name, 0.0))
    reads = [sum(p["parts_ms"].get(n, 0.0) for n in _READS if n != "window_spans") for p in passes]
    rest = [p["ms"] - sum(p["parts_ms"].values()) for p in passes]
    return {
        "passes": len(passes),
        "median_ms": statistics.median(ms),
        "p90_ms": ms[min(len(ms) - 1, math.ceil(0.9 * len(ms)) - 1)],
        "min_ms": ms[0], "max_ms": ms[-1],
        "median_parts_ms": {k: statistics.median(v) for k, v in parts.items()},
        "median_window_read_ms": statistics.median(parts["window_spans"]),
        "median_other_reads_ms": statistics.median(reads),
        "median_rest_ms": statistics.median(rest),
        "median_spans_in_window": statistics.median(p["spans_in_window"] for p in passes),
        "median_new_spans": statistics.median(p["new_spans"] for p in passes),
        "anomalies_total": sum(p["anomalies"] for p in passes),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000, help="rows of the big store (default 1000000)")
    parser.add_argument("--small", type=int, default=10_000, help="rows of the small store (default 10000)")
    parser.add_argument("--passes", type=int, default=20, help="timed passes per store (default 20)")
    parser.add_argument("--warm-passes", type=int, default=8, help="untimed passes per store first (default 8)")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="live requests/s per entry route (/health, /inventory, /payment, /checkout; "
                             "default 5 -> 30 spans/s)")
    parser.add_argument("--history-days", type=float, default=3.0,
                        help="days the history is spread over (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic traffic (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="build the stores in DIR and keep them (default: temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the report")
    args = parser.parse_args(argv)
    if args.passes < 1 or args.warm_passes < 1 or args.rate <= 0 or args.history_days <= 0:
        parser.error("--passes, --warm-passes >= 1; --rate, --history-days > 0")
    if args.history <= args.small:
        parser.error("--history must be larger than --small")
    say = (lambda *a, **k: None) if args.json else (lambda *a, **k: print(*a, **k, flush=True))

    info = machine_info()
    if not args.json:
        print_machine_info(info)
        print()
    config = AnalysisConfig()
    interval, window = config.interval_s, config.window_s

    # Simulated clock, ending now: preload (2 windows) | warm passes | timed passes.
    last_t = float(int(time.time()))
    first_timed = last_t - (args.passes - 1) * interval
    first_warm = first_timed - args.warm_passes * interval
    live_start = first_warm - 2 * window
    routes = shop_routes()
    t0 = time.perf_counter()
    live = generate(routes, {k: args.rate for k in routes}, live_start, last_t - live_start,
                    seed=args.seed + 1000).spans
    live = [s for s in live if completed_at(s) <= last_t]  # already sorted by completion
    live_rows = [as_row(s) for s in live]
    live_done = [completed_at(s) for s in live]
    stored_by_first_timed = sum(1 for c in live_done if c <= first_timed)
    say(f"live traffic: {len(live_rows):,} spans over {last_t - live_start:.0f} s "
        f"({args.rate:g} req/s per entry route, {len(live_rows) / (last_t - live_start):.1f} spans/s), "
        f"identical in both stores; {stored_by_first_timed:,} of them stored by the first timed pass")

    tmp = None
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        workdir = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="aiops-scaling-")
        workdir = tmp.name
    subjects = [Subject("small", os.path.join(workdir, "small.db"), args.small),
                Subject("big", os.path.join(workdir, "big.db"), args.history)]
    try:
        for s in subjects:
            for p in (s.path, s.path + "-wal", s.path + "-shm"):
                if os.path.exists(p):
                    os.remove(p)
            s.writer.close()
            s.writer = connect(s.path)
            n_hist = s.target_rows - stored_by_first_timed
            if n_hist < 0:
                say(f"warning: {s.name}: {s.target_rows:,} rows requested but the live traffic alone puts "
                    f"{stored_by_first_timed:,} rows in the store; no history added")
            t_build = time.perf_counter()
            rows = history_rows(max(0, n_hist), live_start, args.history_days, args.seed)
            t_gen = time.perf_counter() - t_build
            insert(s.writer, rows)
            s.history = len(rows)
            del rows
            # Live traffic that completed before the first pass: 2 windows.
            insert(s.writer, [r for r, c in zip(live_rows, live_done) if c <= first_warm])
            s.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            s.build_s = time.perf_counter() - t_build
            say(f"built {s.name} store: {s.history:,} history rows over {args.history_days:g} days + live "
                f"preload in {s.build_s:.1f} s (of which generating rows {t_gen:.1f} s)")
            s.open(config)

        # Passes on the simulated clock; each batch of live spans goes into both stores first.
        times = [first_warm + j * interval for j in range(args.warm_passes + args.passes)]
        i_live = sum(1 for c in live_done if c <= first_warm)
        for n, t in enumerate(times):
            j = i_live
            while j < len(live_rows) and live_done[j] <= t:
                j += 1
            batch, i_live = live_rows[i_live:j], j
            for s in subjects:
                if batch:
                    insert(s.writer, batch)
            timed = n >= args.warm_passes
            if timed and n == args.warm_passes:
                for s in subjects:
                    s.rows_at_first_timed = row_count(s.writer)
                say(f"timing {args.passes} passes per store, alternating ...")
            order = subjects if n % 2 == 0 else subjects[::-1]
            for s in order:
                r = s.run(t)
                if n == 0:
                    s.first_pass = r
                (s.timed if timed else s.warm).append(r)

        mismatched = [i for i, (a, b) in enumerate(zip(subjects[0].timed, subjects[1].timed))
                      if (a["spans_in_window"], a["new_spans"]) != (b["spans_in_window"], b["new_spans"])]
        for s in subjects:
            s.rows_at_end = row_count(s.writer)
            s.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            s.bytes = db_bytes(s.path)
        small, big = subjects
        ss, sb = summarize(small.timed), summarize(big.timed)
        ratio = sb["median_ms"] / ss["median_ms"]
        result = {
            "benchmark": "analysis_scaling",
            "machine": info,
            "config": {"interval_s": interval, "window_s": window, "first_pass_lookback_s": FIRST_PASS_LOOKBACK_S,
                       "rate_per_entry_route": args.rate, "history_days": args.history_days,
                       "warm_passes": args.warm_passes, "passes": args.passes, "seed": args.seed},
            "live_spans": len(live_rows),
            "stores": {s.name: {
                "rows_requested": s.target_rows, "history_rows": s.history,
                "rows_at_first_timed_pass": s.rows_at_first_timed, "rows_at_end": s.rows_at_end,
                "db_bytes": s.bytes, "build_s": round(s.build_s, 2),
                "first_pass": s.first_pass, "timed": summarize(s.timed),
                "timed_passes_ms": [round(p["ms"], 3) for p in s.timed],
            } for s in subjects},
            "ratio_big_over_small": ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio <= TARGET_RATIO,
            "identical_windows": not mismatched,
            "mismatched_passes": mismatched,
            "total_s": round(time.perf_counter() - t0, 1),
        }
        for s in subjects:
            s.store.close()
            s.writer.close()
    finally:
        if tmp is not None:
            tmp.cleanup()

    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print()
    print(f"stores (rows when the first timed pass ran; history spread over {args.history_days:g} days, "
          f"older than the live traffic):")
    for name in ("small", "big"):
        st = result["stores"][name]
        print(f"  {name:<5} {st['rows_at_first_timed_pass']:>10,} rows ({st['history_rows']:,} history), "
              f"{st['rows_at_end']:,} at the end; {st['db_bytes'] / 1e6:8.1f} MB; built in {st['build_s']:.1f} s")
    print()
    print(f"first pass over each store (learns from up to {FIRST_PASS_LOOKBACK_S:.0f} s of history, "
          f"at most 50,000 spans; not part of the comparison):")
    for name in ("small", "big"):
        fp = result["stores"][name]["first_pass"]
        p = fp["parts_ms"]
        print(f"  {name:<5} {fp['ms']:9.1f} ms  new spans learned {fp['new_spans']:,}; "
              f"first_span_id_since {p.get('first_span_id_since', 0):.1f} ms, "
              f"spans_after {p.get('spans_after', 0):.1f} ms, window_spans {p.get('window_spans', 0):.1f} ms")
    print()
    w = ss["median_spans_in_window"]
    print(f"steady state: {args.passes} passes per store, alternating, one every {interval:g} s of simulated "
          f"time, window {window:g} s (median {w:,.0f} spans in the window, {ss['median_new_spans']:,.0f} new "
          f"per pass), same window in both stores: {'yes' if not mismatched else 'NO ' + str(mismatched)}")
    print(f"  {'store':<5} {'median ms':>10} {'p90 ms':>8} {'min':>7} {'max':>7}  |  {'window read':>11} "
          f"{'other reads':>11} {'rest':>7}  (medians, ms)  anomalies")
    for name, sm in (("small", ss), ("big", sb)):
        print(f"  {name:<5} {sm['median_ms']:10.2f} {sm['p90_ms']:8.2f} {sm['min_ms']:7.2f} {sm['max_ms']:7.2f}  |  "
              f"{sm['median_window_read_ms']:11.2f} {sm['median_other_reads_ms']:11.2f} {sm['median_rest_ms']:7.2f}"
              f"                 {sm['anomalies_total']}")
    parts = ", ".join(f"{k} {ss['median_parts_ms'][k]:.2f}/{sb['median_parts_ms'][k]:.2f}"
                      for k in TIMED_METHODS if max(ss['median_parts_ms'][k], sb['median_parts_ms'][k]) >= 0.05)
    print(f"  store methods, median ms small/big: {parts}")
    print("  (rest = the pass minus the store methods above: trees, aggregation, detectors, RCA, "
          "learning, JSON encoding)")
    print()
    print(f"ratio big/small (median ms per pass): {ratio:.3f}   target <= {TARGET_RATIO}: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    print(f"total run time {result['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
