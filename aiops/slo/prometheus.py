"""``GET /metrics``: Prometheus text format, computed from the shared store at scrape time.

Nothing is observed on the request path: the telemetry middleware already
queues one span per request, and a scrape first folds the spans stored since
the last fold into ``aiops_request_totals`` (SQL ``GROUP BY``, see
``SLOStore.rollup``), then reads the totals. Because every gunicorn worker
writes the same SQLite file, whichever worker answers a scrape reports the
requests of all of them: no ``PROMETHEUS_MULTIPROC_DIR`` is needed (and none
is used: the collector has its own registry). Per-process span-store
counters (dropped spans, queue depth) are published into the store by each
process after each analysis pass and at each scrape it answers, and summed.

Series (label values are route templates, never raw paths):

* ``http_server_request_duration_seconds`` histogram and
  ``http_server_requests_total`` counter by ``service_name``, ``http_route``,
  ``http_request_method``, ``http_response_status_code``;
* ``aiops_slo_burn_rate`` by ``service_name``, ``slo``, ``window`` (5m ... 3d, composite);
* ``aiops_slo_error_budget_remaining_ratio``, ``aiops_slo_risk_level`` (0 SAFE ... 3 FREEZE) by SLO;
* ``aiops_slo_alerts_open`` by ``service_name``, ``severity``;
* ``aiops_incidents_open`` by ``severity``;
* ``telemetry_spans_dropped_total``, ``telemetry_spans_written_total``,
  ``telemetry_writer_queue_depth`` by ``service_name``.
"""
from __future__ import annotations

import logging
import time

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from aiops.slo.budgets import RISK_LEVELS

log = logging.getLogger("aiops")
_HTTP_LABELS = ["service_name", "http_route", "http_request_method", "http_response_status_code"]
#: A process whose stats are older than this no longer adds to the queue depth.
LIVE_PROCESS_S = 300.0
#: Most spans one scrape folds (a first scrape of a big store stays within a scrape timeout;
#: the analysis passes and later scrapes fold the rest).
SCRAPE_FOLD_MAX_SPANS = 200_000


class StoreCollector:
    """A prometheus_client collector reading the SLO store (see the module docstring)."""

    def __init__(self, engine, app):
        self.engine = engine
        self.app = app

    def collect(self):
        store = self.engine.store
        now = time.time()
        telemetry = self.app.extensions.get("telemetry")
        try:
            if telemetry is not None and telemetry.store is not None:
                store.publish_process_stats(telemetry.service, telemetry.stats(), now)
            store.rollup(max_spans=SCRAPE_FOLD_MAX_SPANS)
        except Exception:  # a busy store must not fail the scrape: serve what is there
            log.warning("aiops: /metrics could not fold new spans", exc_info=True)

        duration = HistogramMetricFamily("http_server_request_duration_seconds",
                                         "Duration of HTTP server requests (from stored spans).", labels=_HTTP_LABELS)
        requests = CounterMetricFamily("http_server_requests", "HTTP server requests (from stored spans).",
                                       labels=_HTTP_LABELS)
        for row in store.request_totals():
            labels = [row["service"], row["route"], row["method"], str(row["status_code"])]
            buckets = [(f"{ms / 1000.0:g}", count) for ms, count in row["buckets"]] + [("+Inf", row["total"])]
            duration.add_metric(labels, buckets, row["duration_ms_sum"] / 1000.0)
            requests.add_metric(labels, row["total"])
        yield duration
        yield requests

        burn = GaugeMetricFamily("aiops_slo_burn_rate", "Error-budget burn rate of an SLO over a window "
                                 "(1 spends the budget exactly over the SLO window).",
                                 labels=["service_name", "slo", "window"])
        remaining = GaugeMetricFamily("aiops_slo_error_budget_remaining_ratio",
                                      "Share of the SLO's error budget left over its window (negative: overspent).",
                                      labels=["service_name", "slo"])
        risk = GaugeMetricFamily("aiops_slo_risk_level",
                                 "Risk level of the SLO: 0 SAFE, 1 OBSERVE, 2 DANGER, 3 FREEZE.",
                                 labels=["service_name", "slo"])
        for snap in store.latest_snapshots():
            key = [snap["service_name"], snap["slo_name"]]
            for window, rate in snap["burn_rates"].items():
                burn.add_metric(key + [window], rate)
            burn.add_metric(key + ["composite"], snap["composite_burn_rate"])
            remaining.add_metric(key, snap["error_budget_remaining"])
            risk.add_metric(key, RISK_LEVELS.index(snap["risk_level"]))
        yield burn
        yield remaining
        yield risk

        alerts = GaugeMetricFamily("aiops_slo_alerts_open", "SLO alerts firing or acknowledged.",
                                   labels=["service_name", "severity"])
        counts: dict[tuple, int] = {}
        for alert in store.alerts(limit=10000):
            if alert["status"] in ("firing", "acknowledged"):
                k = (alert["service"], alert["severity"])
                counts[k] = counts.get(k, 0) + 1
        for k, n in sorted(counts.items()):
            alerts.add_metric(list(k), n)
        yield alerts

        incidents = GaugeMetricFamily("aiops_incidents_open", "Open (active or acknowledged) incidents.",
                                      labels=["severity"])
        by_severity = {"medium": 0, "high": 0, "critical": 0}
        for incident in self.engine.open_incidents():
            by_severity[incident["severity"]] = by_severity.get(incident["severity"], 0) + 1
        for severity, n in by_severity.items():
            incidents.add_metric([severity], n)
        yield incidents

        dropped = CounterMetricFamily("telemetry_spans_dropped", "Spans dropped (queue full or write failed), "
                                      "summed over every process that wrote this store.", labels=["service_name"])
        written = CounterMetricFamily("telemetry_spans_written", "Spans written, summed over every process.",
                                      labels=["service_name"])
        queued = GaugeMetricFamily("telemetry_writer_queue_depth", "Spans waiting in the writer queues of "
                                   "processes seen in the last 5 minutes.", labels=["service_name"])
        for service, s in sorted(store.process_stats(now - LIVE_PROCESS_S).items()):
            dropped.add_metric([service], s["dropped"])
            written.add_metric([service], s["written"])
            queued.add_metric([service], s["queued"])
        yield dropped
        yield written
        yield queued


def make_metrics_view(app, engine):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, app))

    def prometheus_metrics():
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return prometheus_metrics
