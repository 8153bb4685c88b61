"""A seeded incident with its ground truth: an autoscaling stall that cascades into a downstream service.

Two services, one sample a minute:

``inventory``
    ``requests_per_s`` (a daily promotion ramps traffic from ~45 to ~150 rps
    between 14:00 and 14:10 and back down at 15:00; weekends run at 70 %),
    ``pods`` (an autoscaler targets one pod per 28 rps, min 2, max 10, adds at
    most 2 pods a minute), ``cpu_utilization_ratio`` (rps / (pods x 40 rps))
    and ``latency_p95_ms`` (queueing: 30 ms / (1 - utilisation), smoothed).
``checkout``
    ``requests_per_s`` (half of inventory's) and ``latency_p95_ms``: checkout
    waits on inventory through a bounded worker pool, which saturates two
    minutes after inventory slows down.

On the incident day the autoscaler stalls at 2 pods from ``stall_start``
(14:02) until an operator scales it by hand at ``stall_end`` (14:40).
:func:`generate` returns the series (history and incident day), the
incident's metadata and a :class:`GroundTruth` to score the replay against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aiops.replay.data import SLA, IncidentMeta, Series

DAY_S = 86400.0
#: Monday 2026-11-02 00:00:00 UTC: the incident day.
INCIDENT_DAY_S = 1_793_577_600.0


@dataclass
class GroundTruth:
    """What really happened (epoch seconds). ``zones`` lists (service, metric, direction,
    earliest start, latest start) for every metric that must deviate; ``cascade`` the services in order;
    ``quiet`` the metrics that must not deviate."""

    stall_start_s: float
    stall_end_s: float
    cause: tuple[str, str]
    cascade: list[str]
    zones: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    quiet: list[tuple[str, str]] = field(default_factory=list)
    expected_pods_in_stall: int = 6
    stalled_pods: int = 2


def generate(history_days: int = 7, seed: int = 7, stall_start_min: int = 14 * 60 + 2,
             stall_minutes: int = 38, day_s: float = INCIDENT_DAY_S, step_s: float = 60.0
             ) -> tuple[list[Series], IncidentMeta, GroundTruth]:
    """``history_days`` of normal days, then the incident day until 16:00. Same seed, same data."""
    rng = np.random.default_rng(seed)
    start = day_s - history_days * DAY_S
    end = day_s + 16 * 3600.0
    t = np.arange(start, end, step_s)
    n = len(t)
    minute = ((t % DAY_S) / 60.0).astype(int)
    weekday = (np.floor(t / DAY_S + 3) % 7).astype(int)  # 0 = Monday
    weekend = np.where(weekday >= 5, 0.7, 1.0)
    base = 45.0 + 10.0 * np.sin(2 * np.pi * (minute - 9 * 60) / 1440.0)
    promo = np.clip((minute - 14 * 60) / 10.0, 0, 1) * np.clip((15 * 60 + 10 - minute) / 10.0, 0, 1)
    drift = np.cumsum(rng.normal(0, 0.002, n))
    drift -= np.convolve(drift, np.ones(720) / 720, mode="same")  # slow wander, no trend
    rps = (base + 105.0 * promo) * weekend * np.exp(drift + rng.normal(0, 0.035, n))

    stall_start = day_s + stall_start_min * 60.0
    stall_end = stall_start + stall_minutes * 60.0
    stalled = (t >= stall_start) & (t < stall_end)
    pods = np.empty(n)
    current = 2.0
    for i in range(n):
        recent = rps[max(0, i - 2):i + 1].mean()
        desired = min(10.0, max(2.0, math.ceil(recent / 28.0)))
        if stalled[i]:
            desired = current  # the autoscaler stopped acting
        if desired > current:
            current = min(desired, current + 2)
        elif desired < current and i % 5 == 0:
            current -= 1
        pods[i] = current
    util = rps / (pods * 40.0)
    target_latency = 30.0 / (1.0 - np.minimum(util, 0.95)) * np.exp(rng.normal(0, 0.07, n))
    inv_latency = np.empty(n)
    level = target_latency[0]
    for i in range(n):
        level += 0.5 * (target_latency[i] - level)
        inv_latency[i] = level
    cpu = np.minimum(util, 1.0) * np.exp(rng.normal(0, 0.03, n))

    lag = int(round(120.0 / step_s))
    waited = np.concatenate([np.full(lag, inv_latency[0]), inv_latency[:-lag]])
    pressure = np.maximum(0.0, waited - 120.0) / 150.0
    checkout_latency = 90.0 * (1.0 + pressure) * np.exp(rng.normal(0, 0.06, n))
    checkout_rps = rps / 2.0 * np.exp(rng.normal(0, 0.03, n))

    series = [
        Series("inventory", "requests_per_s", t, np.round(rps, 2)),
        Series("inventory", "pods", t, pods),
        Series("inventory", "cpu_utilization_ratio", t, np.round(cpu, 4)),
        Series("inventory", "latency_p95_ms", t, np.round(inv_latency, 1)),
        Series("checkout", "requests_per_s", t, np.round(checkout_rps, 2)),
        Series("checkout", "latency_p95_ms", t, np.round(checkout_latency, 1)),
    ]
    incident = IncidentMeta(
        "INC-REPLAY-1", stall_start + 240.0, stall_end + 300.0, ["inventory", "checkout"],
        [SLA("checkout", "latency_p95_ms", "<=", 250.0), SLA("inventory", "latency_p95_ms", "<=", 200.0)],
        "Checkout slow during the 14:00 promotion")
    truth = GroundTruth(
        stall_start_s=stall_start, stall_end_s=stall_end, cause=("inventory", "pods"),
        cascade=["inventory", "checkout"],
        zones=[("inventory", "pods", "below", stall_start, stall_start + 300.0),
               ("inventory", "cpu_utilization_ratio", "above", stall_start, stall_start + 420.0),
               ("inventory", "latency_p95_ms", "above", stall_start, stall_start + 420.0),
               ("checkout", "latency_p95_ms", "above", stall_start + 120.0, stall_start + 600.0)],
        quiet=[("inventory", "requests_per_s"), ("checkout", "requests_per_s")])
    return series, incident, truth


def split(series: list[Series], cut_s: float) -> tuple[list[Series], list[Series]]:
    """(history before ``cut_s``, actual from ``cut_s``): the two CSV files of the product."""
    hist, actual = [], []
    for s in series:
        m = s.timestamps_s < cut_s
        hist.append(Series(s.service, s.metric, s.timestamps_s[m], s.values[m]))
        actual.append(Series(s.service, s.metric, s.timestamps_s[~m], s.values[~m]))
    return hist, actual
