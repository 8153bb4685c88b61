"""Self-learned baselines per (service, route). Pure functions over a dataclass.

Latency is learned in log space (request latencies are roughly log-normal):
an EWMA of each batch's ln(median ms) and robust variance (from the median
absolute deviation), so a few slow requests in a batch barely move it. The
error ratio is an EWMA over requests; the request rate an EWMA over passes.
A batch of n requests moves an EWMA of per-request weight ``alpha`` by
``1 - (1 - alpha) ** n``, the same as n single updates of its mean.

Optional seasonality keeps an hour-of-week profile (168 buckets) of rate and
log-latency, so that a daily peak is expected rather than anomalous.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.series import WindowStats
from aiops.records import from_known
from aiops.signals import SeriesKey

HOURS_PER_WEEK = 168


def hour_of_week(epoch_s: float) -> int:
    """0 = Monday 00:00-01:00 UTC ... 167 = Sunday 23:00-24:00 UTC."""
    t = time.gmtime(epoch_s)
    return t.tm_wday * 24 + t.tm_hour


@dataclass
class Baseline:
    """What is normal for one series. Latencies in ms, rate in requests/s."""

    service: str
    route: str
    requests: int = 0            #: requests learned from
    passes: int = 0              #: passes that updated the rate
    log_mean: float = 0.0        #: EWMA of ln(latency ms)
    log_var: float = 0.0         #: EWMA variance of ln(latency ms)
    p95_ms: float = 0.0          #: EWMA of each batch's 95th percentile
    mean_ms: float = 0.0         #: EWMA of latency (ms)
    error_ratio: float = 0.0     #: EWMA share of requests with the error flag
    rate_per_s: float = 0.0      #: EWMA of the window's request rate
    updated_at: float = 0.0      #: epoch seconds of the last update
    first_seen_s: float = 0.0    #: start time of the first request learned from (epoch s)
    #: hour-of-week -> [rate_per_s, log_mean, passes]
    seasonal: dict[int, list[float]] = field(default_factory=dict)

    @property
    def key(self) -> SeriesKey:
        return (self.service, self.route)

    @property
    def p50_ms(self) -> float:
        """The learned median latency: exp of the log-space mean."""
        return math.exp(self.log_mean) if self.requests else 0.0

    @property
    def log_std(self) -> float:
        return math.sqrt(max(self.log_var, 0.0))

    def ready(self, config: AnalysisConfig) -> bool:
        return self.requests >= config.min_samples

    def expected_rate(self, at_s: float, config: AnalysisConfig) -> float:
        """Requests/s expected at ``at_s`` (seasonal bucket when learned)."""
        if config.seasonality:
            bucket = self.seasonal.get(hour_of_week(at_s))
            if bucket and bucket[2] >= config.seasonal_min_intervals:
                return bucket[0]
        return self.rate_per_s

    def expected_log_mean(self, at_s: float, config: AnalysisConfig) -> float:
        if config.seasonality:
            bucket = self.seasonal.get(hour_of_week(at_s))
            if bucket and bucket[2] >= config.seasonal_min_intervals:
                return bucket[1]
        return self.log_mean

    def to_dict(self) -> dict:
        data = asdict(self)
        data["seasonal"] = {str(k): v for k, v in self.seasonal.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Baseline":
        """The baseline of a stored dict (``seasonal`` keys are strings in JSON, ints here): unknown
        fields dropped, missing ones defaulted; ``ValueError`` when service or route is missing or
        ``seasonal`` is not an object of hour -> [rate, log mean, passes]."""
        seasonal = (data.get("seasonal") or {}) if isinstance(data, Mapping) else {}
        if not isinstance(seasonal, Mapping) or not all(isinstance(v, list) and len(v) == 3
                                                        for v in seasonal.values()):
            raise ValueError("a stored Baseline's seasonal must map hours of the week to [rate, log mean, passes]")
        return from_known(cls, data, seasonal={int(k): list(v) for k, v in seasonal.items()})


def _blend(old: float, new: float, weight: float) -> float:
    return old + weight * (new - old)


def learn_requests(baseline: Baseline, batch: WindowStats, now_s: float, config: AnalysisConfig) -> Baseline:
    """Fold a batch of new requests (never seen before) into the latency and
    error baselines. The first batch sets them outright."""
    n = batch.count
    if n == 0:
        return baseline
    b = Baseline(**{**baseline.__dict__, "seasonal": {k: list(v) for k, v in baseline.seasonal.items()}})
    batch_log_mean, batch_log_var = batch.robust_log_center, batch.robust_log_var
    if b.requests == 0:
        b.log_mean, b.log_var = batch_log_mean, batch_log_var
        b.p95_ms, b.mean_ms, b.error_ratio = batch.p95_ms, batch.mean_ms, batch.error_ratio
    else:
        w = 1.0 - (1.0 - config.baseline_alpha) ** n
        delta = batch_log_mean - b.log_mean
        b.log_mean += w * delta
        b.log_var = (1.0 - w) * (b.log_var + w * delta * delta) + w * batch_log_var
        b.p95_ms = _blend(b.p95_ms, batch.p95_ms, w)
        b.mean_ms = _blend(b.mean_ms, batch.mean_ms, w)
        b.error_ratio = _blend(b.error_ratio, batch.error_ratio, w)
    if b.requests == 0:
        b.first_seen_s = batch.first_start
    b.requests += n
    b.updated_at = now_s
    if config.seasonality:
        bucket = b.seasonal.setdefault(hour_of_week(now_s), [0.0, batch_log_mean, 0.0])
        bucket[1] = _blend(bucket[1], batch_log_mean, 1.0 - (1.0 - config.baseline_alpha) ** n)
    return b


def observed_window_s(baseline: Baseline, now_s: float, config: AnalysisConfig) -> float:
    """The part of the window the series existed in (seconds, at least 1):
    a series first seen 10 s ago has 10 s of window, not ``window_s``."""
    if not baseline.first_seen_s:
        return config.window_s
    return max(1.0, min(config.window_s, now_s - baseline.first_seen_s))


def learn_rate(baseline: Baseline, window_count: int, now_s: float, config: AnalysisConfig) -> Baseline:
    """Fold one pass's window request rate into the rate baseline."""
    rate = window_count / observed_window_s(baseline, now_s, config)
    b = Baseline(**{**baseline.__dict__, "seasonal": {k: list(v) for k, v in baseline.seasonal.items()}})
    b.rate_per_s = rate if b.passes == 0 else _blend(b.rate_per_s, rate, config.rate_alpha)
    b.passes += 1
    b.updated_at = now_s
    if config.seasonality:
        bucket = b.seasonal.setdefault(hour_of_week(now_s), [rate, b.log_mean, 0.0])
        bucket[0] = rate if bucket[2] == 0 else _blend(bucket[0], rate, config.rate_alpha)
        bucket[2] += 1
    return b


