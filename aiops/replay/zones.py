"""Deviation zones, cascade order and SLA breaches. Pure functions over numpy arrays.

A zone opens when the actual value leaves the expected band
(``|deviation| >= enter``, where deviation is the distance from the expected
value in units of the band's half-width on that side: 1.0 = on the band
edge) and closes when it comes back inside ``exit`` half-widths (hysteresis:
0.5 by default, so a value hovering on the edge does not flicker). Zones
shorter than ``min_duration_s`` are dropped. A missing actual value keeps
the current state.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from aiops.replay.data import SLA
from telemetry.timefmt import iso


@dataclass(frozen=True)
class ZoneConfig:
    """``enter``/``exit``: band half-widths (1.0 / 0.5); ``min_duration_s``: shortest zone kept
    (default 3 steps: None); ``min_relative_excess``: a zone whose peak excess beyond the band is below
    this share of the expected value (0.05) is dropped (a 6-pod hour against an expected 5.9 is no deviation)."""

    enter: float = 1.0
    exit: float = 0.5
    min_duration_s: float | None = None
    min_relative_excess: float = 0.05

    def __post_init__(self):
        if not 0 <= self.exit <= self.enter:
            raise ValueError(f"zone exit must be within [0, enter={self.enter}], got {self.exit}")


@dataclass
class Zone:
    """A contiguous deviation of one metric. ``end_s`` is exclusive (last deviating step + step);
    excesses are beyond the band edge in the metric's units; ``integrated_excess`` is their sum times
    the step (units x seconds); ``peak_ratio`` = actual / expected at the peak."""

    service: str
    metric: str
    direction: str                # "above" | "below"
    start_s: float
    end_s: float
    peak_at_s: float
    onset_s: float                # start of the run of |deviation| >= exit that led into the zone
    peak_actual: float
    peak_expected: float
    peak_excess: float
    peak_deviation: float         # in band half-widths
    peak_ratio: float | None
    integrated_excess: float
    start_actual: float
    start_expected: float
    mean_actual: float
    mean_expected: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, name in (("start_s", "start"), ("end_s", "end"), ("peak_at_s", "peak_at"), ("onset_s", "onset")):
            d[name] = iso(d.pop(k))
        d["duration_s"] = self.duration_s
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def deviation(actual: np.ndarray, expected: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Signed distance from expected in band half-widths (NaN where actual is missing)."""
    eps = 1e-9 + 1e-6 * np.abs(expected)
    above = (actual - expected) / np.maximum(upper - expected, eps)
    below = (actual - expected) / np.maximum(expected - lower, eps)
    return np.where(actual >= expected, above, below)


def _index(times_s: np.ndarray, t: float) -> int:
    return int(np.searchsorted(times_s, t))


def find_zones(service: str, metric: str, times_s: np.ndarray, step_s: float, actual: np.ndarray,
               expected: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               config: ZoneConfig = ZoneConfig(), min_excess: float = 0.0) -> list[Zone]:
    """Zones of one metric on a regular grid (see the module docstring). A zone opens only on a step
    whose excess beyond the band is at least ``min_excess`` (metric units; the replay passes 0.5 for a
    count such as pods, whose band it widens by half a unit: less than one pod from the expected value
    is quantisation, not a deviation) and ``config.min_relative_excess`` of the expected value; it then
    spans the whole stretch outside the band around that step."""
    d = deviation(actual, expected, lower, upper)
    with np.errstate(invalid="ignore"):
        beyond = np.where(actual >= expected, actual - upper, lower - actual)
        significant = beyond >= np.maximum(config.min_relative_excess * np.abs(expected), min_excess)
    min_duration = config.min_duration_s if config.min_duration_s is not None else 3 * step_s
    runs: list[tuple[int, int, int]] = []  # (first, last deviating index, sign)
    open_sign, first, last = 0, -1, -1
    for i, v in enumerate(d):
        if not np.isfinite(v):
            continue
        if open_sign:
            if open_sign * v >= config.exit:
                if open_sign * v >= config.enter:
                    last = i
                continue
            runs.append((first, last, open_sign))
            open_sign = 0
        if abs(v) >= config.enter and significant[i]:
            open_sign, first, last = (1 if v > 0 else -1), i, i
    if open_sign:
        runs.append((first, last, open_sign))
    zones = []
    for first, last, sign in runs:
        # the zone is the whole stretch outside the band: extend back over the steps already outside it
        while first > 0 and np.isfinite(d[first - 1]) and sign * d[first - 1] >= config.enter:
            first -= 1
        if zones and first <= _index(times_s, zones[-1].end_s - step_s):
            continue  # already inside the previous zone
        sl = slice(first, last + 1)
        excess = (actual[sl] - upper[sl]) if sign > 0 else (lower[sl] - actual[sl])
        excess = np.where(np.isfinite(excess), excess, 0.0)
        start, end = float(times_s[first]), float(times_s[last]) + step_s
        if end - start < min_duration:
            continue
        onset = first
        while onset > 0 and np.isfinite(d[onset - 1]) and sign * d[onset - 1] >= config.exit:
            onset -= 1
        k = first + int(np.argmax(excess))
        exp_k = float(expected[k])
        if excess[k - first] < max(config.min_relative_excess * abs(exp_k), min_excess):
            continue
        a, e = actual[sl], expected[sl]
        ok = np.isfinite(a)
        zones.append(Zone(
            service=service, metric=metric, direction="above" if sign > 0 else "below",
            start_s=start, end_s=end, peak_at_s=float(times_s[k]), onset_s=float(times_s[onset]),
            peak_actual=float(actual[k]),
            peak_expected=exp_k, peak_excess=float(max(excess.max(), 0.0)), peak_deviation=float(abs(d[k])),
            peak_ratio=float(actual[k] / exp_k) if abs(exp_k) > 1e-9 else None,
            integrated_excess=float(np.clip(excess, 0, None).sum() * step_s),
            start_actual=float(actual[first]), start_expected=float(expected[first]),
            mean_actual=float(a[ok].mean()), mean_expected=float(e[ok].mean())))
    return zones


