"""The pushed-metrics feature: ``POST /aiops/metrics/ingest``, the series store, and the
online detector judging new points in every analysis pass (a ``SignalSource``)."""
from __future__ import annotations

from dataclasses import dataclass

from aiops.metrics import api, cli
from aiops.metrics.config import METRICS_CONFIG, metric_detection_config
from aiops.metrics.detect import MetricSignals
from aiops.metrics.store import MetricStore
from aiops.registry import Context, Feature


@dataclass
class MetricsState:
    store: MetricStore
    signals: MetricSignals | None  #: None when AIOPS_METRIC_DETECTION is off

    def metric_points(self, services, start_s: float, end_s: float) -> dict:
        """{(service, name): [(epoch s, value), ...]} of ``services`` in [start_s, end_s], in time order."""
        points: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for service in services:
            for p in self.store.metric_series(service=service, start_s=start_s, end_s=end_s):
                points.setdefault((p.service, p.name), []).append((float(p.timestamp_s), float(p.value)))
        return points


def build(ctx: Context) -> MetricsState:
    store = MetricStore(ctx.db)
    detection = metric_detection_config(ctx.settings)
    signals = MetricSignals(store, detection) if detection is not None else None
    if signals is not None:
        ctx.signal_sources.append(signals)
    state = MetricsState(store, signals)
    ctx.provide("metric_points", state.metric_points)
    return state


def init_app(app, ctx: Context, state: MetricsState) -> None:
    app.register_blueprint(api.make_blueprint(ctx.settings["AIOPS_METRICS_MAX_BATCH"]))


FEATURE = Feature(name="metrics", build=build, init_app=init_app, config=METRICS_CONFIG,
                  endpoints=tuple(api.ENDPOINTS), commands=cli.COMMANDS)
