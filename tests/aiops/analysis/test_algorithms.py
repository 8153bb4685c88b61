"""Pure algorithms: series, baselines, detectors, RCA, incidents."""
import math
import random

import pytest

from aiops.analysis.baseline import Baseline, batch_looks_anomalous, hour_of_week, learn_rate, learn_requests
from aiops.analysis.config import AnalysisConfig
from aiops.analysis.detectors import (
    DETECTORS,
    DetectionContext,
    binomial_sf,
    detect_all,
    get_detector,
    poisson_cdf,
    poisson_sf,
    severity_of,
)
from aiops.analysis.incidents import TransitionError, auto_resolve, correlate, transition
from aiops.analysis.rca import DependencyGraph, analyse, build_trees, find_culprit, graph_from_trees
from aiops.analysis.series import aggregate
from aiops.stats import percentile

CONFIG = AnalysisConfig()
NOW = 1_800_000_000.0


def span(route, duration_ms=10.0, status=200, start=NOW - 5, trace="t" * 32, span_id=None, parent=None,
         service="shop", exc=None, message=None):
    return {"trace_id": trace, "span_id": span_id or f"{random.getrandbits(64):016x}", "parent_span_id": parent,
            "service": service, "route": route, "method": "GET", "path": route, "status_code": status,
            "start_time": start, "duration_ms": duration_ms, "error": int(status >= 500 or exc is not None),
            "exception_type": exc, "exception_message": message, "stacktrace": None}


def learned(route="/r", median_ms=40.0, sigma=0.3, n=400, error_ratio=0.001, rate=5.0, service="shop"):
    rng = random.Random(1)
    spans = [span(route, median_ms * math.exp(rng.gauss(0, sigma)), service=service) for _ in range(n)]
    b = learn_requests(Baseline(service, route), aggregate(spans)[(service, route)], NOW - 600, CONFIG)
    b.error_ratio, b.rate_per_s, b.passes, b.first_seen_s = error_ratio, rate, 50, NOW - 3600
    return b


def window(*spans):
    return aggregate(spans)


# -- series ---------------------------------------------------------------------

def test_aggregate_and_percentiles():
    stats = aggregate([span("/a", d) for d in (5, 1, 3, 2, 4)] +
                      [span("/a", 9, 503, exc="TimeoutError", message="slow db")])[("shop", "/a")]
    assert stats.count == 6 and stats.latencies_ms == [1, 2, 3, 4, 5, 9]
    assert stats.p50_ms == 3 and stats.p95_ms == 9 and stats.error_count == 1 and stats.timeouts == 1
    assert stats.status_counts == {200: 5, 503: 1}
    assert stats.sample_errors == [("TimeoutError", "slow db", 1)]
    assert percentile([], 50) == 0.0 and percentile([7.0], 99) == 7.0


# -- baselines -------------------------------------------------------------------

def test_batch_ewma_equals_its_weight_and_median_is_learned():
    b = learned(median_ms=40.0)
    assert 36 < b.p50_ms < 44 and 0.2 < b.log_std < 0.4
    slow = aggregate([span("/r", 400.0) for _ in range(10)])[("shop", "/r")]
    moved = learn_requests(b, slow, NOW, CONFIG)
    w = 1 - (1 - CONFIG.baseline_alpha) ** 10
    assert math.isclose(moved.log_mean, b.log_mean + w * (math.log(400) - b.log_mean), rel_tol=1e-9)
    assert moved.requests == b.requests + 10


def test_one_outlier_in_a_batch_barely_moves_the_baseline():
    b = learned(median_ms=40.0)
    batch = aggregate([span("/r", 40.0) for _ in range(19)] + [span("/r", 5000.0)])[("shop", "/r")]
    assert abs(learn_requests(b, batch, NOW, CONFIG).p50_ms - b.p50_ms) < 1.0


def test_anomalous_batches_are_not_learned_from():
    b = learned(median_ms=40.0, error_ratio=0.001)
    failing = aggregate([span("/r", 40.0, 500) for _ in range(3)] + [span("/r", 40.0) for _ in range(5)])
    assert batch_looks_anomalous(b, failing[("shop", "/r")], NOW, CONFIG)
    slow = aggregate([span("/r", 900.0) for _ in range(5)])
    assert batch_looks_anomalous(b, slow[("shop", "/r")], NOW, CONFIG)
    normal = aggregate([span("/r", 41.0) for _ in range(5)] + [span("/r", 40.0, 500)])
    assert not batch_looks_anomalous(b, normal[("shop", "/r")], NOW, CONFIG)


