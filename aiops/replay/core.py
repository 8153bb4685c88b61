"""The replay: history + actual metrics + incident -> expected band, zones, cascade, SLA breaches.

``run_replay`` is pure (numpy and scikit-learn only). The window replayed is
``[incident start - margin_s, incident end + margin_s]`` clipped to the
data; everything before it is history, and only history trains the models.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from aiops.replay.data import IncidentMeta, InsufficientHistory, MetricKey, Series, infer_step_s, to_grid
from aiops.replay.model import FORECASTERS, Forecast, ModelConfig, is_driver
from aiops.replay.zones import CascadeStep, SLABreach, Zone, ZoneConfig, cascade, find_zones, sla_breaches, zone_order
from telemetry.timefmt import iso


@dataclass(frozen=True)
class ReplayConfig:
    """``step_s``: grid step (None = the data's median spacing); ``margin_s``: replayed time before
    and after the incident (default: half the incident's duration, at least 15 min, at most 2 h)."""

    step_s: float | None = None
    margin_s: float | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    zones: ZoneConfig = field(default_factory=ZoneConfig)

    def margin_for(self, incident: IncidentMeta) -> float:
        if self.margin_s is not None:
            return self.margin_s
        return min(7200.0, max(900.0, 0.5 * (incident.end_s - incident.start_s)))


@dataclass
class MetricReplay:
    """One metric over the replay window: actual vs expected band, its zones, its model's backtest."""

    service: str
    metric: str
    times_s: np.ndarray
    actual: np.ndarray
    forecast: Forecast
    zones: list[Zone]
    driver: bool

    @property
    def key(self) -> MetricKey:
        return (self.service, self.metric)

    def to_dict(self, points: bool = True) -> dict:
        f = self.forecast
        out = {"service": self.service, "metric": self.metric, "driver": self.driver,
               "model": {"transform": f.transform, "regressors": f.regressors, "fit_ms": round(f.fit_ms, 1)},
               "backtest": f.backtest.to_dict(), "zones": [z.to_dict() for z in self.zones]}
        if points:
            r = lambda v: None if not math.isfinite(v) else round(float(v), 4)  # noqa: E731
            out["points"] = [{"t": iso(t), "actual": r(a), "expected": r(e), "lower": r(lo), "upper": r(hi)}
                             for t, a, e, lo, hi in zip(self.times_s, self.actual, f.expected, f.lower, f.upper)]
        return out


@dataclass
class ReplayResult:
    incident: IncidentMeta
    step_s: float
    window_start_s: float
    window_end_s: float
    history_start_s: float
    metrics: list[MetricReplay]
    zones: list[Zone]
    cascade: list[CascadeStep]
    breaches: list[SLABreach]
    skipped: list[dict]
    duration_ms: float
    method: str = "gradient_boosting"

    def metric(self, service: str, metric: str) -> MetricReplay | None:
        return next((m for m in self.metrics if m.key == (service, metric)), None)

    def to_dict(self, points: bool = True) -> dict:
        i = self.incident
        cause = self.cascade[0] if self.cascade else None
        return {
            "incident": {"id": i.incident_id, "title": i.title, "start": iso(i.start_s), "end": iso(i.end_s),
                         "services": i.services, "slas": [s.label() for s in i.slas]},
            "window": {"start": iso(self.window_start_s), "end": iso(self.window_end_s), "step_s": self.step_s,
                       "history_start": iso(self.history_start_s),
                       "history_s": self.window_start_s - self.history_start_s},
            "candidate_cause": None if cause is None else {
                "service": cause.service, "metric": cause.metric, "direction": cause.direction,
                "start": iso(cause.start_s)},
            "cascade": [c.to_dict() for c in self.cascade],
            "zones": [z.to_dict() for z in self.zones],
            "sla_breaches": [b.to_dict() for b in self.breaches],
            "metrics": [m.to_dict(points) for m in self.metrics],
            "skipped_metrics": self.skipped,
            "method": self.method,
            "duration_ms": round(self.duration_ms, 1),
        }


def run_replay(incident: IncidentMeta, series: dict[MetricKey, Series] | list[Series],
               config: ReplayConfig = ReplayConfig()) -> ReplayResult:
    """Replay ``incident`` over ``series`` (history and actual values together; see the module docstring).

    Metrics of the incident's services are replayed (all metrics when none match); driver metrics of
    every service serve as regressors. A metric with too little history is skipped and listed; when
    every metric is, :class:`InsufficientHistory` is raised."""
    started = time.perf_counter()
    all_series = list(series.values()) if isinstance(series, dict) else list(series)
    if not all_series:
        raise ValueError("no metric series to replay")
    step = config.step_s or infer_step_s(all_series)
    margin = config.margin_for(incident)
    first = min(float(s.timestamps_s[0]) for s in all_series if len(s.timestamps_s))
    last = max(float(s.timestamps_s[-1]) for s in all_series if len(s.timestamps_s))
    origin = math.floor(first / step) * step
    w_start = origin + math.floor((incident.start_s - margin - origin) / step) * step
    w_end = min(incident.end_s + margin, last + step)
    if w_end <= incident.start_s:
        raise ValueError(f"no actual data during incident {incident.incident_id}: the data ends at {iso(last)}, "
                         f"the incident starts at {iso(incident.start_s)}")
    grid = np.arange(origin, w_end, step)
    cut = int(round((w_start - origin) / step))
    if cut <= 0:
        raise InsufficientHistory(
            f"no history before the replay window starting {iso(w_start)}: the data starts at {iso(first)}; "
            f"the model needs at least {config.model.min_history_points} points "
            f"({config.model.min_history_points * step / 3600:g} h at {step:g} s steps) before it",
            config.model.min_history_points, 0, step)
    grids = {s.key: to_grid(s, grid, step) for s in all_series}
    targets = [s.key for s in all_series if s.service in incident.services] or [s.key for s in all_series]
    driver_keys = [k for k in grids if is_driver(k[1], config.model.drivers)
                   and np.isfinite(grids[k][cut:]).any()]
    metrics, skipped = [], []
    times = grid[cut:]
    for key in sorted(targets):
        y = grids[key]
        if not np.isfinite(y[cut:]).any():
            skipped.append({"service": key[0], "metric": key[1], "reason": "no actual values in the window"})
            continue
        driver = key in driver_keys
        regs = [] if driver else [k for k in driver_keys if k != key]
        try:
            fc = FORECASTERS[config.model.method](grid, step, y, cut, [_fill(grids[k]) for k in regs],
                                                  config.model, [f"{k[0]}:{k[1]}" for k in regs])
        except InsufficientHistory as exc:
            skipped.append({"service": key[0], "metric": key[1], "reason": str(exc),
                            "needed_points": exc.needed_points, "found_points": exc.found_points})
            continue
        actual = y[cut:]
        hist = y[:cut][np.isfinite(y[:cut])]
        counts = bool(len(hist)) and bool(np.all(hist == np.round(hist))) and float(np.max(np.abs(hist))) >= 2
        if counts:  # a count is whole: its band is at least half a unit either side of the expected value
            fc.lower = np.minimum(fc.lower, fc.expected - 0.5)
            fc.upper = np.maximum(fc.upper, fc.expected + 0.5)
        zones = find_zones(key[0], key[1], times, step, actual, fc.expected, fc.lower, fc.upper, config.zones,
                           min_excess=0.5 if counts else 0.0)
        metrics.append(MetricReplay(key[0], key[1], times, actual, fc, zones, driver))
    if not metrics:
        worst = max(skipped, key=lambda s: s.get("found_points", -1), default=None)
        found = worst.get("found_points", 0) if worst else 0
        raise InsufficientHistory(
            f"no metric could be modelled: {worst['reason'] if worst else 'no series'}",
            config.model.min_history_points, found, step)
    zones = sorted((z for m in metrics for z in m.zones), key=lambda z: zone_order(z, incident.root_hint))
    breaches = []
    for sla in incident.slas:
        for m in metrics:
            if m.metric == sla.metric and (sla.service is None or sla.service == m.service):
                breaches += sla_breaches(sla, m.service, m.metric, times, step, m.actual, m.forecast.expected)
    breaches.sort(key=lambda b: b.start_s)
    return ReplayResult(incident, step, w_start, float(grid[-1]) + step, origin, metrics, zones,
                        cascade([z for z in zones if _in_cascade(z, metrics, incident, step)], incident.root_hint),
                        breaches, skipped, (time.perf_counter() - started) * 1000, config.model.method)


def _in_cascade(zone: Zone, metrics: list[MetricReplay], incident: IncidentMeta, step_s: float) -> bool:
    """The cascade orders the zones still open when the incident began or opening during it; a blip
    that closed before it is not its cause. Load deviations (a traffic surge) are context, not a
    service's failure: the cascade skips them (the narrative reports them)."""
    if any(m.driver and m.key == (zone.service, zone.metric) for m in metrics):
        return False
    return zone.end_s > incident.start_s - step_s and zone.start_s < incident.end_s


def _fill(values: np.ndarray) -> np.ndarray:
    """Forward-fill a driver's gaps (a regressor is needed at every step); leading gaps stay NaN."""
    idx = np.where(np.isfinite(values), np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)
