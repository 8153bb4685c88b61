"""Anomalies on pushed metric series, with the same online detector as ``python -m aiops detect``.

Each analysis pass judges the metric points stored since the previous pass
(by row, so a backfilled batch is judged too): every touched series is run
through a fresh :class:`aiops.online.OnlineDetector` over its recent history
(``history_s`` seconds before the oldest new point), and a series with a
flagged new point becomes an ``Anomaly`` of type ``metric_spike`` (value
above the local level) or ``metric_drop``. The analysis pass folds them into its
findings (one per service, or into the span finding of that service), so an
incident carries both kinds of evidence.

``MetricSignals`` is the pass's ``SignalSource``; ``judge_series`` is pure.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from aiops.metrics.model import MetricPoint
from aiops.metrics.online import DetectorConfig, OnlineDetector
from aiops.metrics.store import MetricStore
from aiops.signals import Anomaly
from telemetry.config import as_number, setting

#: On the first pass over an existing store, judge at most this much history (seconds).
FIRST_PASS_LOOKBACK_S = 3600.0
#: Most new pushed metric points one pass judges.
MAX_NEW_METRICS_PER_PASS = 200_000


#: The online detector of pushed metrics, but for its threshold (``MetricDetectionConfig.threshold``):
#: a shorter warm-up than the NAB-scored default, 200 points, and no seasonal excuse, since at most
#: ``max_history_points`` of history never spans two days.
_DETECTOR = DetectorConfig(history_points=2000, min_history_points=200, refractory_points=20, season_points=0)


@dataclass(frozen=True)
class MetricDetectionConfig:
    """``history_s``: seconds of history before the new points (``AIOPS_METRIC_HISTORY_S``),
    at most ``max_history_points`` of them (600, bounds a pass's cost); ``threshold``: the
    online detector's (``AIOPS_METRIC_THRESHOLD``); ``detector``: the online detector's
    parameters with that threshold."""

    history_s: float = setting("AIOPS_METRIC_HISTORY_S", 3600.0, as_number(0.0, min_exclusive=True), "seconds",
                               "History before the new points that a metric series is judged against.")
    threshold: float = setting("AIOPS_METRIC_THRESHOLD", 4.0, as_number(0.0, min_exclusive=True),
                               "surprise (-log10 p)",
                               "Online detector threshold for pushed metrics (4 ≈ one in ten thousand).")
    max_history_points: int = 600  #: at most this many points before the new ones are replayed per pass
    detector: DetectorConfig = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "detector", replace(_DETECTOR, threshold=self.threshold))


def _stats(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values) if values else 0.0
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return mean, std


def judge_series(points: Sequence[MetricPoint], new_from: int, now_s: float,
                 config: MetricDetectionConfig = MetricDetectionConfig()) -> Anomaly | None:
    """Judge ``points`` (one series, time order); only points at index >= ``new_from`` may flag.

    Returns an ``Anomaly`` describing the most surprising flagged new point,
    or None. ``metric`` holds the value, the level before the first flag
    (mean and standard deviation of the points before it), the deviation in
    those standard deviations, and when the first and strongest flags fell.
    """
    if not points or new_from >= len(points):
        return None
    detector = OnlineDetector(config.detector)
    flagged: list[tuple[int, float, float, str]] = []
    for index, point in enumerate(points):
        verdict = detector.update(point.timestamp_s, point.value)
        if index >= new_from and verdict.is_anomaly:
            flagged.append((index, verdict.score, verdict.expected, verdict.feature))
    if not flagged:
        return None
    first = flagged[0][0]
    before = [p.value for p in points[:first]]
    base_mean, base_std = _stats(before)
    # The strongest evidence: the new point farthest from the pre-onset level.
    peak_index = max(range(first, len(points)), key=lambda i: abs(points[i].value - base_mean))
    peak = points[peak_index]
    sigma = (peak.value - base_mean) / base_std if base_std > 0 else math.copysign(math.inf, peak.value - base_mean)
    best = max(flagged, key=lambda f: f[1])
    up = peak.value >= base_mean
    service, name = points[0].service, points[0].name
    kind = "metric_spike" if up else "metric_drop"
    ratio = peak.value / base_mean if base_mean else math.inf
    score = best[1]
    severity = "high" if score >= 2 * config.detector.threshold or abs(sigma) >= 5 else "medium"
    sigma_text = f"{abs(sigma):.1f}σ" if math.isfinite(sigma) else "beyond any baseline variation"
    description = (f"{name} {'rose' if up else 'fell'} to {peak.value:.4g} (baseline {base_mean:.4g}, "
                   f"{sigma_text} {'above' if up else 'below'})")
    return Anomaly(
        type=kind, service=service, endpoint=name, severity=severity,
        baseline_ms=0.0, current_ms=0.0, deviation=round(ratio, 4) if math.isfinite(ratio) else 0.0,
        score=score, detected_at=now_s, description=description,
        metric={
            "name": name, "value": peak.value, "baseline_mean": round(base_mean, 6),
            "baseline_std": round(base_std, 6),
            "deviation_sigma": round(sigma, 2) if math.isfinite(sigma) else None,
            "direction": "up" if up else "down", "first_flagged_at": points[first].timestamp_s,
            "peak_at": peak.timestamp_s, "flagged_points": len(flagged), "score": round(score, 2),
            "feature": best[3], "points_judged": len(points) - new_from,
        },
    )


class MetricSignals:
    """The analysis pass's ``SignalSource`` for pushed metrics: the series that got
    points since the previous pass (by row, so a backfilled batch is judged too)."""

    def __init__(self, store: MetricStore, config: MetricDetectionConfig = MetricDetectionConfig()):
        self.store = store
        self.config = config

    def judge(self, now_s: float) -> tuple[list[Anomaly], Callable[[], None] | None]:
        store, cfg = self.store, self.config
        last_text = store.db.get_state("last_metric_id")
        last_id = int(last_text) if last_text is not None else \
            store.first_metric_id_since(now_s - FIRST_PASS_LOOKBACK_S)
        rows = store.metric_rows_after(last_id, MAX_NEW_METRICS_PER_PASS)
        if not rows:
            return [], (lambda: store.db.set_state("last_metric_id", last_id)) if last_text is None else None
        spans: dict[tuple[str, str], list[float]] = {}
        for _, service, name, ts in rows:
            lo_hi = spans.setdefault((service, name), [ts, ts])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], ts), max(lo_hi[1], ts)
        new_ids = {row[0] for row in rows}
        anomalies = []
        for (service, name), (lo, hi) in sorted(spans.items()):
            series = store.metric_series_rows(service, name, lo - cfg.history_s, max(hi, now_s))
            new_from = next((i for i, (rowid, _) in enumerate(series) if rowid in new_ids), len(series))
            if new_from > cfg.max_history_points:  # bound the replay: the detector warms up on 200
                series, new_from = series[new_from - cfg.max_history_points:], cfg.max_history_points
            anomaly = judge_series([p for _, p in series], new_from, now_s, cfg)
            if anomaly is not None:
                anomalies.append(anomaly)
        mark = rows[-1][0]
        return anomalies, lambda: store.db.set_state("last_metric_id", mark)
