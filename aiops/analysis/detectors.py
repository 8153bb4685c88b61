"""Detectors: pure functions judging one series' window against its baseline.

Each detector has the signature ``(stats, baseline, context) -> Anomaly | None``
and is registered by name in ``DETECTORS``; ``get_detector(name)`` raises a
``KeyError`` that lists the valid names. ``detect_all`` runs them all.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from aiops.analysis.baseline import Baseline, slow_threshold_ms
from aiops.analysis.config import AnalysisConfig
from aiops.analysis.series import WindowStats
from aiops.signals import Anomaly, SeriesKey
from aiops.stats import percentile


@dataclass
class DetectionContext:
    """What detectors may look at besides their own series.

    ``now_s``: end of the window (epoch s). ``window``: every series' stats.
    ``last_seen_s``: per series, start time of its latest span in the store
    (None if unknown). ``timeouts_from_callers``: per series, how many
    caller spans in the window failed with a timeout while calling it.
    """

    now_s: float
    config: AnalysisConfig
    window: dict[SeriesKey, WindowStats]
    last_seen_s: dict[SeriesKey, float] = field(default_factory=dict)
    timeouts_from_callers: dict[SeriesKey, int] = field(default_factory=dict)
    #: series that other series call (from the dependency graph)
    called_routes: set[SeriesKey] = field(default_factory=set)


Detector = Callable[[WindowStats | None, Baseline, DetectionContext], "Anomaly | None"]
DETECTORS: dict[str, Detector] = {}


def register(name: str) -> Callable[[Detector], Detector]:
    def add(fn: Detector) -> Detector:
        DETECTORS[name] = fn
        return fn
    return add


def get_detector(name: str) -> Detector:
    try:
        return DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; valid detectors: {', '.join(sorted(DETECTORS))}") from None


def severity_of(error_ratio: float, latency_ratio: float, config: AnalysisConfig) -> str:
    """critical: error ratio > 50%; high: > 20% or latency > 5x; else medium
    (thresholds from the config)."""
    if error_ratio > config.critical_error_ratio:
        return "critical"
    if error_ratio > config.high_error_ratio or latency_ratio > config.high_latency_ratio:
        return "high"
    return "medium"


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), computed in log space."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
             for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    return max(0.0, 1.0 - poisson_cdf(k - 1, lam))


def poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam)."""
    if k < 0:
        return 0.0
    term = total = math.exp(-lam)
    for i in range(1, k + 1):
        term *= lam / i
        total += term
    return min(1.0, total)


def _samples(stats: WindowStats) -> list[dict]:
    return [{"type": t, "message": m, "count": n} for t, m, n in stats.sample_errors]


@register("latency")
def detect_latency(stats: WindowStats | None, baseline: Baseline, ctx: DetectionContext) -> Anomaly | None:
    """Two tests on the window, either suffices; both ignore shifts smaller
    than ``latency_min_delta_ms`` (tiny routes jitter by whole multiples):

    - shift: the window median is ``latency_ratio`` times the baseline
      median, and its shift in log space over the median's standard error
      (1.25 sigma / sqrt(n)) is at least ``latency_z``;
    - onset: requests beyond the baseline's 3-sigma tail (and beyond
      ``latency_ratio`` times its median) are more frequent than the tail
      allows (binomial tail below ``error_p_value``, at least
      ``error_min_count`` of them). This fires within seconds of a fault,
      long before the median of a 60 s window moves.

    Using the median and counts, not the mean, keeps single slow requests
    (jitter) from counting.
    """
    config = ctx.config
    if stats is None or stats.count < config.min_requests or not baseline.ready(config):
        return None
    expected_log = baseline.expected_log_mean(ctx.now_s, config)
    expected_ms = math.exp(expected_log)
    sigma = max(baseline.log_std, 0.05)
    n = stats.count

    median_ms = stats.p50_ms
    z = (math.log(max(median_ms, 0.01)) - expected_log) / (1.25 * sigma / math.sqrt(n))
    shifted = (median_ms >= expected_ms * config.latency_ratio and z >= config.latency_z
               and median_ms - expected_ms >= config.latency_min_delta_ms)

    tail_ms = slow_threshold_ms(baseline, ctx.now_s, config)
    slow = [v for v in stats.latencies_ms if v > tail_ms]
    tail_p = max(0.5 * math.erfc(math.log(tail_ms / expected_ms) / (sigma * math.sqrt(2.0))), 0.005)
    onset_p = binomial_sf(len(slow), n, tail_p) if len(slow) >= config.error_min_count else 1.0
    onset = onset_p < config.error_p_value

    if not shifted and not onset:
        return None
    current_ms = median_ms if shifted else percentile(slow, 50)
    ratio = current_ms / expected_ms if expected_ms > 0 else math.inf
    scope = f" in {len(slow)} of {n} requests" if not shifted else ""
    return Anomaly(
        type="latency_anomaly", service=stats.key[0], endpoint=stats.key[1],
        severity=severity_of(stats.error_ratio, ratio, config),
        baseline_ms=expected_ms, current_ms=current_ms, deviation=ratio,
        score=max(z, -math.log10(max(onset_p, 1e-300))), detected_at=ctx.now_s,
        request_count=n, error_ratio=stats.error_ratio, baseline_error_ratio=baseline.error_ratio,
        rate_per_s=n / config.window_s, baseline_rate_per_s=baseline.rate_per_s,
        description=f"Latency spike: {current_ms:.0f}ms (baseline: {expected_ms:.0f}ms, {ratio:.1f}x slower){scope}",
        sample_errors=_samples(stats),
    )


