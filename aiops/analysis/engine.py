"""One analysis pass: read the window, learn, detect, explain, group, persist.

``Analyzer.run_pass`` is what the scheduler, ``POST /aiops/analyze`` and
``python -m aiops analyze`` call. It takes the lease first, so only one
process analyses a store at a time; the algorithms it calls are pure.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

from aiops.analysis.baseline import Baseline, batch_looks_anomalous, learn_rate, learn_requests, slow_threshold_ms
from aiops.analysis.config import AnalysisConfig
from aiops.analysis.detectors import DetectionContext, detect_all
from aiops.analysis.incidents import Change, auto_resolve, correlate
from aiops.analysis.rca import DependencyGraph, Finding, analyse, build_trees, metric_findings, missing_callees
from aiops.analysis.series import aggregate, gave_up_waiting
from aiops.analysis.store import AnalysisStore, new_owner_id
from aiops.signals import Anomaly, SeriesKey, SignalSource

log = logging.getLogger("aiops")

#: Most new spans one pass learns from (a backlog is worked off over several passes).
MAX_NEW_SPANS_PER_PASS = 50_000
#: On the first pass over an existing store, learn from at most this much history.
FIRST_PASS_LOOKBACK_S = 3600.0


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
    is called for opened, escalated and resolved incidents; ``sources`` are
    other features' series judged in the same pass (``aiops.signals.SignalSource``)."""

    def __init__(self, store: AnalysisStore, config: AnalysisConfig, notify=None, owner: str | None = None,
                 sources: Sequence[SignalSource] = ()):
        self.store = store
        self.config = config
        self.notify = notify
        self.owner = owner or new_owner_id()
        self.sources = sources  # other features' series (pushed metrics), judged in every pass

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
        signal_anomalies, commits = [], []
        for source in self.sources:
            found, commit = source.judge(now_s)
            signal_anomalies += found
            if commit is not None:
                commits.append(commit)
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
        if signal_anomalies:
            findings = metric_findings(signal_anomalies, findings)
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
            for commit in commits:
                commit()

        if self.notify is not None:
            for change in changes:
                if change.event in ("opened", "escalated", "resolved"):
                    try:
                        self.notify(change.event, change.incident.to_json(single_service))
                    except Exception:  # notifications never break analysis
                        log.warning("aiops: notification failed", exc_info=True)
        result = PassResult(now_s, (time.perf_counter() - started) * 1000.0, len(window), len(new),
                            anomalies + signal_anomalies, findings, changes)
        if anomalies:
            log.info("aiops: %d anomalies, %d incident changes in %.1f ms", len(anomalies), len(changes),
                     result.duration_ms)
        return result