@dataclass
class CascadeStep:
    """One service in the cascade: its first zone, and how long after the first service's it began."""

    service: str
    metric: str
    direction: str
    start_s: float
    lag_s: float
    metrics: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"service": self.service, "metric": self.metric, "direction": self.direction,
                "start": iso(self.start_s), "lag_s": self.lag_s, "deviating_metrics": self.metrics}


#: Metric kinds in resource-chain order (capacity -> utilisation -> latency -> errors): when metrics
#: leave the band in the same step with the same onset, the one further upstream is named first.
KIND_ORDER = (("pods", "replicas", "instances", "workers", "nodes", "tasks"),
              ("cpu", "memory", "util", "saturation", "queue", "connections"),
              ("latency", "duration", "_ms"),
              ("error", "5xx", "fail", "timeout"))


def kind_rank(metric: str) -> int:
    name = metric.lower()
    return next((i for i, words in enumerate(KIND_ORDER) if any(w in name for w in words)), len(KIND_ORDER))


def zone_order(z: Zone, hint: tuple[str, str] | None = None) -> tuple:
    """Earliest start first; within a step, a zone of the ``hint`` (service, metric or route prefix:
    what trace-based RCA blamed), then the earlier onset (it was drifting out of the band already),
    then the resource-chain kind (:data:`KIND_ORDER`), then the larger peak deviation."""
    hinted = hint is not None and z.service == hint[0] and (z.metric == hint[1] or
                                                            z.metric.startswith(hint[1] + " "))
    return (z.start_s, not hinted, z.onset_s, kind_rank(z.metric), -z.peak_deviation)


def cascade(zones: list[Zone], hint: tuple[str, str] | None = None) -> list[CascadeStep]:
    """Services ordered by their first zone (see :func:`zone_order`). The first is the candidate cause."""
    first: dict[str, Zone] = {}
    metrics: dict[str, list[str]] = {}
    order = lambda z: zone_order(z, hint)  # noqa: E731
    for z in sorted(zones, key=order):
        first.setdefault(z.service, z)
        if z.metric not in metrics.setdefault(z.service, []):
            metrics[z.service].append(z.metric)
    ordered = sorted(first.values(), key=order)
    if not ordered:
        return []
    t0 = ordered[0].start_s
    return [CascadeStep(z.service, z.metric, z.direction, z.start_s, z.start_s - t0, metrics[z.service])
            for z in ordered]


@dataclass
class SLABreach:
    """A contiguous run where the actual value broke an SLA. ``expected_breach_steps``: steps of the
    run where the expected value broke it too (normal behaviour would have breached as well)."""

    sla: str
    service: str
    metric: str
    start_s: float
    end_s: float
    worst_actual: float
    expected_at_worst: float
    expected_breach_steps: int
    steps: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {"sla": self.sla, "service": self.service, "metric": self.metric, "start": iso(self.start_s),
                "end": iso(self.end_s), "duration_s": self.duration_s,
                "worst_actual": round(self.worst_actual, 4), "expected_at_worst": round(self.expected_at_worst, 4),
                "expected_would_breach": self.expected_breach_steps > 0,
                "expected_breach_steps": self.expected_breach_steps, "steps": self.steps}


def sla_breaches(sla: SLA, service: str, metric: str, times_s: np.ndarray, step_s: float, actual: np.ndarray,
                 expected: np.ndarray) -> list[SLABreach]:
    """Runs of consecutive steps where ``actual`` breaks ``sla``."""
    bad = sla.violated(actual)
    out = []
    i, n = 0, len(bad)
    while i < n:
        if not bad[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and bad[j + 1]:
            j += 1
        sl = slice(i, j + 1)
        seg = actual[sl]
        k = i + int(np.nanargmax(seg) if sla.op == "<=" else np.nanargmin(seg))
        out.append(SLABreach(sla.label(service), service, metric, float(times_s[i]), float(times_s[j]) + step_s,
                             float(actual[k]), float(expected[k]), int(sla.violated(expected[sl]).sum()),
                             j - i + 1))
        i = j + 1
    return out
