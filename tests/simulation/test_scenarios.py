"""The scenario registry: the five declared scenarios, validation at registration, seeded generators."""
import dataclasses
import statistics

import pytest

from simulation.generators import generate, pattern_level
from simulation.scenarios import (
    GB,
    SCENARIOS,
    IncidentScenario,
    MetricPattern,
    Phase,
    ScenarioError,
    UnknownScenario,
    get_scenario,
    list_scenarios,
    register,
    unregister,
)

FIVE = ["memory_leak_gradual", "cpu_spike_traffic_surge", "latency_spike_database", "pod_crash_loop",
        "dependency_failure_timeout"]
END = 1_800_000_000.0


def metric(scenario_id, name):
    return next(m for m in get_scenario(scenario_id).metrics if m.name == name)


def test_the_five_scenarios_carry_the_product_figures():
    assert list(SCENARIOS)[:5] == FIVE
    mem = metric("memory_leak_gradual", "memory_usage_bytes")
    assert (mem.value, mem.baseline, mem.deviation_sigma, mem.pattern) == (8 * GB, 2 * GB, 5.2, "ramp")
    cpu = metric("cpu_spike_traffic_surge", "cpu_usage_percent")
    assert (cpu.value, cpu.baseline, cpu.deviation_sigma) == (98.5, 45.0, 6.0)
    db = metric("latency_spike_database", "db_query_duration_seconds")
    assert (db.value, db.baseline, db.deviation_sigma) == (7.2, 0.05, 7.0)
    assert metric("pod_crash_loop", "pod_restarts_total").value == 45
    assert metric("dependency_failure_timeout", "external_call_duration_seconds").value == 30.0
    assert get_scenario("dependency_failure_timeout").dependencies[0].state == "circuit_breaker_open"
    assert get_scenario("memory_leak_gradual").severity == "critical"
    assert get_scenario("dependency_failure_timeout").difficulty == "advanced"
    assert {s: get_scenario(s).request_level for s in FIVE} == {
        "memory_leak_gradual": False, "cpu_spike_traffic_surge": False, "latency_spike_database": True,
        "pod_crash_loop": False, "dependency_failure_timeout": True}
    multi = get_scenario("memory_leak_oom_crash_loop")
    assert [p.name for p in multi.phases] == ["leak", "oom crash loop"]


def test_unknown_scenario_lists_the_valid_ids():
    with pytest.raises(UnknownScenario) as caught:
        get_scenario("disk_full")
    assert all(s in str(caught.value) for s in FIVE)


def test_filters_and_invalid_filter_values():
    assert [s.scenario_id for s in list_scenarios(severity="critical")] == [
        "memory_leak_gradual", "pod_crash_loop", "memory_leak_oom_crash_loop"]
    assert [s.scenario_id for s in list_scenarios(tag="database")] == ["latency_spike_database"]
    assert [s.scenario_id for s in list_scenarios(difficulty="beginner", tag="capacity")] == ["cpu_spike_traffic_surge"]
    with pytest.raises(ScenarioError, match="beginner, intermediate, advanced"):
        list_scenarios(difficulty="expert")


def custom(**over):
    base = dict(scenario_id="disk_fill", name="Disk fills", description="logs fill the disk", service="logger",
                severity="high", difficulty="beginner", tags=("resource",),
                phases=(Phase("fill", 120.0, (MetricPattern("disk_used_percent", 97.0, 40.0, 6.0, "ramp", "percent",
                                                           maximum=100.0),)),),
                expected_root_cause="capacity_saturation", expected_action_types=("scale",))
    base.update(over)
    return IncidentScenario(**base)


def test_adding_a_scenario_is_one_declaration_validated_at_registration():
    try:
        register(custom())
        assert get_scenario("disk_fill").summary()["metric_count"] == 1
        with pytest.raises(ScenarioError, match="already registered"):
            register(custom())
    finally:
        unregister("disk_fill")
    assert "disk_fill" not in SCENARIOS


@pytest.mark.parametrize("change,words", [
    ({"severity": "urgent"}, "severity must be one of low, medium, high, critical"),
    ({"tags": ("resource", "shiny")}, "unknown tag(s) ['shiny']"),
    ({"expected_root_cause": "gremlins"}, "expected_root_cause must be one of memory_leak"),
    ({"expected_action_types": ("reboot_the_world",)}, "subset of restart, rollback, scale, add_index"),
    ({"scenario_id": "Bad Id"}, "scenario_id must be"),
    ({"phases": (Phase("x", 120.0, (MetricPattern("m", 5.0, 1.0, 3.0, "zigzag", "u"),)),)},
     "pattern must be one of spike, ramp, step, drop, oscillation"),
    ({"phases": (Phase("x", 120.0, (MetricPattern("m", 5.0, 1.0, 3.0, "drop", "u"),)),)},
     "a drop needs value < baseline"),
    ({"phases": ()}, "at least one phase"),
    ({"baseline_s": 100.0}, "at least 240 healthy points"),
])
def test_registration_rejects_bad_declarations_naming_what_is_valid(change, words):
    with pytest.raises(ScenarioError) as caught:
        register(custom(**change))
    assert words in str(caught.value)
    assert "disk_fill" not in SCENARIOS