def test_rate_uses_only_the_part_of_the_window_the_series_existed_in():
    b = Baseline("shop", "/r", first_seen_s=NOW - 10)
    assert learn_rate(b, 50, NOW, CONFIG).rate_per_s == pytest.approx(5.0)
    b.first_seen_s = NOW - 3600
    assert learn_rate(b, 300, NOW, CONFIG).rate_per_s == pytest.approx(5.0)


def test_baseline_round_trips_through_json():
    b = learned()
    b.seasonal = {5: [1.0, 2.0, 3.0]}
    assert Baseline.from_dict(b.to_dict()) == b


def test_seasonality_expects_a_daily_peak():
    config = AnalysisConfig(seasonality=True)
    b = Baseline("shop", "/r", requests=100, first_seen_s=NOW - 60 * 86400, log_mean=math.log(40), log_var=0.09)
    peak_hour = NOW - (NOW % 3600)
    for day in range(7, 0, -1):  # a week of history: quiet at night, busy at this hour
        for minute in range(0, 60, 10):
            b = learn_rate(b, 60, peak_hour - day * 86400 - 12 * 3600 + minute * 60, config)   # 1 req/s
            b = learn_rate(b, 600, peak_hour - day * 7 * 86400 + minute * 60, config)          # 10 req/s
    b.passes = 100
    peak = window(*[span("/r", 40.0, start=NOW - i * 0.1) for i in range(600)])
    ctx = DetectionContext(now_s=peak_hour + 600, config=config, window=peak)
    assert b.expected_rate(peak_hour + 600, config) == pytest.approx(10.0, rel=0.05)
    assert get_detector("traffic")(peak[("shop", "/r")], b, ctx) is None
    flat = AnalysisConfig(seasonality=False)
    b.rate_per_s = 1.0
    ctx = DetectionContext(now_s=peak_hour + 600, config=flat, window=peak)
    assert get_detector("traffic")(peak[("shop", "/r")], b, ctx).type == "traffic_surge"
    assert 0 <= hour_of_week(NOW) < 168


# -- detectors ---------------------------------------------------------------------

def test_registry_lists_valid_names():
    assert set(DETECTORS) == {"latency", "errors", "timeout", "traffic"}
    with pytest.raises(KeyError, match="valid detectors: errors, latency, timeout, traffic"):
        get_detector("nope")


def test_statistics_helpers():
    assert binomial_sf(0, 10, 0.1) == 1.0
    assert binomial_sf(10, 10, 0.5) == pytest.approx(0.5 ** 10)
    assert binomial_sf(3, 10, 0.1) == pytest.approx(1 - sum(math.comb(10, i) * 0.1 ** i * 0.9 ** (10 - i)
                                                            for i in range(3)))
    assert poisson_cdf(0, 2.0) == pytest.approx(math.exp(-2))
    assert poisson_sf(1, 2.0) == pytest.approx(1 - math.exp(-2))


def test_severity_thresholds():
    assert severity_of(0.51, 1, CONFIG) == "critical"
    assert severity_of(0.21, 1, CONFIG) == "high"
    assert severity_of(0.0, 5.1, CONFIG) == "high"
    assert severity_of(0.1, 4.9, CONFIG) == "medium"
    strict = AnalysisConfig(critical_error_ratio=0.1)
    assert severity_of(0.15, 1, strict) == "critical"


def test_latency_detector_fires_on_a_spike_and_not_on_jitter():
    b = learned(median_ms=40.0, sigma=0.3)
    rng = random.Random(3)
    jitter = window(*[span("/r", 40 * math.exp(rng.gauss(0, 0.3))) for _ in range(300)],
                    span("/r", 3000.0), span("/r", 2500.0))  # two slow outliers: jitter, not an incident
    ctx = DetectionContext(NOW, CONFIG, jitter)
    assert get_detector("latency")(jitter[("shop", "/r")], b, ctx) is None
    spike = window(*[span("/r", 40.0) for _ in range(100)], *[span("/r", 2040.0) for _ in range(8)])
    found = get_detector("latency")(spike[("shop", "/r")], b, DetectionContext(NOW, CONFIG, spike))
    assert found.type == "latency_anomaly" and found.current_ms == 2040.0 and found.severity == "high"
    assert "in 8 of 108 requests" in found.description
    small_route = learned(median_ms=2.0, sigma=0.2)
    tiny = window(*[span("/r", 12.0) for _ in range(50)])  # 6x slower but only 10 ms: under the min delta
    assert get_detector("latency")(tiny[("shop", "/r")], small_route, DetectionContext(NOW, CONFIG, tiny)) is None


def test_nothing_is_judged_before_the_baseline_has_enough_samples():
    b = learned(n=10)
    spike = window(*[span("/r", 5000.0) for _ in range(50)])
    assert detect_all({b.key: b}, DetectionContext(NOW, CONFIG, spike)) == []


