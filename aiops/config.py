"""Every AIOPS_* setting of the analysis engine, with units and defaults.

``AnalysisConfig`` is the typed, validated view the pure algorithms take;
``ANALYSIS_CONFIG`` declares the keys (read once by ``AIOps.init_app``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from telemetry.config import ConfigKey, as_bool, as_number, as_optional_str

_pos = as_number(0.0, min_exclusive=True)
_ratio = as_number(0.0, 1.0)


@dataclass(frozen=True)
class AnalysisConfig:
    """Thresholds and time constants. Defaults are the product's defaults."""

    interval_s: float = 10.0            #: seconds between background passes
    window_s: float = 60.0              #: seconds of recent spans each detector judges
    baseline_alpha: float = 0.01        #: EWMA weight of one request (latency, error ratio)
    rate_alpha: float = 0.1             #: EWMA weight of one pass (request rate)
    min_samples: int = 30               #: requests a baseline needs before anything is judged
    min_requests: int = 5               #: requests in the window before latency/errors are judged
    latency_ratio: float = 1.5          #: window median / baseline median that counts as slow
    latency_z: float = 4.0              #: z-score of the window median (log space) that counts as slow
    latency_min_delta_ms: float = 25.0  #: latency shifts smaller than this (ms) never count
    error_min_ratio: float = 0.05       #: smallest window error ratio that can be a spike
    error_min_count: int = 3            #: fewest errors in the window that can be a spike
    error_p_value: float = 1e-4         #: binomial tail probability below which errors are a spike
    stall_min_expected: float = 8.0     #: requests the baseline must expect in a gap before it is a stall
    traffic_ratio: float = 3.0          #: window rate / expected rate (or its inverse) for a surge/drop
    traffic_min_expected: float = 20.0  #: requests the baseline must expect in the window to judge traffic
    traffic_p_value: float = 1e-6       #: Poisson tail probability for a surge/drop
    correlation_window_s: float = 300.0  #: anomalies this close in time may join one incident
    auto_resolve_s: float = 120.0       #: healthy seconds after which an incident resolves itself
    critical_error_ratio: float = 0.5   #: severity critical above this error ratio
    high_error_ratio: float = 0.2       #: severity high above this error ratio
    high_latency_ratio: float = 5.0     #: severity high above this latency ratio
    recurrence_days: float = 7.0        #: look-back for "seen N times in D days"
    seasonality: bool = False           #: learn an hour-of-week profile of rate and latency
    seasonal_min_intervals: int = 3     #: passes a hour-of-week bucket needs before it is used


ANALYSIS_CONFIG = (
    ConfigKey("AIOPS_ANALYSIS_INTERVAL_S", 10.0, _pos, "seconds", "Seconds between background analysis passes."),
    ConfigKey("AIOPS_WINDOW_S", 60.0, _pos, "seconds", "Recent window every detector judges."),
    ConfigKey("AIOPS_BASELINE_ALPHA", 0.01, as_number(0.0, 1.0, min_exclusive=True), "weight per request",
              "EWMA weight of one request in the latency and error baselines."),
    ConfigKey("AIOPS_RATE_ALPHA", 0.1, as_number(0.0, 1.0, min_exclusive=True), "weight per pass",
              "EWMA weight of one pass in the request-rate baseline."),
    ConfigKey("AIOPS_MIN_SAMPLES", 30, as_number(1, integer=True), "requests",
              "Requests a route's baseline needs before the route is judged."),
    ConfigKey("AIOPS_MIN_REQUESTS", 5, as_number(1, integer=True), "requests",
              "Requests in the window before latency and errors are judged."),
    ConfigKey("AIOPS_LATENCY_RATIO", 1.5, as_number(1.0, min_exclusive=True), "ratio",
              "Window median latency / baseline median that can count as a latency anomaly."),
    ConfigKey("AIOPS_LATENCY_Z", 4.0, _pos, "z-score", "Significance the window median's shift (log space) needs."),
    ConfigKey("AIOPS_LATENCY_MIN_DELTA_MS", 25.0, as_number(0.0), "milliseconds",
              "Latency shifts smaller than this never count (a 2 ms route jitters by whole multiples)."),
    ConfigKey("AIOPS_ERROR_MIN_RATIO", 0.05, _ratio, "ratio", "Smallest window error ratio that can be a spike."),
    ConfigKey("AIOPS_ERROR_MIN_COUNT", 3, as_number(1, integer=True), "errors",
              "Fewest errors in the window that can be a spike."),
    ConfigKey("AIOPS_ERROR_P_VALUE", 1e-4, as_number(0.0, 1.0, min_exclusive=True), "probability",
              "Binomial tail probability (errors given the baseline ratio) below which errors are a spike."),
    ConfigKey("AIOPS_STALL_MIN_EXPECTED", 8.0, _pos, "requests",
              "Requests the baseline must expect during a silent gap before the route counts as stalled."),
    ConfigKey("AIOPS_TRAFFIC_RATIO", 3.0, as_number(1.0, min_exclusive=True), "ratio",
              "Window rate / expected rate (or expected / window) that can be a surge (or drop)."),
    ConfigKey("AIOPS_TRAFFIC_MIN_EXPECTED", 20.0, _pos, "requests",
              "Requests the baseline must expect in the window before traffic is judged."),
    ConfigKey("AIOPS_CORRELATION_WINDOW_S", 300.0, _pos, "seconds",
              "Related anomalies this close in time join one incident."),
    ConfigKey("AIOPS_AUTO_RESOLVE_S", 120.0, _pos, "seconds",
              "An incident with no anomaly for this long resolves itself."),
    ConfigKey("AIOPS_SEVERITY_CRITICAL_ERROR_RATIO", 0.5, _ratio, "ratio", "Critical above this error ratio."),
    ConfigKey("AIOPS_SEVERITY_HIGH_ERROR_RATIO", 0.2, _ratio, "ratio", "High above this error ratio."),
    ConfigKey("AIOPS_SEVERITY_HIGH_LATENCY_RATIO", 5.0, as_number(1.0), "ratio",
              "High above this latency ratio (window median / baseline median)."),
    ConfigKey("AIOPS_RECURRENCE_DAYS", 7.0, _pos, "days", "Look-back for linking recurring incidents."),
    ConfigKey("AIOPS_SEASONALITY", False, as_bool, "bool",
              "Learn an hour-of-week profile of rate and latency, so a daily peak is not an anomaly."),
)

