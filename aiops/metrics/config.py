"""Settings of pushed metrics: the batch cap and the pass's detector (``MetricDetectionConfig``
declares its keys: ``AIOPS_METRIC_HISTORY_S``, ``AIOPS_METRIC_THRESHOLD``)."""
from __future__ import annotations

from aiops.metrics.detect import MetricDetectionConfig
from aiops.metrics.model import MAX_BATCH
from telemetry.config import ConfigKey, as_bool, as_number, config_keys, from_settings

METRICS_CONFIG = (
    ConfigKey("AIOPS_METRICS_MAX_BATCH", MAX_BATCH, as_number(1, 1_000_000, integer=True), "points",
              "Most points one `POST /aiops/metrics/ingest` may carry; a larger batch gets a 400."),
    ConfigKey("AIOPS_METRIC_DETECTION", True, as_bool, "bool",
              "Judge pushed metric series in every analysis pass (`False`: store them only)."),
    *config_keys(MetricDetectionConfig),
)


def metric_detection_config(settings: dict) -> MetricDetectionConfig | None:
    """The pass's metric judge from ``read_config(app, METRICS_CONFIG)``; None when disabled."""
    if not settings["AIOPS_METRIC_DETECTION"]:
        return None
    return from_settings(MetricDetectionConfig, settings)
