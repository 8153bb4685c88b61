"""Settings of pushed metrics: the batch cap and the pass's detector."""
from __future__ import annotations

from dataclasses import replace

from aiops.metrics.detect import MetricDetectionConfig
from aiops.metrics.model import MAX_BATCH
from telemetry.config import ConfigKey, as_bool, as_number

METRICS_CONFIG = (
    ConfigKey("AIOPS_METRICS_MAX_BATCH", MAX_BATCH, as_number(1, 1_000_000, integer=True), "points",
              "Most points one POST /aiops/metrics/ingest may carry; a larger batch gets a 400."),
    ConfigKey("AIOPS_METRIC_DETECTION", True, as_bool, "bool",
              "Judge pushed metric series in every analysis pass (False: store them only)."),
    ConfigKey("AIOPS_METRIC_HISTORY_S", 3600.0, as_number(0.0, min_exclusive=True), "seconds",
              "History before the new points that a metric series is judged against."),
    ConfigKey("AIOPS_METRIC_THRESHOLD", 4.0, as_number(0.0, min_exclusive=True), "surprise (-log10 p)",
              "Online detector threshold for pushed metrics (4 = about one in ten thousand)."),
)


def metric_detection_config(settings: dict) -> MetricDetectionConfig | None:
    """The pass's metric judge from ``read_config(app, METRICS_CONFIG)``; None when disabled."""
    if not settings["AIOPS_METRIC_DETECTION"]:
        return None
    default = MetricDetectionConfig()
    return MetricDetectionConfig(history_s=settings["AIOPS_METRIC_HISTORY_S"],
                                 detector=replace(default.detector, threshold=settings["AIOPS_METRIC_THRESHOLD"]))