#: Keys of the extension itself (not of the algorithms).
EXTENSION_CONFIG = (
    ConfigKey("AIOPS_ENABLED", True, as_bool, "bool", "False registers nothing (no API, no scheduler)."),
    ConfigKey("AIOPS_SCHEDULER", True, as_bool, "bool",
              "Run analysis in the background every AIOPS_ANALYSIS_INTERVAL_S; False: only POST /aiops/analyze."),
    ConfigKey("AIOPS_EARLY_PASS", True, as_bool, "bool",
              "With the scheduler on, also run a pass as soon as freshly written spans look anomalous "
              "(errors or slow requests against the baseline), instead of waiting for the next interval."),
    ConfigKey("AIOPS_EARLY_PASS_MIN_GAP_S", 2.0, as_number(0.0), "seconds",
              "An early pass never starts sooner than this after the start of the previous pass."),
    ConfigKey("AIOPS_DB_PATH", lambda app: app.config.get("TELEMETRY_DB_PATH"), as_optional_str, "file path",
              "SQLite file the analysis reads spans from and keeps baselines and incidents in; "
              "default: TELEMETRY_DB_PATH."),
    ConfigKey("AIOPS_API_KEY", None, as_optional_str, "string",
              "When set, every mutating /aiops and /simulate call needs it in the X-API-Key header."),
)

_KEY_TO_FIELD = {
    "AIOPS_ANALYSIS_INTERVAL_S": "interval_s", "AIOPS_WINDOW_S": "window_s",
    "AIOPS_BASELINE_ALPHA": "baseline_alpha", "AIOPS_RATE_ALPHA": "rate_alpha",
    "AIOPS_MIN_SAMPLES": "min_samples", "AIOPS_MIN_REQUESTS": "min_requests",
    "AIOPS_LATENCY_RATIO": "latency_ratio", "AIOPS_LATENCY_Z": "latency_z",
    "AIOPS_LATENCY_MIN_DELTA_MS": "latency_min_delta_ms",
    "AIOPS_ERROR_MIN_RATIO": "error_min_ratio", "AIOPS_ERROR_MIN_COUNT": "error_min_count",
    "AIOPS_ERROR_P_VALUE": "error_p_value", "AIOPS_STALL_MIN_EXPECTED": "stall_min_expected",
    "AIOPS_TRAFFIC_RATIO": "traffic_ratio", "AIOPS_TRAFFIC_MIN_EXPECTED": "traffic_min_expected",
    "AIOPS_CORRELATION_WINDOW_S": "correlation_window_s", "AIOPS_AUTO_RESOLVE_S": "auto_resolve_s",
    "AIOPS_SEVERITY_CRITICAL_ERROR_RATIO": "critical_error_ratio",
    "AIOPS_SEVERITY_HIGH_ERROR_RATIO": "high_error_ratio",
    "AIOPS_SEVERITY_HIGH_LATENCY_RATIO": "high_latency_ratio",
    "AIOPS_RECURRENCE_DAYS": "recurrence_days", "AIOPS_SEASONALITY": "seasonality",
}
assert set(_KEY_TO_FIELD) == {k.name for k in ANALYSIS_CONFIG}
assert set(_KEY_TO_FIELD.values()) <= {f.name for f in fields(AnalysisConfig)}


def analysis_config(settings: dict) -> AnalysisConfig:
    """``AnalysisConfig`` from the dict ``read_config(app, ANALYSIS_CONFIG)`` returns."""
    return AnalysisConfig(**{field: settings[key] for key, field in _KEY_TO_FIELD.items() if key in settings})
