"""One analysis pass: read the window, learn, detect, explain, group, persist.

``Analyzer.run_pass`` is what the scheduler, ``POST /aiops/analyze`` and
``python -m aiops analyze`` call. It takes the lease first, so only one
process analyses a store at a time; the algorithms it calls are pure.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aiops.baseline import Baseline, batch_looks_anomalous, learn_rate, learn_requests, slow_threshold_ms
from aiops.config import AnalysisConfig
from aiops.detectors import Anomaly, DetectionContext, detect_all
from aiops.incidents import Change, auto_resolve, correlate
from aiops.metric_detect import MetricDetectionConfig, judge_series, metric_findings
from aiops.rca import DependencyGraph, Finding, analyse, build_trees, missing_callees
from aiops.series import SeriesKey, aggregate, gave_up_waiting
from aiops.store import AnalysisStore, new_owner_id

log = logging.getLogger("aiops")

#: Most new spans one pass learns from (a backlog is worked off over several passes).
MAX_NEW_SPANS_PER_PASS = 50_000
#: On the first pass over an existing store, learn from at most this much history.
FIRST_PASS_LOOKBACK_S = 3600.0
#: Most new pushed metric points one pass judges.
MAX_NEW_METRICS_PER_PASS = 200_000


@dataclass
class PassResult:
    """What one pass saw and did."""

    at: float
    duration_ms: float
    spans_in_window: int
    new_spans: int
    anomalies: list[Anomaly] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    skipped: str | None = None

    def to_dict(self, single_service: bool = True) -> dict:
        return {
            "analyzed_at": self.at,
            "duration_ms": round(self.duration_ms, 2),
            "skipped": self.skipped,
            "spans_in_window": self.spans_in_window,
            "new_spans_learned": self.new_spans,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "incidents": [{"event": c.event, **c.incident.to_json(single_service)} for c in self.changes],
        }


def timeouts_seen_by_callers(trees, graph: DependencyGraph) -> dict[SeriesKey, int]:
    """Per callee: caller spans that timed out while the callee's span is
    missing from the trace (it never answered), for expected callees."""
    counts: dict[SeriesKey, int] = {}
    for roots in trees.values():
        for root in roots:
            for node in root.walk():
                if not gave_up_waiting(node.span):
                    continue
                missing = missing_callees(node, graph)
                if missing:  # calls are sequential: the first missing callee is the one that hung
                    counts[missing[0]] = counts.get(missing[0], 0) + 1
    return counts


class Analyzer:
    """Runs passes over one store with one config; ``notify(event, incident_json)``
    is called for opened, escalated and resolved incidents."""

    def __init__(self, store: AnalysisStore, config: AnalysisConfig, notify=None, owner: str | None = None,
                 metric_detection: MetricDetectionConfig | None = MetricDetectionConfig()):
        self.store = store
        self.config = config
        self.notify = notify
        self.owner = owner or new_owner_id()
        self.metric_detection = metric_detection  # None: pushed metrics are not judged

    def judge_metrics(self, now_s: float) -> tuple[list, int | None]:
        """Anomalies of the metric series that got points since the last pass, and
        the row id to remember (None: nothing to remember)."""
        store, cfg = self.store, self.metric_detection
        if cfg is None:
            return [], None
        last_text = store.get_state("last_metric_id")
        last_id = int(last_text) if last_text is not None else \
            store.first_metric_id_since(now_s - FIRST_PASS_LOOKBACK_S)
        rows = store.metric_rows_after(last_id, MAX_NEW_METRICS_PER_PASS)
        if not rows:
            return [], last_id if last_text is None else None
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
        return anomalies, rows[-1][0]

    def run_pass(self, now_s: float | None = None) -> PassResult:
        started = time.perf_counter()
        now_s = time.time() if now_s is None else now_s
        config, store = self.config, self.store
        if not store.try_lock(self.owner, ttl_s=max(3 * config.interval_s, 30.0), now_s=now_s):
            return PassResult(now_s, 0.0, 0, 0, skipped="another process holds the analysis lease")

        window = store.window_spans(now_s - config.window_s, now_s)
        last_id_text = store.get_state("last_span_id")
        last_id = int(last_id_text) if last_id_text is not None else \
            store.first_span_id_since(now_s - FIRST_PASS_LOOKBACK_S)
        new = store.spans_after(last_id, MAX_NEW_SPANS_PER_PASS)
        baselines = store.load_baselines()
        graph = store.load_graph()

        # The dependency graph grows with every caller span that is new this
        # pass; its callees finished before it, so they are in the window.
        trees = build_trees(window)
        new_ids = {s["span_id"] for s in new}
        graph_delta = DependencyGraph()
        for roots in trees.values():
            for root in roots:
                for node in root.walk():
                    if node.span["span_id"] in new_ids:
                        graph_delta.add_calls(node)
        graph.merge(graph_delta)

        stats = aggregate(window)
        ctx = DetectionContext(
            now_s=now_s, config=config, window=stats,
            last_seen_s=store.last_seen(k for k, b in baselines.items() if b.ready(config)),
            timeouts_from_callers=timeouts_seen_by_callers(trees, graph),
            called_routes={callee for _, callee in graph.edges},
        )
        anomalies = detect_all(baselines, ctx)
        metric_anomalies, metric_mark = self.judge_metrics(now_s)
        anomalous = {a.key for a in anomalies}
        slow_or_failing = {a.key for a in anomalies if not a.type.startswith("traffic")}

        # Learn from what is new, never from a signal judged anomalous now:
        # latency and errors stop learning on a latency, error or timeout
        # anomaly of the series, or when the new batch alone looks anomalous
        # (a fault still too young to detect); the rate stops on any anomaly.
        for key, batch in aggregate(new).items():
            known = baselines.get(key)
            if key in slow_or_failing or (known is not None and batch_looks_anomalous(known, batch, now_s, config)):
                continue
            baselines[key] = learn_requests(known or Baseline(*key), batch, now_s, config)
        for key, baseline in list(baselines.items()):
            if key not in anomalous:
                window_stats = stats.get(key)
                baselines[key] = learn_rate(baseline, window_stats.count if window_stats else 0, now_s, config)

        services = {k[0] for k in baselines} | {k[0] for k in stats}
        single_service = len(services) <= 1
        slow_ms_of = {key: slow_threshold_ms(b, now_s, config) for key, b in baselines.items() if b.requests}
        findings = analyse(anomalies, trees, baselines, graph, slow_ms_of, single_service)
        if metric_anomalies:
            findings = metric_findings(metric_anomalies, findings)
        open_incidents = store.open_incidents()
        history_keys = {f.root_cause for f in findings}
        since = now_s - config.recurrence_days * 86400
        history = [i for key in history_keys for i in store.incidents_with_root(key, since)]
        with store.transaction():
            changes = correlate(open_incidents, findings, history, now_s, config, graph,
                                lambda: store.next_incident_id(now_s))
            changes += auto_resolve(open_incidents, now_s, config)
            store.save_baselines(baselines.values())
            store.add_to_graph(graph_delta, now_s)
            store.save_incidents({id(c.incident): c.incident for c in changes}.values())
            if new:
                store.set_state("last_span_id", new[-1]["id"])
            elif last_id_text is None:
                store.set_state("last_span_id", last_id)
            store.set_state("last_pass_at", now_s)
            if metric_mark is not None:
                store.set_state("last_metric_id", metric_mark)

        if self.notify is not None:
            for change in changes:
                if change.event in ("opened", "escalated", "resolved"):
                    try:
                        self.notify(change.event, change.incident.to_json(single_service))
                    except Exception:  # notifications never break analysis
                        log.warning("aiops: notification failed", exc_info=True)
        result = PassResult(now_s, (time.perf_counter() - started) * 1000.0, len(window), len(new),
                            anomalies + metric_anomalies, findings, changes)
        if anomalies:
            log.info("aiops: %d anomalies, %d incident changes in %.1f ms", len(anomalies), len(changes),
                     result.duration_ms)
        return result
