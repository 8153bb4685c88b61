"""Data for the dashboard's charts: span rows -> per-route RED time series. Pure, no I/O.

RED = Rate (requests/s), Errors (share of requests with the error flag) and
Duration (median and 95th percentile latency, ms), per (service, route), in
equal time buckets of ``step_s`` seconds. The baseline band of a route is the
learned log-normal latency model: ``exp(log_mean +- band_sigmas * log_std)``
ms around the learned median.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from aiops.signals import SeriesKey
from aiops.stats import percentile

#: Time ranges the page offers (seconds) and the longest the API serves.
RANGE_CHOICES_S = (300, 900, 3600, 6 * 3600, 24 * 3600)
MAX_RANGE_S = 7 * 24 * 3600.0
#: Fewest and most buckets per series.
MIN_POINTS, MAX_POINTS = 2, 500
#: Default width of the baseline band, in log-space standard deviations.
BAND_SIGMAS = 2.0


@dataclass(frozen=True)
class Grid:
    """``points`` buckets of ``step_s`` seconds ending at ``end_s`` (epoch s)."""

    end_s: float
    step_s: float
    points: int

    @property
    def start_s(self) -> float:
        return self.end_s - self.step_s * self.points

    def times(self) -> list[float]:
        """Start time of every bucket (epoch s)."""
        return [self.start_s + i * self.step_s for i in range(self.points)]

    def index(self, t_s: float) -> int | None:
        """Bucket of ``t_s``, or None outside the grid."""
        if t_s < self.start_s or t_s >= self.end_s:
            return None
        return min(self.points - 1, int((t_s - self.start_s) // self.step_s))


def make_grid(now_s: float, range_s: float, points: int) -> Grid:
    """A grid covering ``range_s`` seconds up to ``now_s``, aligned to whole
    steps (so a chart does not shift between two refreshes)."""
    points = max(MIN_POINTS, min(MAX_POINTS, int(points)))
    step_s = max(1.0, math.ceil(range_s / points))
    end_s = (math.floor(now_s / step_s) + 1) * step_s
    return Grid(end_s=end_s, step_s=step_s, points=int(math.ceil(range_s / step_s)))


def red_series(rows: Iterable[tuple], grid: Grid) -> dict[SeriesKey, dict[str, list]]:
    """Per (service, route): ``requests_per_s``, ``error_ratio`` (None in an
    empty bucket), ``p50_ms``, ``p95_ms`` (None in an empty bucket) and the
    totals ``request_count``, ``error_count`` over the grid.

    ``rows``: ``(service, route, start_time, duration_ms, error)`` per span."""
    buckets: dict[SeriesKey, list[list]] = {}
    start_s, step_s, last = grid.start_s, grid.step_s, grid.points - 1
    for service, route, start_time, duration_ms, error in rows:
        if start_time < start_s or start_time >= grid.end_s:
            continue
        i = min(last, int((start_time - start_s) // step_s))
        key = (service, route)
        cells = buckets.get(key)
        if cells is None:
            cells = buckets[key] = [[[], 0] for _ in range(grid.points)]
        cells[i][0].append(duration_ms)
        if error:
            cells[i][1] += 1
    out: dict[SeriesKey, dict[str, list]] = {}
    for key, cells in buckets.items():
        rate, errors, p50, p95 = [], [], [], []
        total = failed = 0
        for latencies, error_count in cells:
            n = len(latencies)
            total += n
            failed += error_count
            rate.append(round(n / grid.step_s, 4))
            if n:
                latencies.sort()
                errors.append(round(error_count / n, 4))
                p50.append(round(percentile(latencies, 50), 2))
                p95.append(round(percentile(latencies, 95), 2))
            else:
                errors.append(None)
                p50.append(None)
                p95.append(None)
        out[key] = {"requests_per_s": rate, "error_ratio": errors, "p50_ms": p50, "p95_ms": p95,
                    "request_count": total, "error_count": failed}
    return out


def latency_band_ms(log_mean: float, log_std: float, sigmas: float = BAND_SIGMAS) -> tuple[float, float]:
    """(low, high) latency in ms of a log-normal baseline, ``sigmas`` wide."""
    return math.exp(log_mean - sigmas * log_std), math.exp(log_mean + sigmas * log_std)