def slow_threshold_ms(baseline: Baseline, at_s: float, config: AnalysisConfig) -> float:
    """Latency (ms) above which a request of this series counts as slow: beyond
    the baseline's 3-sigma tail, ``latency_ratio`` times its median, and
    ``latency_min_delta_ms`` above it."""
    expected_ms = math.exp(baseline.expected_log_mean(at_s, config))
    sigma = max(baseline.log_std, 0.05)
    return max(expected_ms * math.exp(3.0 * sigma), expected_ms * config.latency_ratio,
               expected_ms + config.latency_min_delta_ms)


def batch_looks_anomalous(baseline: Baseline, batch: WindowStats, at_s: float, config: AnalysisConfig) -> bool:
    """True when a new batch should not be learned from: at least two errors
    and an error ratio above 3x the baseline's plus 5 points, or a median
    beyond the slow threshold. Keeps a fault that is still too young to be
    detected from dragging the baseline toward it."""
    if not baseline.requests:
        return False
    if errors_look_anomalous(baseline, batch.error_count, batch.count):
        return True
    return batch.p50_ms > slow_threshold_ms(baseline, at_s, config)


def errors_look_anomalous(baseline: Baseline, error_count: int, count: int) -> bool:
    """At least two errors among ``count`` requests, at a ratio above 3x the
    baseline's plus 5 points: too many to be the baseline's background errors."""
    return error_count >= 2 and error_count / count > 3 * baseline.error_ratio + 0.05
