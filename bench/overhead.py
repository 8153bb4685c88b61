"""Per-request cost of the telemetry middleware vs bare Flask vs OpenTelemetry.

Calls each WSGI app in-process (no server, no sockets) the way a WSGI server
would: fresh environ copy, ``app(environ, start_response)``, iterate the
body, ``close()``. Three fresh Flask apps with the same trivial route are
measured in the same run, interleaved, in rotated order:

* ``bare``  - no instrumentation;
* ``ours``  - ``Telemetry(app)`` with a temporary SQLite file; every timed
  batch ends with ``Telemetry.flush`` so the writer's work is inside the clock;
* ``otel``  - ``FlaskInstrumentor().instrument_app`` with an SDK
  ``TracerProvider`` + ``BatchSpanProcessor`` + a no-op (counting) exporter;
  every timed batch ends with ``provider.force_flush()``.

Reported: median µs per request of each variant (wall clock and process CPU
time, which includes background threads), the µs each instrumentation adds,
and ours_added / otel_added. Spans are counted afterwards (DB rows, exporter
calls) so the numbers cannot come from a variant that silently did nothing.

    .venv/bin/python bench/overhead.py [--requests 5000] [--rounds 7] [--json]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flask import Flask  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from bench._common import count_rows, cpu_delta, cpu_snapshot, machine_info, median, print_machine_info  # noqa: E402

TARGET_PERCENT = 20.0


def _make_flask(name: str) -> Flask:
    app = Flask(name)

    @app.get("/ping")
    def ping():
        return "pong"

    return app


class Variant:
    """One app under test; ``after_batch`` runs inside the clock."""

    name = ""

    def __init__(self):
        self.app = None
        self.calls = 0

    def after_batch(self) -> None:
        pass

    def produced(self) -> dict:
        return {}

    def close(self) -> None:
        pass


class Bare(Variant):
    name = "bare"

    def __init__(self):
        super().__init__()
        self.app = _make_flask("bench_bare")


class Ours(Variant):
    name = "ours"

    def __init__(self, tmpdir: str, queue_size: int):
        super().__init__()
        from telemetry import Telemetry
        self.Telemetry = Telemetry
        self.db_path = os.path.join(tmpdir, "overhead.db")
        app = _make_flask("bench_ours")
        app.config.update(TELEMETRY_DB_PATH=self.db_path, TELEMETRY_QUEUE_SIZE=queue_size)
        Telemetry(app)
        self.app = app

    def after_batch(self) -> None:
        if not self.Telemetry.flush(self.app, timeout=60):
            raise RuntimeError("Telemetry.flush timed out after 60 s")

    def produced(self) -> dict:
        stats = self.Telemetry.stats(self.app)
        stats["db_rows"] = count_rows(self.db_path)
        return stats

    def close(self) -> None:
        self.Telemetry.state(self.app).store.close()


class OTel(Variant):
    name = "otel"

    def __init__(self, queue_size: int):
        super().__init__()
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        counter = self

        class CountingExporter(SpanExporter):
            def export(self, spans):
                counter.exported += len(spans)
                return SpanExportResult.SUCCESS

            def shutdown(self):
                pass

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        self.exported = 0
        self.provider = TracerProvider()
        # Queue as large as ours, so neither side gets cheaper by dropping spans.
        self.provider.add_span_processor(BatchSpanProcessor(CountingExporter(), max_queue_size=queue_size))
        app = _make_flask("bench_otel")
        FlaskInstrumentor().instrument_app(app, tracer_provider=self.provider)
        self.app = app

    def after_batch(self) -> None:
        if not self.provider.force_flush(60_000):
            raise RuntimeError("TracerProvider.force_flush timed out after 60 s")

    def produced(self) -> dict:
        return {"exported_spans": self.exported}

    def close(self) -> None:
        self.provider.shutdown()


def run_batch(variant: Variant, environ: dict, n: int) -> tuple[float, float]:
    """(wall s, process CPU s) for ``n`` requests plus ``after_batch``."""
    app = variant.app
    seen = []

    def start_response(status, headers, exc_info=None):
        seen.append(status)
        return _write

    copy = environ.copy
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(n):
        body = app(copy(), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    variant.after_batch()
    t1 = time.perf_counter()
    c1 = time.process_time()
    variant.calls += n
    if len(seen) != n or any(s != "200 OK" for s in seen):
        bad = [s for s in seen if s != "200 OK"][:3]
        raise RuntimeError(f"{variant.name}: {len(seen)} responses for {n} requests, unexpected: {bad}")
    return t1 - t0, c1 - c0


def _write(data) -> None:  # the WSGI write() callable; unused by Flask
    pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per timed batch (default 5000)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=2000, help="untimed requests per variant first (default 2000)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--requests and --rounds must be >= 1, --warmup >= 0")

    info = machine_info()
    total_per_variant = args.warmup + args.rounds * args.requests
    queue_size = total_per_variant + 1000  # nothing can be dropped, whatever the writer's pace
    environ = EnvironBuilder(path="/ping", method="GET", base_url="http://localhost/").get_environ()

    with tempfile.TemporaryDirectory(prefix="telemetry-overhead-") as tmpdir:
        variants = [Bare(), Ours(tmpdir, queue_size), OTel(queue_size)]
        try:
            for v in variants:  # warm-up: imports, caches, first DB writes, writer/exporter threads
                if args.warmup:
                    run_batch(v, environ, args.warmup)
            wall = {v.name: [] for v in variants}
            cpu = {v.name: [] for v in variants}
            orders = []
            other_cpu = []  # CPU s other processes used during each round
            for r in range(args.rounds):
                snap = cpu_snapshot()
                k = r % len(variants)
                order = variants[k:] + variants[:k]
                orders.append([v.name for v in order])
                for v in order:
                    w, c = run_batch(v, environ, args.requests)
                    wall[v.name].append(w / args.requests * 1e6)
                    cpu[v.name].append(c / args.requests * 1e6)
                other_cpu.append(cpu_delta(snap, cpu_snapshot())["other_cpu_s"])
                if not args.json:
                    print(f"  round {r + 1}/{args.rounds}: "
                          + "  ".join(f"{name} {wall[name][-1]:6.1f} us" for name in wall)
                          + f"   (other processes' cpu {other_cpu[-1]:.2f} s)", flush=True)
            produced = {v.name: v.produced() for v in variants}
        finally:
            for v in variants:
                v.close()

    ours_stats, otel_stats = produced["ours"], produced["otel"]
    checks = {
        "ours_written_equals_requests": ours_stats["written"] == total_per_variant,
        "ours_db_rows_equals_requests": ours_stats["db_rows"] == total_per_variant,
        "ours_no_drops": ours_stats["dropped_spans"] == 0,
        "ours_no_errors": ours_stats["write_errors"] == 0 and ours_stats["internal_errors"] == 0,
        "otel_exported_equals_requests": otel_stats["exported_spans"] == total_per_variant,
    }

    med_wall = {name: median(vals) for name, vals in wall.items()}
    med_cpu = {name: median(vals) for name, vals in cpu.items()}

    def added(med):
        ours_added, otel_added = med["ours"] - med["bare"], med["otel"] - med["bare"]
        ratio = 100.0 * ours_added / otel_added if otel_added > 0 else float("nan")
        return ours_added, otel_added, ratio

    ours_added, otel_added, ratio = added(med_wall)
    ours_added_cpu, otel_added_cpu, ratio_cpu = added(med_cpu)
    # Paired per round (same round, adjacent batches): a check on the medians above.
    paired_ours = median([o - b for o, b in zip(wall["ours"], wall["bare"])])
    paired_otel = median([o - b for o, b in zip(wall["otel"], wall["bare"])])
    paired_ratio = 100.0 * paired_ours / paired_otel if paired_otel > 0 else float("nan")

    result = {
        "benchmark": "overhead",
        "machine": info,
        "requests_per_batch": args.requests,
        "rounds": args.rounds,
        "warmup_per_variant": args.warmup,
        "requests_per_variant": total_per_variant,
        "round_orders": orders,
        "other_processes_cpu_s_per_round": other_cpu,
        "us_per_request_wall": wall,
        "us_per_request_cpu": cpu,
        "median_us_wall": med_wall,
        "median_us_cpu": med_cpu,
        "ours_added_us": ours_added,
        "otel_added_us": otel_added,
        "ours_vs_otel_added_percent": ratio,
        "ours_added_us_cpu": ours_added_cpu,
        "otel_added_us_cpu": otel_added_cpu,
        "ours_vs_otel_added_percent_cpu": ratio_cpu,
        "paired_ours_added_us": paired_ours,
        "paired_otel_added_us": paired_otel,
        "paired_ratio_percent": paired_ratio,
        "target_percent": TARGET_PERCENT,
        "ours_stats": ours_stats,
        "otel_stats": otel_stats,
        "checks": checks,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print_machine_info(info)
        print(f"method  : in-process WSGI calls to GET /ping, {args.rounds} rounds x {args.requests} requests per "
              f"variant, order rotated per round, {args.warmup} warm-up requests each; ours' batches end with "
              f"Telemetry.flush, otel's with force_flush (inside the clock); cpu = process time, all threads")
        print()
        print(f"{'variant':<8} {'median us/req':>14} {'min':>8} {'max':>8} {'median cpu us/req':>18} {'added us':>9}")
        for name in wall:
            add = "" if name == "bare" else f"{med_wall[name] - med_wall['bare']:9.2f}"
            print(f"{name:<8} {med_wall[name]:14.2f} {min(wall[name]):8.2f} {max(wall[name]):8.2f} "
                  f"{med_cpu[name]:18.2f} {add}")
        print()
        print(f"ours added  : {ours_added:7.2f} us/request (cpu {ours_added_cpu:.2f}, paired {paired_ours:.2f})")
        print(f"otel added  : {otel_added:7.2f} us/request (cpu {otel_added_cpu:.2f}, paired {paired_otel:.2f})")
        print(f"ours / otel : {ratio:7.1f} %   (cpu {ratio_cpu:.1f} %, paired {paired_ratio:.1f} %; "
              f"target <= {TARGET_PERCENT:.0f} %)")
        print()
        print(f"ours  : written={ours_stats['written']} db_rows={ours_stats['db_rows']} "
              f"dropped_spans={ours_stats['dropped_spans']} write_errors={ours_stats['write_errors']} "
              f"internal_errors={ours_stats['internal_errors']} queued={ours_stats['queued']} "
              f"(requests={total_per_variant})")
        print(f"otel  : exported_spans={otel_stats['exported_spans']} (requests={total_per_variant})")
        print(f"noise : other processes used {sum(other_cpu):.2f} CPU-s during the timed rounds "
              f"(max {max(other_cpu):.2f} s in one round); rerun if that is not ~0")
        print("checks: " + ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in checks.items()))
    if not all(checks.values()):
        print("error: a variant did not produce one span per request; the figures are not comparable",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
