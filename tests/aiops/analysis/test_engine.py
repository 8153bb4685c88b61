"""The whole analysis over seeded traffic with known faults (ground truth)."""
import random

import pytest

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.engine import Analyzer
from aiops.testing.synthetic import deep_routes, shop_routes
from tests.aiops.helpers import SHOP_RATES, T0, Run, fault

SHOP = shop_routes()
DEEP = deep_routes()
DEEP_RATES = {("gateway", "/order"): 6, ("gateway", "/status"): 2}


def only_incident(run):
    opened = run.opened()
    assert len(opened) == 1, [(t, i.title, i.root_key) for t, i in opened]
    return opened[0]


def test_latency_spike_on_payment_blames_payment(tmp_path):
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 900, [fault(("shop", "/payment"), "latency", 600, 720, 2000)])
    at, incident = only_incident(run)
    assert 600 < at <= 620  # the first or second pass after the fault
    assert incident.root_key == ("shop", "/payment")
    assert incident.root_cause["confidence"] >= 0.9
    assert incident.severity == "high"  # latency > 5x baseline
    assert incident.title == "Latency spike detected in /payment"
    body = incident.to_json()
    assert body["affected_endpoints"][:2] == ["/payment", "/checkout"]
    latency = [a for a in body["anomalies"] if a["endpoint"] == "/payment"][0]
    assert latency["type"] == "latency_anomaly" and 30 < latency["baseline_ms"] < 55
    assert latency["current_ms"] > 1900 and latency["deviation"] > 30
    sample = body["trace_correlation"]["sample_traces"][0]
    assert sample["root_endpoint"] == "/payment"
    assert sample["affected_chain"] in (["/checkout", "/inventory", "/payment"], ["/payment"])
    assert body["trace_correlation"]["total_traces"] > 10


def test_error_spike_on_inventory_keeps_sample_errors(tmp_path):
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 900, [fault(("shop", "/inventory"), "error", 600, 720, 0.8)])
    at, incident = only_incident(run)
    assert incident.root_key == ("shop", "/inventory") and at <= 620
    assert incident.severity == "critical"  # 80% of requests fail since the onset, though not yet of the window
    final = run.store.incident(incident.id)
    errors = [a for a in final.anomalies if a["type"] == "error_spike" and a["endpoint"] == "/inventory"][0]
    assert errors["sample_errors"][0]["type"] == "simulation.chaos.InjectedFault"
    assert errors["sample_errors"][0]["message"] == "injected fault"
    assert [e["event"] for e in final.timeline] == ["opened", "resolved"]
    assert final.status == "resolved" and final.resolved_at is not None  # auto-resolved after the fault


def test_payment_broken_completely_cascades_to_checkout(tmp_path):
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 900, [fault(("shop", "/payment"), "error", 600, 720, 1.0)])
    _, incident = only_incident(run)
    final = run.store.incident(incident.id)
    assert final.root_key == ("shop", "/payment")
    body = final.to_json()
    assert "/checkout" in body["affected_endpoints"]
    assert body["root_cause"]["confidence"] >= 0.95
    assert body["severity"] == "critical"
    assert any(a["endpoint"] == "/checkout" for a in body["anomalies"])  # the cascade joined, no second incident
    chains = [s["affected_chain"] for s in body["trace_correlation"]["sample_traces"]]
    assert ["/checkout", "/inventory", "/payment"] in chains


def test_timeout_blames_the_callee_that_never_answered(tmp_path):
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 900, [fault(("shop", "/inventory"), "timeout", 600, 720, 30000)])
    _, incident = only_incident(run)
    assert incident.root_key == ("shop", "/inventory")
    assert incident.title == "Timeouts detected in /inventory"
    assert incident.root_cause["reason"] == "no_response"


def test_healthy_half_hour_raises_no_incident(tmp_path):
    """Log-normal latencies, 0.1% background errors, 30 simulated minutes: zero incidents."""
    for seed in (11, 12):
        run = Run(tmp_path / f"h{seed}.db", SHOP, SHOP_RATES, 1800, seed=seed)
        assert run.opened() == []
        assert sum(len(r.anomalies) for r in run.results) == 0