@register("errors")
def detect_errors(stats: WindowStats | None, baseline: Baseline, ctx: DetectionContext) -> Anomaly | None:
    """More errors than the baseline error ratio explains: the binomial tail
    probability of seeing this many is below ``error_p_value``, with at
    least ``error_min_count`` errors and an error ratio (since the onset:
    ``recent_error_ratio``) of ``error_min_ratio``."""
    config = ctx.config
    if stats is None or stats.count < config.min_requests or not baseline.ready(config):
        return None
    k, n = stats.error_count, stats.count
    # The ratio since the onset: the window still holds the healthy minute
    # before a spike, which would delay detection by seconds.
    ratio = max(stats.error_ratio, stats.recent_error_ratio)
    if k < config.error_min_count or ratio < config.error_min_ratio:
        return None
    p0 = min(max(baseline.error_ratio, 0.001), 0.5)
    p_value = binomial_sf(k, n, p0)
    if p_value >= config.error_p_value:
        return None
    latency_ratio = stats.p50_ms / baseline.p50_ms if baseline.p50_ms else 1.0
    return Anomaly(
        type="error_spike", service=stats.key[0], endpoint=stats.key[1],
        severity=severity_of(ratio, latency_ratio, config),
        baseline_ms=baseline.p50_ms, current_ms=stats.p50_ms, deviation=ratio / max(baseline.error_ratio, 0.01),
        rate_per_s=n / config.window_s, baseline_rate_per_s=baseline.rate_per_s,
        score=-math.log10(max(p_value, 1e-300)), detected_at=ctx.now_s,
        request_count=n, error_ratio=ratio, baseline_error_ratio=baseline.error_ratio,
        description=(f"Error spike: {ratio:.0%} of requests failing ({k} of {n} in the last "
                     f"{config.window_s:.0f}s; baseline {baseline.error_ratio:.1%})"),
        sample_errors=_samples(stats),
    )