def test_error_detector_needs_significance():
    b = learned(error_ratio=0.02)
    few = window(*[span("/r") for _ in range(97)], *[span("/r", status=500) for _ in range(3)])
    assert get_detector("errors")(few[("shop", "/r")], b, DetectionContext(NOW, CONFIG, few)) is None
    many = window(*[span("/r", start=NOW - i * 0.1) if i % 5 not in (0, 2) else
                    span("/r", status=503, start=NOW - i * 0.1, exc="app.DbError", message="db down")
                    for i in range(100)])
    found = get_detector("errors")(many[("shop", "/r")], b, DetectionContext(NOW, CONFIG, many))
    assert found.type == "error_spike" and 0.4 <= found.error_ratio < 0.5 and found.severity == "high"
    assert found.sample_errors == [{"type": "app.DbError", "message": "db down", "count": 40}]


def test_stalled_route_is_told_apart_from_a_quiet_one():
    busy = learned("/pay", rate=2.0)
    quiet = learned("/rare", rate=0.05)
    others = window(*[span("/health", start=NOW - i) for i in range(30)])
    ctx = DetectionContext(NOW, CONFIG, others, last_seen_s={busy.key: NOW - 40, quiet.key: NOW - 40})
    stalled = get_detector("timeout")(None, busy, ctx)
    assert stalled is not None and stalled.type == "timeout" and stalled.description.startswith("Stalled")
    assert get_detector("timeout")(None, quiet, ctx) is None  # 2 requests expected in 40 s: just quiet
    silent_service = DetectionContext(NOW, CONFIG, {}, last_seen_s={busy.key: NOW - 40})
    assert get_detector("timeout")(None, busy, silent_service) is None  # nobody is calling anything: quiet


def test_traffic_surge_and_drop():
    b = learned(rate=5.0)
    surge = window(*[span("/r", start=NOW - i * 0.05) for i in range(1200)])
    found = get_detector("traffic")(surge[("shop", "/r")], b, DetectionContext(NOW, CONFIG, surge))
    assert found.type == "traffic_surge"
    drop = window(*[span("/r", start=NOW - i * 10) for i in range(6)])
    assert get_detector("traffic")(drop[("shop", "/r")], b, DetectionContext(NOW, CONFIG, drop)).type == "traffic_drop"
    normal = window(*[span("/r", start=NOW - i * 0.2) for i in range(300)])
    assert get_detector("traffic")(normal[("shop", "/r")], b, DetectionContext(NOW, CONFIG, normal)) is None


# -- RCA ---------------------------------------------------------------------------

def chain(trace, routes, failing=None, slow=None, services=None, start=NOW - 10):
    """A call chain routes[0] -> routes[1] -> ...; spans of a failing/slow route and its callers."""
    spans, parent = [], None
    for depth, route in enumerate(routes):
        sid = f"{depth + 1:016x}"
        bad = failing is not None and depth <= routes.index(failing)
        delay = 1000.0 if slow is not None and depth <= routes.index(slow) else 0.0
        spans.append(span(route, 10.0 * (len(routes) - depth) + delay, 500 if bad else 200, start + depth * 0.001,
                          trace, sid, parent, service=(services or {}).get(route, "shop")))
        parent = sid
    return spans


def test_deepest_failing_span_is_the_culprit_across_services():
    services = {"/order": "gateway", "/create": "orders", "/quote": "pricing", "/tax": "pricing"}
    spans = chain("a" * 32, ["/order", "/create", "/quote", "/tax"], failing="/tax", services=services)
    [root] = build_trees(spans)["a" * 32]
    culprit = find_culprit(root, {}, DependencyGraph(), "error")
    assert culprit.key == ("pricing", "/tax") and culprit.reason == "error"


def test_own_time_explains_slowness():
    baselines = {k: learned(k[1], median_ms=m) for k, m in
                 {("shop", "/a"): 30, ("shop", "/b"): 20, ("shop", "/c"): 10}.items()}
    spans = chain("b" * 32, ["/a", "/b", "/c"], slow="/b")  # /b's own time grew, /c is fine
    [root] = build_trees(spans)["b" * 32]
    assert find_culprit(root, baselines, DependencyGraph(), "latency").key == ("shop", "/b")


def test_missing_callee_of_a_timed_out_caller_is_blamed():
    graph = DependencyGraph()
    for i in range(10):
        normal = chain(f"{i:032x}", ["/checkout", "/payment"])
        graph.merge(graph_from_trees(build_trees(normal)))
    timed_out = [span("/checkout", 5000.0, 504, trace="c" * 32, span_id="1" * 16, exc="app.UpstreamTimeout")]
    [root] = build_trees(timed_out)["c" * 32]
    culprit = find_culprit(root, {}, graph, "error")
    assert culprit.key == ("shop", "/payment") and culprit.reason == "no_response"