@pytest.mark.parametrize("seed", range(6))
def test_randomised_faults_on_a_deep_chain_with_fan_out(tmp_path, seed):
    """Three services, four levels, a fan-out: random route, kind and magnitude."""
    rng = random.Random(seed)
    target = rng.choice([k for k in DEEP if k != ("gateway", "/status")])
    kind = rng.choice(["latency", "error", "timeout"])
    magnitude = {"latency": rng.choice([300, 800, 2000]), "error": rng.choice([0.5, 0.8, 1.0]),
                 "timeout": 30000}[kind]
    run = Run(tmp_path / "d.db", DEEP, DEEP_RATES, 900, [fault(target, kind, 600, 720, magnitude)], seed=seed)
    opened = run.opened()
    assert opened, f"{kind} {magnitude} on {target} was not detected"
    at, incident = opened[0]
    assert at <= 630, f"detected only {at - 600:.0f}s after the fault"
    assert incident.root_key == target, (kind, magnitude, target, incident.root_cause)
    callers = {("gateway", "/order"), ("orders", "/create"), ("pricing", "/quote")}
    expected_callers = {
        ("gateway", "/order"): set(), ("orders", "/create"): {("gateway", "/order")},
        ("stock", "/reserve"): {("orders", "/create"), ("gateway", "/order")},
        ("pricing", "/quote"): {("orders", "/create"), ("gateway", "/order")},
        ("pricing", "/tax"): callers,
    }[target]
    affected = {tuple(k) for k in run.store.incident(incident.id).affected}
    assert expected_callers <= affected
    assert all(i.root_key == target for _, i in opened), [(i.title, i.root_key) for _, i in opened]


def test_baselines_survive_a_restart(tmp_path):
    db = tmp_path / "s.db"
    first = Run(db, SHOP, SHOP_RATES, 300)
    learned = first.store.load_baselines()
    assert learned[("shop", "/payment")].ready(first.config)
    restarted = Analyzer(type(first.store)(str(db)), AnalysisConfig())
    assert restarted.store.load_baselines()[("shop", "/payment")].requests == learned[("shop", "/payment")].requests
    # A fault right after the restart is judged against what was learned before it.
    from aiops.testing.synthetic import generate, replay
    from telemetry.store import INSERT_SPAN as _INSERT, connect
    conn = connect(str(db))
    later = generate(SHOP, SHOP_RATES, T0 + 300, 120, [fault(("shop", "/payment"), "latency", 300, 420, 1000)], seed=5)

    def write(rows):
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")

    results = replay(later, write, restarted.run_pass, T0 + 310, T0 + 330, 10)
    conn.close()
    opened = [c.incident for r in results for c in r.changes if c.event == "opened"]
    assert [i.root_key for i in opened] == [("shop", "/payment")]


def test_recurrence_links_earlier_incidents(tmp_path):
    faults = [fault(("shop", "/payment"), "error", start, start + 60, 1.0) for start in (300, 700, 1100)]
    config = AnalysisConfig(auto_resolve_s=60, correlation_window_s=120)
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 1300, faults, config=config)
    opened = [i for _, i in run.opened()]
    assert [i.root_key for i in opened] == [("shop", "/payment")] * 3
    assert opened[0].recurrence == {}
    assert opened[2].recurrence["count"] == 3
    assert opened[2].recurrence["previous_incidents"] == [opened[0].id, opened[1].id]
    assert opened[2].recurrence["summary"] == "seen 3 times in 7 days"


def test_only_one_analyser_holds_the_lease(tmp_path):
    run = Run(tmp_path / "s.db", SHOP, SHOP_RATES, 60)
    other = Analyzer(type(run.store)(str(tmp_path / "s.db")), run.config, owner="worker-2")
    now = T0 + 60
    assert run.analyzer.run_pass(now).skipped is None
    assert "lease" in other.run_pass(now + 1).skipped
    assert other.run_pass(now + 1000).skipped is None  # the holder stopped renewing: the lease lapsed


def test_window_spans_with_the_aggregate_columns_aggregates_the_same(tmp_path):
    """The lean read /aiops/metrics and the replay use gives the same per-route figures as the full read."""
    from aiops.analysis.series import AGGREGATE_COLUMNS, aggregate
    run = Run(tmp_path / "t.db", SHOP, SHOP_RATES, 300, [fault(("shop", "/payment"), "error", 120, 240, 0.5)])
    try:
        end = T0 + 301
        full = aggregate(run.store.window_spans(end - 300, end))
        lean_spans = run.store.window_spans(end - 300, end, AGGREGATE_COLUMNS)
        assert set(lean_spans[0]) == set(AGGREGATE_COLUMNS)
        lean = aggregate(lean_spans)
        assert full.keys() == lean.keys() and len(full) >= 4
        for key in full:
            a, b = full[key], lean[key]
            assert (a.count, a.error_count, a.timeouts, a.status_counts, a.latencies_ms, a.sample_errors) == \
                   (b.count, b.error_count, b.timeouts, b.status_counts, b.latencies_ms, b.sample_errors)
        with pytest.raises(ValueError, match="unknown span columns"):
            run.store.window_spans(end - 300, end, ("service", "password"))
    finally:
        run.store.close()