def test_generator_is_seeded_and_returns_ground_truth():
    s = get_scenario("memory_leak_gradual")
    a, b, c = generate(s, END, seed=1), generate(s, END, seed=1), generate(s, END, seed=2)
    assert a.points == b.points and a.points != c.points
    truth = a.truth["memory_usage_bytes"]
    assert truth.onset_s == END - s.duration_seconds == a.onset_s
    assert (truth.pattern, truth.peak, truth.baseline, truth.direction) == ("ramp", 8 * GB, 2 * GB, "up")
    assert truth.sigma == pytest.approx(6 * GB / 5.2)
    series = a.series("memory_usage_bytes")
    assert series[-1][0] == END and series[0][0] == END - s.duration_seconds - s.baseline_s
    healthy = [v for t, v in series if t < truth.onset_s]
    assert len(healthy) == s.baseline_s / s.step_s
    assert statistics.fmean(healthy) == pytest.approx(2 * GB, rel=0.1)
    assert min(healthy) >= 0.0  # clamped at the pattern's minimum
    late = [v for t, v in series if t > END - 30]
    assert statistics.fmean(late) == pytest.approx(8 * GB, rel=0.25)
    assert all(p["labels"]["scenario"] == "memory_leak_gradual" for p in a.points)


def test_pattern_shapes():
    assert pattern_level("ramp", 0, 10, 0.5) == 5
    assert pattern_level("spike", 0, 10, 0.05) == 5 and pattern_level("spike", 0, 10, 0.5) == 10
    assert pattern_level("step", 0, 10, 0.0) == 10 and pattern_level("drop", 3, 1, 0.01) == 1
    assert pattern_level("oscillation", 0, 10, 0.0, cycles=2) == 0
    assert pattern_level("oscillation", 0, 10, 0.25, cycles=2) == pytest.approx(10)
    with pytest.raises(ValueError, match="valid patterns: spike, ramp"):
        pattern_level("zigzag", 0, 1, 0.5)


def test_counts_are_integers_and_noiseless_series_exact():
    g = generate(get_scenario("pod_crash_loop"), END, seed=3)
    ready = g.series("pods_ready")
    onset = g.truth["pods_ready"].onset_s
    assert {v for t, v in ready if t < onset} == {3.0} and {v for t, v in ready if t >= onset} == {1.0}
    restarts = [v for _, v in g.series("pod_restarts_total")]
    assert all(v == int(v) for v in restarts) and restarts[-1] == 45


def test_multi_phase_series_follow_each_phase():
    s = get_scenario("memory_leak_oom_crash_loop")
    g = generate(s, END, seed=0)
    crash_start = g.phase_starts["oom crash loop"]
    assert crash_start == g.onset_s + 240.0
    restarts = g.truth["pod_restarts_total"]
    assert restarts.onset_s == crash_start and restarts.phases == ("oom crash loop",)
    memory = g.truth["memory_usage_bytes"]
    assert memory.onset_s == g.onset_s and memory.phases == ("leak", "oom crash loop")
    # gc is declared in the leak only: it holds its level through the crash loop
    gc_late = [v for t, v in g.series("gc_collections") if t >= crash_start]
    assert statistics.fmean(gc_late) == pytest.approx(4000, rel=0.2)
    # the crash loop's memory swings (4 cycles) instead of climbing
    mem = [v for t, v in g.series("memory_usage_bytes") if t >= crash_start]
    assert max(mem) > 6 * GB and min(mem) < 3.5 * GB


def test_scenario_json_shapes():
    detail = get_scenario("dependency_failure_timeout").to_dict()
    assert detail["expected_outcome"] == {"root_cause": "external_dependency_failure",
                                          "action_types": ["open_circuit_breaker"], "severity": "high"}
    assert detail["traffic"]["faults"] == [{"fault": "timeout", "endpoint": "/payment", "duration": 1500.0}]
    assert {"id", "name", "description", "service", "severity", "difficulty", "tags", "duration_seconds",
            "metric_count"} <= set(detail)
    assert dataclasses.is_dataclass(get_scenario("pod_crash_loop"))