@register("timeout")
def detect_timeout(stats: WindowStats | None, baseline: Baseline, ctx: DetectionContext) -> Anomaly | None:
    """A route that stopped completing requests.

    Two signals, either suffices:
    - callers' requests to it time out (``timeouts_from_callers``) or its own
      requests end in timeouts (504, ``*Timeout*`` exceptions), at least
      ``error_min_count`` of them;
    - it has been silent for at least one pass interval, a gap in which its
      baseline expects at least ``stall_min_expected`` requests, while other
      routes of the same service keep serving (and, for a route others
      call, while its callers time out). A route that is merely quiet (low
      expected count), a whole service that went quiet, or a callee its
      callers stopped calling is not a stall.
    """
    config = ctx.config
    if not baseline.ready(config):
        return None
    key = baseline.key
    own_timeouts = stats.timeouts if stats is not None else 0
    caller_timeouts = ctx.timeouts_from_callers.get(key, 0)
    timeouts = own_timeouts + caller_timeouts
    last_seen = ctx.last_seen_s.get(key)
    gap_s = (ctx.now_s - last_seen) if last_seen is not None else 0.0
    gap_s = min(gap_s, config.window_s)
    expected_in_gap = baseline.expected_rate(ctx.now_s, config) * gap_s
    service_busy = any(k[0] == key[0] and k != key and s.last_start >= ctx.now_s - gap_s / 2
                       for k, s in ctx.window.items())
    # A route others call is stalled only if its callers notice (time out);
    # a callee they merely stopped calling (their earlier step failed) is not.
    called = key in ctx.called_routes
    stalled = gap_s >= config.interval_s and expected_in_gap >= config.stall_min_expected \
        and math.exp(-expected_in_gap) < config.error_p_value and service_busy \
        and (not called or caller_timeouts > 0)
    if timeouts < config.error_min_count and not stalled:
        return None
    count = stats.count if stats is not None else 0
    error_ratio = stats.error_ratio if stats is not None else 0.0
    if timeouts >= config.error_min_count:
        description = (f"Timeouts: {timeouts} requests to {key[1]} timed out in the last "
                       f"{config.window_s:.0f}s ({caller_timeouts} seen by callers)")
    else:
        description = (f"Stalled: no request to {key[1]} completed for {gap_s:.0f}s "
                       f"(about {expected_in_gap:.0f} expected)")
    current_ms = stats.p95_ms if stats is not None else gap_s * 1000.0
    return Anomaly(
        type="timeout", service=key[0], endpoint=key[1],
        severity="critical" if stalled or error_ratio > config.critical_error_ratio else "high",
        baseline_ms=baseline.p50_ms, current_ms=current_ms,
        deviation=current_ms / baseline.p50_ms if baseline.p50_ms else 0.0,
        score=float(timeouts) if timeouts else expected_in_gap, detected_at=ctx.now_s,
        request_count=count, error_ratio=error_ratio, baseline_error_ratio=baseline.error_ratio,
        rate_per_s=count / config.window_s, baseline_rate_per_s=baseline.rate_per_s,
        description=description, sample_errors=_samples(stats) if stats is not None else [],
    )


@register("traffic")
def detect_traffic(stats: WindowStats | None, baseline: Baseline, ctx: DetectionContext) -> Anomaly | None:
    """A surge or drop of the request rate: the window's count is
    ``traffic_ratio`` times the expected count (or below it by that factor)
    and the Poisson tail probability is below ``traffic_p_value``, with at
    least ``traffic_min_expected`` requests expected."""
    config = ctx.config
    warmed_up = baseline.passes >= 6 and ctx.now_s - baseline.first_seen_s >= 2 * config.window_s
    if not baseline.ready(config) or not warmed_up:
        return None
    expected = baseline.expected_rate(ctx.now_s, config) * config.window_s
    if expected < config.traffic_min_expected:
        return None
    count = stats.count if stats is not None else 0
    ratio = count / expected
    if ratio >= config.traffic_ratio and poisson_sf(count, expected) < config.traffic_p_value:
        kind, word = "traffic_surge", "surge"
    elif ratio <= 1.0 / config.traffic_ratio and poisson_cdf(count, expected) < config.traffic_p_value:
        kind, word = "traffic_drop", "drop"
    else:
        return None
    return Anomaly(
        type=kind, service=baseline.service, endpoint=baseline.route, severity="medium",
        baseline_ms=baseline.p50_ms, current_ms=stats.p50_ms if stats else 0.0, deviation=ratio,
        score=expected, detected_at=ctx.now_s, request_count=count,
        error_ratio=stats.error_ratio if stats else 0.0, baseline_error_ratio=baseline.error_ratio,
        rate_per_s=count / config.window_s, baseline_rate_per_s=expected / config.window_s,
        description=(f"Traffic {word}: {count / config.window_s:.2f} req/s "
                     f"(expected {expected / config.window_s:.2f} req/s, {ratio:.1f}x)"),
    )


def detect_all(baselines: dict[SeriesKey, Baseline], ctx: DetectionContext,
               names: tuple[str, ...] = ("timeout", "errors", "latency", "traffic")) -> list[Anomaly]:
    """Every anomaly of every learned series. A stalled route reports its
    timeout only (its latency and traffic follow from it)."""
    found: list[Anomaly] = []
    for key, baseline in baselines.items():
        stats = ctx.window.get(key)
        for name in names:
            anomaly = get_detector(name)(stats, baseline, ctx)
            if anomaly is None:
                continue
            if name == "traffic" and any(a.key == key for a in found):
                continue  # a drop or surge alongside a failure is a symptom, not news
            found.append(anomaly)
    return found
