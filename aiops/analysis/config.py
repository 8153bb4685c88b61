"""The analysis engine's settings: every AIOPS_* key of the pass, declared once.

``AnalysisConfig`` is the typed view the pure algorithms take; each
``setting`` field is its config key (name, default, parser, unit, help text),
so ``ANALYSIS_CONFIG`` (read once by ``AIOps.init_app``) and the README's
table come from the same declaration. Fields without a key are constants of
the algorithms.
"""
from __future__ import annotations

from dataclasses import dataclass

from telemetry.config import ConfigKey, as_bool, as_number, config_keys, from_settings, setting

_pos = as_number(0.0, min_exclusive=True)
_ratio = as_number(0.0, 1.0)


@dataclass(frozen=True)
class AnalysisConfig:
    """Thresholds and time constants. Defaults are the product's defaults."""

    interval_s: float = setting("AIOPS_ANALYSIS_INTERVAL_S", 10.0, _pos, "seconds",
        "Time between background passes.")
    window_s: float = setting("AIOPS_WINDOW_S", 60.0, _pos, "seconds", "Recent window every detector judges.")
    baseline_alpha: float = setting("AIOPS_BASELINE_ALPHA", 0.01, as_number(0.0, 1.0, min_exclusive=True),
        "weight per request",
        "EWMA weight of one request in the latency and error baselines.")
    rate_alpha: float = setting("AIOPS_RATE_ALPHA", 0.1, as_number(0.0, 1.0, min_exclusive=True), "weight per pass",
        "EWMA weight of one pass in the request-rate baseline.")
    min_samples: int = setting("AIOPS_MIN_SAMPLES", 30, as_number(1, integer=True), "requests",
        "Requests a route's baseline needs before the route is judged at all.")
    min_requests: int = setting("AIOPS_MIN_REQUESTS", 5, as_number(1, integer=True), "requests",
        "Requests in the window before latency and errors are judged.")
    latency_ratio: float = setting("AIOPS_LATENCY_RATIO", 1.5, as_number(1.0, min_exclusive=True), "ratio",
        "Latency over this multiple of the baseline median can be an anomaly.")
    latency_z: float = setting("AIOPS_LATENCY_Z", 4.0, _pos, "z-score",
        "Significance a shift of the window median needs (log space).")
    latency_min_delta_ms: float = setting("AIOPS_LATENCY_MIN_DELTA_MS", 25.0, as_number(0.0), "milliseconds",
        "Latency shifts smaller than this never count (a 2 ms route jitters by whole multiples).")
    error_min_ratio: float = setting("AIOPS_ERROR_MIN_RATIO", 0.05, _ratio, "ratio",
        "Smallest window error ratio that can be a spike.")
    error_min_count: int = setting("AIOPS_ERROR_MIN_COUNT", 3, as_number(1, integer=True), "errors",
        "Fewest errors (or slow requests) in the window that can be a spike.")
    error_p_value: float = setting("AIOPS_ERROR_P_VALUE", 1e-4, as_number(0.0, 1.0, min_exclusive=True), "probability",
        "Binomial tail probability (given the baseline ratio) below which errors (or slow requests) are a spike.")
    stall_min_expected: float = setting("AIOPS_STALL_MIN_EXPECTED", 8.0, _pos, "requests",
        "Requests the baseline must expect during a silence before a route counts as stalled.")
    traffic_ratio: float = setting("AIOPS_TRAFFIC_RATIO", 3.0, as_number(1.0, min_exclusive=True), "ratio",
        "Rate over this multiple of the expected rate is a surge; under its inverse, a drop.")
    traffic_min_expected: float = setting("AIOPS_TRAFFIC_MIN_EXPECTED", 20.0, _pos, "requests",
        "Requests the baseline must expect in the window before traffic is judged.")
    traffic_p_value: float = 1e-6       #: Poisson tail probability for a surge/drop
    correlation_window_s: float = setting("AIOPS_CORRELATION_WINDOW_S", 300.0, _pos, "seconds",
        "Related anomalies this close in time join one incident.")
    auto_resolve_s: float = setting("AIOPS_AUTO_RESOLVE_S", 120.0, _pos, "seconds",
        "An incident with no anomaly for this long resolves itself.")
    critical_error_ratio: float = setting("AIOPS_SEVERITY_CRITICAL_ERROR_RATIO", 0.5, _ratio, "ratio",
        "Severity critical above this error ratio.")
    high_error_ratio: float = setting("AIOPS_SEVERITY_HIGH_ERROR_RATIO", 0.2, _ratio, "ratio",
        "Severity high above this error ratio.")
    high_latency_ratio: float = setting("AIOPS_SEVERITY_HIGH_LATENCY_RATIO", 5.0, as_number(1.0), "ratio",
        "Severity high above this multiple of the baseline latency.")
    recurrence_days: float = setting("AIOPS_RECURRENCE_DAYS", 7.0, _pos, "days",
        "Look-back for linking an incident to earlier ones with the same root cause.")
    seasonality: bool = setting("AIOPS_SEASONALITY", False, as_bool, "bool",
        "Learn an hour-of-week profile of rate and latency, so a daily peak is expected.")
    seasonal_min_intervals: int = 3     #: passes a hour-of-week bucket needs before it is used


#: The pass's keys, in the order of ``AnalysisConfig``.
ANALYSIS_CONFIG = config_keys(AnalysisConfig)

#: The least time between the start of a pass and an early pass (``aiops.analysis.early``).
EARLY_PASS_MIN_GAP_S = ConfigKey("AIOPS_EARLY_PASS_MIN_GAP_S", 2.0, as_number(0.0), "seconds",
                                 "An early pass never starts sooner than this after the start of the previous pass.")

#: Early passes: a pass as soon as freshly written spans look anomalous (``aiops.analysis.early``).
EARLY_PASS_CONFIG = (
    ConfigKey("AIOPS_EARLY_PASS", True, as_bool, "bool",
              "With the scheduler on, also run a pass as soon as freshly written spans look anomalous "
              "(errors or slow requests against a route's baseline), instead of waiting for the next interval."),
    EARLY_PASS_MIN_GAP_S,
)


def analysis_config(settings: dict) -> AnalysisConfig:
    """``AnalysisConfig`` from the dict ``read_config(app, ANALYSIS_CONFIG)`` returns."""
    return from_settings(AnalysisConfig, settings)
