"""Pushed metric series judged by the analysis pass (the online detector), incidents from them."""
import random

import pytest

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.engine import Analyzer
from aiops.analysis.rca import Finding, metric_findings
from aiops.analysis.store import AnalysisStore
from aiops.metrics.detect import MetricSignals, judge_series
from aiops.metrics.model import MetricPoint
from aiops.metrics.store import MetricStore
from aiops.signals import Anomaly

T0 = 1_800_000_000.0


def series(name="memory_bytes", n=400, step_at=None, level=100.0, jump=60.0, seed=0, service="svc"):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = level + rng.gauss(0, 5) + (jump if step_at is not None and i >= step_at else 0.0)
        out.append(MetricPoint(T0 + 5 * i, service, name, value, {}))
    return out


def test_judge_flags_a_step_with_its_sigma_and_onset():
    points = series(step_at=350)
    anomaly = judge_series(points, 0, T0 + 2000)
    assert anomaly is not None and anomaly.type == "metric_spike"
    m = anomaly.metric
    assert m["first_flagged_at"] >= points[350].timestamp_s
    assert m["first_flagged_at"] - points[350].timestamp_s <= 25  # within five points
    assert 8 < m["deviation_sigma"] < 20 and m["baseline_mean"] == pytest.approx(100, abs=2)
    assert "memory_bytes rose to" in anomaly.description


def test_judge_is_quiet_on_noise_and_only_flags_new_points():
    assert judge_series(series(seed=4), 0, T0) is None
    points = series(step_at=300)
    assert judge_series(points, len(points), T0) is None       # nothing new
    assert judge_series(points, 0, T0) is not None
    drop = series(step_at=350, jump=-60.0)
    assert judge_series(drop, 0, T0).type == "metric_drop"


def test_metric_findings_join_the_span_finding_of_their_service():
    span = Anomaly("latency_anomaly", "shop", "/inventory", "high", 20, 400, 20, 9, T0)
    host = Finding(("shop", "/inventory"), 0.9, "latency", [span], [("shop", "/inventory")], 12, [], "slow")
    metric = judge_series(series(service="shop", name="db_query_seconds", step_at=350), 0, T0)
    other = judge_series(series(service="db", name="cpu_percent", step_at=350), 0, T0)
    out = metric_findings([metric, other], [host])
    assert out[0] is host and metric in host.anomalies and ("shop", "db_query_seconds") in host.affected
    assert out[1].root_cause == ("db", "cpu_percent") and out[1].reason == "metric"


def test_a_pass_opens_an_incident_from_pushed_metrics_and_judges_late_backfills(tmp_path):
    store = AnalysisStore(str(tmp_path / "m.db"))
    metrics = MetricStore(store.db)
    analyzer = Analyzer(store, AnalysisConfig(), sources=[MetricSignals(metrics)])
    metrics.insert_metrics(series(n=300))                  # healthy history
    first = analyzer.run_pass(T0 + 1500)
    assert first.anomalies == [] and store.incidents() == []
    # a backfilled batch stamped before the last pass is still judged (new rows, not new times)
    late = [MetricPoint(T0 + 5 * i, "svc", "memory_bytes", 160.0 + (i % 3), {}) for i in range(300, 340)]
    metrics.insert_metrics(late)
    second = analyzer.run_pass(T0 + 1510)
    kinds = [a.type for a in second.anomalies]
    assert kinds == ["metric_spike"]
    incidents = store.incidents()
    assert len(incidents) == 1
    incident = incidents[0].to_json()
    assert incident["root_cause"]["endpoint"] == "memory_bytes" and incident["root_cause"]["reason"] == "metric"
    assert incident["title"] == "Metric spike detected in memory_bytes"
    assert incident["anomalies"][0]["metric"]["direction"] == "up"
    third = analyzer.run_pass(T0 + 1520)                    # nothing new: nothing judged again
    assert third.anomalies == []


def test_metric_detection_can_be_turned_off(tmp_path):
    store = AnalysisStore(str(tmp_path / "m.db"))
    analyzer = Analyzer(store, AnalysisConfig())  # no signal sources: pushed metrics are stored, not judged
    MetricStore(store.db).insert_metrics(series(step_at=350))
    assert analyzer.run_pass(T0 + 2000).anomalies == [] and store.incidents() == []
