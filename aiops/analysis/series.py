"""Spans -> per-(service, route) window statistics. Pure functions, no I/O.

A span here is a mapping with the span store's columns (``SPAN_COLUMNS``):
``service``, ``route``, ``status_code``, ``duration_ms``, ``error``,
``exception_type``, ``exception_message``, ``start_time`` ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from aiops.signals import SeriesKey
from aiops.stats import percentile

#: Fewest latest requests ``recent_error_ratio`` looks at.
ONSET_MIN_REQUESTS = 10


@dataclass
class WindowStats:
    """What one series did in a time window.

    Latencies in milliseconds; ``error_count`` counts spans with the error
    flag (5xx or an exception); ``timeouts`` counts 504s and exceptions whose
    type names a timeout; ``sample_errors`` holds up to 5 distinct
    ``(exception type, message, count)``, most frequent first.
    """

    key: SeriesKey
    count: int = 0
    error_count: int = 0
    server_errors: int = 0
    timeouts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    sample_errors: list[tuple[str, str, int]] = field(default_factory=list)
    first_start: float = math.inf
    last_start: float = -math.inf
    #: highest error ratio of the window's latest requests, over at least ``ONSET_MIN_REQUESTS`` of them
    recent_error_ratio: float = 0.0

    @property
    def error_ratio(self) -> float:
        return self.error_count / self.count if self.count else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def log_mean(self) -> float:
        """Mean of ln(latency ms) (latencies floored at 0.01 ms)."""
        values = self.latencies_ms
        return sum(math.log(max(v, 0.01)) for v in values) / len(values) if values else 0.0

    @property
    def robust_log_center(self) -> float:
        """ln of the median latency: a centre one slow request cannot move."""
        return math.log(max(self.p50_ms, 0.01)) if self.latencies_ms else 0.0

    @property
    def robust_log_var(self) -> float:
        """(1.4826 x median absolute deviation)^2 of ln(latency): the variance
        of a normal with the same spread, robust to outliers; 0 under 3 values."""
        if len(self.latencies_ms) < 3:
            return 0.0
        center = self.robust_log_center
        deviations = sorted(abs(math.log(max(v, 0.01)) - center) for v in self.latencies_ms)
        return (1.4826 * percentile(deviations, 50)) ** 2

    @property
    def log_var(self) -> float:
        values = self.latencies_ms
        if len(values) < 2:
            return 0.0
        logs = [math.log(max(v, 0.01)) for v in values]
        mean = sum(logs) / len(logs)
        return sum((x - mean) ** 2 for x in logs) / (len(logs) - 1)


def gave_up_waiting(span: Mapping) -> bool:
    """The span's own code saw a timeout (its exception type names one): it
    gave up waiting for something it called. A bare 504 is the route itself
    timing out, not its callee."""
    return "timeout" in (span.get("exception_type") or "").lower()


def is_timeout(span: Mapping) -> bool:
    """A 504, or an exception whose type names a timeout."""
    return span["status_code"] == 504 or "timeout" in (span.get("exception_type") or "").lower()


#: The span fields ``aggregate`` reads: enough for a long window (ids, path and stack trace left out).
AGGREGATE_COLUMNS = ("service", "route", "start_time", "duration_ms", "status_code", "error", "exception_type",
                     "exception_message")


def aggregate(spans: Iterable[Mapping]) -> dict[SeriesKey, WindowStats]:
    """Group spans by (service, route) into ``WindowStats`` (latencies sorted)."""
    stats: dict[SeriesKey, WindowStats] = {}
    errors: dict[SeriesKey, dict[tuple[str, str], int]] = {}
    flags: dict[SeriesKey, list[tuple[float, int]]] = {}
    for span in spans:
        key = (span["service"], span["route"])
        s = stats.get(key)
        if s is None:
            s = stats[key] = WindowStats(key)
        s.count += 1
        s.latencies_ms.append(span["duration_ms"])
        status = span["status_code"]
        s.status_counts[status] = s.status_counts.get(status, 0) + 1
        start = span["start_time"]
        if start < s.first_start:
            s.first_start = start
        if start > s.last_start:
            s.last_start = start
        if status >= 500:
            s.server_errors += 1
        if is_timeout(span):
            s.timeouts += 1
        flags.setdefault(key, []).append((start, 1 if span["error"] else 0))
        if span["error"]:
            s.error_count += 1
            sample = (span.get("exception_type") or f"HTTP {status}", span.get("exception_message") or "")
            bucket = errors.setdefault(key, {})
            bucket[sample] = bucket.get(sample, 0) + 1
    for key, s in stats.items():
        s.latencies_ms.sort()
        s.recent_error_ratio = _recent_error_ratio(flags[key])
        if key in errors:
            ranked = sorted(errors[key].items(), key=lambda kv: -kv[1])[:5]
            s.sample_errors = [(t, m, n) for (t, m), n in ranked]
    return stats


def _recent_error_ratio(flags: list[tuple[float, int]]) -> float:
    """Highest error ratio over the latest k requests, k >= ``ONSET_MIN_REQUESTS``
    (all of them when fewer): the error ratio since a fault began, which the
    whole window dilutes with the healthy minutes before it."""
    flags.sort()
    n = len(flags)
    best, errors = 0.0, 0
    for k, (_, error) in enumerate(reversed(flags), 1):
        errors += error
        if k >= min(ONSET_MIN_REQUESTS, n):
            best = max(best, errors / k)
    return best