def test_analyse_groups_related_anomalies_and_scores_confidence():
    spans = []
    for i in range(9):
        spans += chain(f"{i:032x}", ["/checkout", "/payment"], failing="/payment")
    spans += chain(f"{99:032x}", ["/checkout", "/payment"], failing="/checkout")  # one trace disagrees
    trees = build_trees(spans)
    graph = graph_from_trees(trees)
    baselines = {("shop", r): learned(r) for r in ("/checkout", "/payment")}
    stats = aggregate(spans)
    ctx = DetectionContext(NOW, CONFIG, stats)
    anomalies = detect_all(baselines, ctx)
    assert {a.endpoint for a in anomalies} == {"/checkout", "/payment"}
    [finding] = analyse(anomalies, trees, baselines, graph, {})
    assert finding.root_cause == ("shop", "/payment")
    assert finding.confidence == pytest.approx(0.9)
    assert finding.affected == [("shop", "/payment"), ("shop", "/checkout")]
    assert finding.total_traces == 10 and len(finding.sample_traces) == 5


# -- incidents ------------------------------------------------------------------------

def _finding(route="/payment", error_ratio=0.3, at=NOW):
    from aiops.analysis.rca import Finding
    from aiops.signals import Anomaly
    a = Anomaly("error_spike", "shop", route, severity_of(error_ratio, 1, CONFIG), 40, 40, 10, 9, at,
                request_count=100, error_ratio=error_ratio, description=f"Error spike on {route}")
    return Finding(("shop", route), 1.0, "error", [a], [("shop", route)], 3, [], f"Errors in {route}")


def test_correlate_grows_instead_of_duplicating_and_escalates():
    graph, open_, ids = DependencyGraph(), [], iter(f"INC-{i}" for i in range(10))
    [opened] = correlate(open_, [_finding(error_ratio=0.3)], [], NOW, CONFIG, graph, lambda: next(ids))
    assert opened.event == "opened" and opened.incident.severity == "high"
    [again] = correlate(open_, [_finding(error_ratio=0.3)], [], NOW + 10, CONFIG, graph, lambda: next(ids))
    assert again.event == "updated" and len(open_) == 1 and open_[0].passes == 2
    [worse] = correlate(open_, [_finding(error_ratio=0.7)], [], NOW + 20, CONFIG, graph, lambda: next(ids))
    assert worse.event == "escalated" and open_[0].severity == "critical"
    [other] = correlate(open_, [_finding("/inventory")], [], NOW + 30, CONFIG, graph, lambda: next(ids))
    assert other.event == "opened" and len(open_) == 2  # unrelated root cause: its own incident
    [late] = correlate(open_, [_finding()], [], NOW + 20 + 301, CONFIG, graph, lambda: next(ids))
    assert late.event == "opened"  # outside the correlation window


def test_lifecycle_transitions_and_auto_resolve():
    open_ = []
    correlate(open_, [_finding()], [], NOW, CONFIG, DependencyGraph(), lambda: "INC-1")
    incident = open_[0]
    acked = transition(incident, "acknowledge", NOW + 5, "on it")
    assert acked.status == "acknowledged" and incident.status == "active"  # a copy
    with pytest.raises(TransitionError, match="only an active incident can be acknowledged"):
        transition(acked, "acknowledge", NOW + 6)
    assert auto_resolve([acked], NOW + 60, CONFIG) == []
    [resolved] = auto_resolve([acked], NOW + CONFIG.auto_resolve_s, CONFIG)
    assert resolved.event == "resolved" and acked.status == "resolved"
    assert [e["event"] for e in acked.timeline] == ["opened", "acknowledged", "resolved"]
    with pytest.raises(TransitionError, match="already resolved"):
        transition(acked, "resolve", NOW + 200)


def test_error_ratio_since_the_onset_sets_the_severity():
    """40 healthy requests, then every request fails: 33% of the window, 100% now."""
    b = learned(error_ratio=0.001)
    spans = [span("/r", start=NOW - 50 + i) for i in range(40)] + \
            [span("/r", status=500, start=NOW - 9 + i * 0.4) for i in range(20)]
    stats = window(*spans)
    found = get_detector("errors")(stats[("shop", "/r")], b, DetectionContext(NOW, CONFIG, stats))
    assert stats[("shop", "/r")].error_ratio == pytest.approx(1 / 3)
    assert found.error_ratio == 1.0 and found.severity == "critical"
