"""Seeded synthetic traffic with known faults: spans plus their ground truth.

Like ruptures' generators, ``generate`` returns the data together with what
is true about it, so tests and benchmarks can score detection and
root-cause analysis. Spans have the span store's columns; each request of
an entry route calls its callees in order, as a Flask app calling other
routes over HTTP would.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from aiops.signals import SeriesKey
from telemetry.store import SPAN_COLUMNS


@dataclass(frozen=True)
class RouteSpec:
    """One route: own work (log-normal, median ``median_ms``, spread
    ``sigma``), background ``error_rate`` and the routes it calls in order."""

    median_ms: float = 20.0
    sigma: float = 0.3
    error_rate: float = 0.001
    calls: tuple[SeriesKey, ...] = ()


@dataclass(frozen=True)
class Fault:
    """A fault on ``key`` during [start_s, end_s): ``latency`` adds
    ``magnitude`` ms; ``error`` fails a ``magnitude`` share of requests;
    ``timeout`` makes the route hang ``magnitude`` ms (callers give up after
    their ``client_timeout_ms``)."""

    key: SeriesKey
    kind: str
    start_s: float
    end_s: float
    magnitude: float


@dataclass
class Traffic:
    spans: list[dict]
    faults: list[Fault]
    entry_rates: dict[SeriesKey, float]
    routes: dict[SeriesKey, RouteSpec] = field(default_factory=dict)


def shop_routes(service: str = "shop") -> dict[SeriesKey, RouteSpec]:
    """The demo shop's routes: /checkout calls /inventory then /payment."""
    return {
        (service, "/health"): RouteSpec(2.0, 0.2),
        (service, "/inventory"): RouteSpec(15.0, 0.3),
        (service, "/payment"): RouteSpec(40.0, 0.3),
        (service, "/checkout"): RouteSpec(5.0, 0.2, calls=((service, "/inventory"), (service, "/payment"))),
    }


def deep_routes() -> dict[SeriesKey, RouteSpec]:
    """Three services, a chain four deep and a fan-out:
    gateway /order -> orders /create -> (stock /reserve, pricing /quote -> pricing /tax)."""
    return {
        ("gateway", "/order"): RouteSpec(3.0, 0.2, calls=(("orders", "/create"),)),
        ("orders", "/create"): RouteSpec(8.0, 0.3, calls=(("stock", "/reserve"), ("pricing", "/quote"))),
        ("stock", "/reserve"): RouteSpec(12.0, 0.3),
        ("pricing", "/quote"): RouteSpec(6.0, 0.3, calls=(("pricing", "/tax"),)),
        ("pricing", "/tax"): RouteSpec(10.0, 0.3),
        ("gateway", "/status"): RouteSpec(1.0, 0.2),
    }


def generate(routes: dict[SeriesKey, RouteSpec], entry_rates: dict[SeriesKey, float], start_s: float,
             duration_s: float, faults: list[Fault] = (), seed: int = 0,
             client_timeout_ms: float = 5000.0) -> Traffic:
    """Poisson arrivals at ``entry_rates`` (requests/s) for ``duration_s``."""
    rng = random.Random(seed)
    spans: list[dict] = []

    def active(key: SeriesKey, kind: str, at_s: float) -> Fault | None:
        for f in faults:
            if f.key == key and f.kind == kind and f.start_s <= at_s < f.end_s:
                return f
        return None

    def new_id(bits: int) -> str:
        return f"{rng.getrandbits(bits) or 1:0{bits // 4}x}"

    def call(key: SeriesKey, trace_id: str, parent: str | None, at_s: float) -> dict:
        """Run one request of ``key`` starting at ``at_s``; return its span."""
        spec = routes[key]
        span_id = new_id(64)
        own_ms = spec.median_ms * math.exp(rng.gauss(0.0, spec.sigma))
        slow = active(key, "latency", at_s)
        if slow:
            own_ms += slow.magnitude
        status, exc_type, exc_msg = 200, None, None
        elapsed_ms = own_ms / 2
        hang = active(key, "timeout", at_s)
        if hang:
            elapsed_ms = hang.magnitude
            status, exc_type, exc_msg = 504, "simulation.chaos.InjectedFault", "injected fault: timeout"
        else:
            for callee in spec.calls:
                child = call(callee, trace_id, span_id, at_s + elapsed_ms / 1000.0)
                if child.get("_timed_out"):
                    elapsed_ms += client_timeout_ms
                    status, exc_type = 504, "app.UpstreamTimeout"
                    exc_msg = f"{callee[1]} did not answer within {client_timeout_ms / 1000:g} s"
                    break
                elapsed_ms += child["duration_ms"]
                if child["status_code"] >= 500:
                    status, exc_type = 502, "app.UpstreamFailure"
                    exc_msg = f"{callee[1]} returned HTTP {child['status_code']}"
                    break
            elapsed_ms += own_ms / 2
            failing = active(key, "error", at_s)
            if status == 200 and (rng.random() < spec.error_rate or (failing and rng.random() < failing.magnitude)):
                status = 500
                exc_type = "simulation.chaos.InjectedFault" if failing else "app.DemoFailure"
                exc_msg = "injected fault" if failing else f"{key[1]} failed: transient backend error"
        span = {
            "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent, "service": key[0],
            "route": key[1], "method": "GET", "path": key[1], "status_code": status, "start_time": at_s,
            "duration_ms": elapsed_ms, "error": int(status >= 500 or exc_type is not None),
            "exception_type": exc_type, "exception_message": exc_msg, "stacktrace": None,
        }
        spans.append(span)
        if hang and hang.magnitude > client_timeout_ms and parent is not None:
            span["_timed_out"] = True
        return span

    for key, rate in entry_rates.items():
        t = start_s
        while True:
            t += rng.expovariate(rate)
            if t >= start_s + duration_s:
                break
            call(key, new_id(128), None, t)
    for span in spans:
        span.pop("_timed_out", None)
    spans.sort(key=lambda s: s["start_time"] + s["duration_ms"] / 1000.0)  # the order they complete in
    return Traffic(spans, list(faults), dict(entry_rates), dict(routes))


def as_row(span: dict) -> tuple:
    """A span dict as the span store's tuple (``SPAN_COLUMNS`` order)."""
    return tuple(span[c] for c in SPAN_COLUMNS)


def replay(traffic: Traffic, write, run_pass, start_s: float, end_s: float, interval_s: float) -> list:
    """Feed ``traffic`` into a store as it would arrive and analyse on a clock.

    Before each pass at time t (every ``interval_s`` from ``start_s`` to
    ``end_s``), ``write(rows)`` receives the span tuples completed by t;
    ``run_pass(t)`` then runs. Returns the results of ``run_pass``.
    """
    results, i, spans = [], 0, traffic.spans
    t = start_s
    while t <= end_s:
        batch = []
        while i < len(spans) and spans[i]["start_time"] + spans[i]["duration_ms"] / 1000.0 <= t:
            batch.append(as_row(spans[i]))
            i += 1
        if batch:
            write(batch)
        results.append(run_pass(t))
        t += interval_s
    return results
