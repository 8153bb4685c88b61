"""Plain data every feature exchanges through the analysis pass: series keys and anomalies.

The analysis (``aiops.analysis``) finds anomalies in spans, pushed metrics
(``aiops.metrics``) find them in metric series; both are ``Anomaly`` objects,
which the pass turns into findings and incidents. A feature that judges its
own series during the pass is a ``SignalSource`` registered on the context.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from aiops.records import from_known

#: Key of every series: (service, route) for spans, (service, metric name) for pushed metrics.
SeriesKey = tuple[str, str]


def endpoint_name(key: SeriesKey, single_service: bool = True) -> str:
    """``/payment`` when one service writes the store, else ``shop /payment``."""
    return key[1] if single_service else f"{key[0]} {key[1]}"


@dataclass
class Anomaly:
    """One detector's finding on one series. Latencies in ms, rates in
    requests/s; ``deviation`` is current / baseline (latency and traffic) or
    the error ratio's multiple of its baseline (floored at 1%); ``score`` the
    significance (z or -log10 p)."""

    type: str
    service: str
    endpoint: str
    severity: str
    baseline_ms: float
    current_ms: float
    deviation: float
    score: float
    detected_at: float
    request_count: int = 0
    error_ratio: float = 0.0
    baseline_error_ratio: float = 0.0
    rate_per_s: float = 0.0
    baseline_rate_per_s: float = 0.0
    description: str = ""
    sample_errors: list[dict] = field(default_factory=list)
    #: for pushed-metric anomalies (``aiops.metrics.detect``): value, baseline, sigma; empty for spans
    metric: dict = field(default_factory=dict)

    @property
    def key(self) -> SeriesKey:
        return (self.service, self.endpoint)

    def to_dict(self) -> dict:
        extra = {"metric": self.metric} if self.metric else {}
        return {
            "type": self.type, "service": self.service, "endpoint": self.endpoint, "severity": self.severity,
            "baseline_ms": round(self.baseline_ms, 2), "current_ms": round(self.current_ms, 2),
            "deviation": round(self.deviation, 2), "score": round(self.score, 2),
            "request_count": self.request_count, "error_ratio": round(self.error_ratio, 4),
            "baseline_error_ratio": round(self.baseline_error_ratio, 4),
            "rate_per_s": round(self.rate_per_s, 3), "baseline_rate_per_s": round(self.baseline_rate_per_s, 3),
            "description": self.description, "sample_errors": self.sample_errors,
            "detected_at": self.detected_at, **extra,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Anomaly":
        return from_known(cls, data)


class SignalSource(Protocol):
    """Anomalies a feature finds in its own series during an analysis pass."""

    def judge(self, now_s: float) -> tuple[list[Anomaly], Callable[[], None] | None]:
        """The anomalies of what arrived since the last pass, and ``commit()`` (or None), which
        the pass calls inside its write transaction to record how far it judged."""
