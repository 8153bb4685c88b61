"""Anomalies on pushed metric series, with the same online detector as ``python -m aiops detect``.

Each analysis pass judges the metric points stored since the previous pass
(by row, so a backfilled batch is judged too): every touched series is run
through a fresh :class:`aiops.online.OnlineDetector` over its recent history
(``history_s`` seconds before the oldest new point), and a series with a
flagged new point becomes an ``Anomaly`` of type ``metric_spike`` (value
above the local level) or ``metric_drop``. Metric anomalies of one service
form one ``Finding``, or join the span finding of that service when there is
one, so an incident carries both kinds of evidence.

Pure: no Flask, no SQL.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

from aiops.detectors import Anomaly
from aiops.metrics import MetricPoint
from aiops.online import DetectorConfig, OnlineDetector
from aiops.rca import Finding


@dataclass(frozen=True)
class MetricDetectionConfig:
    """``history_s``: seconds of history before the new points (default 3600),
    at most ``max_history_points`` of them (default 600, bounds a pass's cost);
    ``detector``: the online detector's parameters, with a shorter warm-up
    than the NAB-scored default: 200 points, and no seasonal excuse, since
    at most ``max_history_points`` of history never spans two days)."""

    history_s: float = 3600.0
    max_history_points: int = 600  #: at most this many points before the new ones are replayed per pass
    detector: DetectorConfig = DetectorConfig(history_points=2000, min_history_points=200, refractory_points=20,
                                              threshold=4.0, season_points=0)


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


def metric_findings(anomalies: Iterable[Anomaly], findings: list[Finding]) -> list[Finding]:
    """``findings`` with the metric anomalies folded in: into the span finding
    of the same service when there is one, else one new finding per service
    whose root cause is its most significant metric."""
    by_service: dict[str, list[Anomaly]] = {}
    for anomaly in anomalies:
        by_service.setdefault(anomaly.service, []).append(anomaly)
    out = list(findings)
    for service in sorted(by_service):
        group = sorted(by_service[service], key=lambda a: (-a.score, a.endpoint))
        host = next((f for f in findings if f.root_cause[0] == service), None)
        if host is not None:
            host.anomalies.extend(group)
            host.affected.extend(a.key for a in group if a.key not in host.affected)
            continue
        top = group[0]
        names = ", ".join(a.endpoint for a in group)
        out.append(Finding(
            root_cause=top.key, confidence=round(min(1.0, 0.5 + 0.1 * (len(group) - 1)), 3), reason="metric",
            anomalies=group, affected=[a.key for a in group], total_traces=0, sample_traces=[],
            description=f"{top.description}; {len(group)} metric(s) of {service} anomalous: {names}",
        ))
    return out
