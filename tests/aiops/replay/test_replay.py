"""Resilience replay algorithms: the seeded incident against its ground truth, zones, cascade,
SLA breaches, the CSV inputs and their errors, the narrative and the plots."""
import gzip
import re

import numpy as np
import pytest

from aiops.replay.core import ReplayConfig, run_replay
from aiops.replay.data import (
    SLA,
    IncidentMeta,
    InsufficientHistory,
    ReplayInputError,
    Series,
    load_incidents_csv,
    load_metrics_csv,
    merge_series,
    parse_slas,
    write_incidents_csv,
    write_metrics_csv,
)
from aiops.replay.model import ModelConfig
from aiops.replay.narrative import replay_facts, write_narrative
from aiops.replay.zones import ZoneConfig, cascade, find_zones, sla_breaches
from aiops.testing.replay_sample import generate, split

STEP = 60.0


@pytest.fixture(scope="module")
def sample():
    series, incident, truth = generate()
    return series, incident, truth, run_replay(incident, series)


def _zones_of(result, service, metric):
    return [z for z in result.zones if (z.service, z.metric) == (service, metric)]


@pytest.mark.parametrize("seed", [7, 23])
def test_zones_and_cascade_match_the_ground_truth(seed, sample):
    if seed == 7:
        series, incident, truth, result = sample
    else:
        series, incident, truth = generate(seed=seed)
        result = run_replay(incident, series)
    for service, metric, direction, earliest, latest in truth.zones:
        found = [z for z in _zones_of(result, service, metric) if z.direction == direction]
        assert found, f"no {direction} zone on {service} {metric}: {[z.to_dict() for z in result.zones]}"
        first = found[0]
        assert earliest - 2 * STEP <= first.start_s <= latest, (service, metric, first.to_dict())
        assert first.end_s >= truth.stall_end_s - 2 * STEP, (service, metric, first.to_dict())
        assert first.peak_excess > 0 and first.integrated_excess > first.peak_excess
    for service, metric in truth.quiet:
        assert not _zones_of(result, service, metric), f"{service} {metric} has zones but was normal"
    # no zone opens before the stall: the replay window's normal part stays inside the band
    assert min(z.start_s for z in result.zones) >= truth.stall_start_s - 2 * STEP
    assert [c.service for c in result.cascade] == truth.cascade
    # the candidate cause is the stalled service; at 1-minute steps its pods, CPU and latency can leave
    # the band in the same minute, so the pods zone must be among the first (onset within one step)
    assert result.cascade[0].service == truth.cause[0]
    pods = _zones_of(result, *truth.cause)[0]
    assert pods.onset_s <= result.cascade[0].start_s + STEP
    lag = result.cascade[1].lag_s
    assert 60 <= lag <= 600, lag
    assert round(pods.peak_expected) == truth.expected_pods_in_stall and pods.peak_actual == truth.stalled_pods


def _zone_share(result):
    """Share of the replayed metric-minutes that lie in a zone."""
    return sum(z.duration_s for z in result.zones) / STEP / sum(len(m.times_s) for m in result.metrics)


def test_a_normal_day_stays_mostly_inside_the_band(sample):
    series, incident, _ = generate(seed=23, stall_minutes=0)
    result = run_replay(incident, series)
    normal, stalled = _zone_share(result), _zone_share(sample[3])
    assert normal <= 0.1 and stalled >= 0.3, (normal, stalled, [z.to_dict() for z in result.zones])
    assert result.breaches == []
    assert not any(z.metric == "latency_p95_ms" and z.direction == "above" for z in result.zones)


def test_the_model_never_sees_the_replay_window(sample):
    series, incident, _, result = sample
    w0 = result.window_start_s
    tampered = [Series(s.service, s.metric, s.timestamps_s,
                       np.where(s.timestamps_s >= w0, 1000.0, s.values) if s.metric == "pods" else s.values)
                for s in series]
    again = run_replay(incident, tampered)
    before, after = result.metric("inventory", "pods"), again.metric("inventory", "pods")
    assert np.allclose(before.forecast.expected, after.forecast.expected)
    assert np.all(after.actual == 1000.0)
    assert [z.direction for z in _zones_of(again, "inventory", "pods")] == ["above"]


def test_backtest_reports_error_and_honest_coverage(sample):
    result = sample[3]
    for m in result.metrics:
        b = m.forecast.backtest
        assert b.points > 1000
        assert 0.85 <= b.coverage_ratio <= 1.0, (m.key, b)
        assert b.mape_ratio < 0.15, (m.key, b)
        assert b.trust in ("high", "medium")
    drivers = {m.key for m in result.metrics if m.driver}
    assert drivers == {("inventory", "requests_per_s"), ("checkout", "requests_per_s")}
    pods = result.metric("inventory", "pods")
    assert sorted(pods.forecast.regressors) == ["checkout:requests_per_s", "inventory:requests_per_s"]


def test_too_little_history_says_how_much_is_needed():
    series, incident, _ = generate(history_days=0)
    short = [Series(s.service, s.metric, s.timestamps_s[s.timestamps_s >= incident.start_s - 3 * 3600],
                    s.values[s.timestamps_s >= incident.start_s - 3 * 3600]) for s in series]
    with pytest.raises(InsufficientHistory) as err:
        run_replay(incident, short, ReplayConfig(margin_s=1800))
    assert err.value.needed_points == 180 and 0 < err.value.found_points < 180
    assert "at least 180" in str(err.value) and "3 h" in str(err.value)


# -- zones, cascade and SLA breaches on hand-made arrays ----------------------------------------------


def _band(values):
    n = len(values)
    t = 1_800_000_000.0 + STEP * np.arange(n)
    return t, np.array(values, float), np.full(n, 10.0), np.full(n, 8.0), np.full(n, 12.0)


def test_hysteresis_keeps_a_zone_open_until_the_value_is_well_inside():
    # deviation in half-widths: 13 -> 1.5, 11.5 -> 0.75 (between exit and enter), 10.5 -> 0.25 closes
    t, a, e, lo, hi = _band([10, 10, 13, 14, 11.5, 13, 11.5, 10.5, 10, 10])
    zones = find_zones("s", "m", t, STEP, a, e, lo, hi)
    assert len(zones) == 1
    z = zones[0]
    assert (z.start_s, z.end_s) == (t[2], t[5] + STEP)  # ends after the last step outside the band
    assert z.direction == "above" and z.peak_actual == 14 and z.peak_excess == 2.0
    assert z.integrated_excess == pytest.approx((1 + 2 + 1) * STEP)
    assert z.peak_ratio == pytest.approx(1.4)


def test_min_duration_drops_blips_and_a_direction_flip_starts_a_new_zone():
    t, a, e, lo, hi = _band([10, 13, 10, 10, 13, 13, 13, 4, 4, 4, 10])
    zones = find_zones("s", "m", t, STEP, a, e, lo, hi)
    assert [(z.direction, z.start_s) for z in zones] == [("above", t[4]), ("below", t[7])]
    assert find_zones("s", "m", t, STEP, a, e, lo, hi, ZoneConfig(min_duration_s=STEP))[0].start_s == t[1]


def test_cascade_orders_services_by_first_deviation():
    t, a, e, lo, hi = _band([10, 10, 13, 13, 13, 13, 13, 10])
    late_t = t + 3 * STEP
    zones = (find_zones("c", "latency", late_t, STEP, a, e, lo, hi)
             + find_zones("b", "pods", t, STEP, 20 - a, e, lo, hi)
             + find_zones("b", "cpu", t + STEP, STEP, a, e, lo, hi))
    steps = cascade(zones)
    assert [(s.service, s.metric, s.direction, s.lag_s) for s in steps] == [("b", "pods", "below", 0.0),
                                                                            ("c", "latency", "above", 180.0)]
    assert steps[0].metrics == ["pods", "cpu"]


def test_sla_breaches_with_durations_and_whether_normal_behaviour_would_have_breached():
    t, a, e, *_ = _band([100, 300, 320, 100, 100, 400, 100])
    e = np.array([100, 100, 100, 100, 100, 260, 100], float)
    breaches = sla_breaches(SLA("c", "lat", "<=", 250), "c", "lat", t, STEP, a, e)
    assert [(b.start_s, b.duration_s, b.worst_actual, b.expected_breach_steps) for b in breaches] == [
        (t[1], 120.0, 320.0, 0), (t[5], 60.0, 400.0, 1)]
    floor = sla_breaches(SLA("b", "pods", ">=", 4), "b", "pods", t, STEP, np.array([5, 2, 2, 5, 5, 5, 5.0]), e)
    assert [(b.duration_s, b.worst_actual) for b in floor] == [(120.0, 2.0)]


# -- CSV inputs -------------------------------------------------------------------------------------


def test_csv_round_trip_long_two_column_and_gzip(tmp_path):
    series, incident, _ = generate(history_days=1)
    hist, actual = split(series, incident.start_s - 1800)
    write_metrics_csv(str(tmp_path / "h.csv.gz"), hist)
    write_metrics_csv(str(tmp_path / "a.csv"), actual)
    write_incidents_csv(str(tmp_path / "i.csv"), [incident])
    loaded = merge_series(load_metrics_csv(str(tmp_path / "h.csv.gz")), load_metrics_csv(str(tmp_path / "a.csv")))
    assert set(loaded) == {s.key for s in series}
    pods = loaded[("inventory", "pods")]
    orig = next(s for s in series if s.metric == "pods")
    assert np.array_equal(pods.timestamps_s, orig.timestamps_s) and np.array_equal(pods.values, orig.values)
    assert gzip.open(tmp_path / "h.csv.gz", "rt").readline().strip() == "timestamp,service,metric,value"
    (meta,) = load_incidents_csv(str(tmp_path / "i.csv"))
    assert (meta.incident_id, meta.start_s, meta.end_s, meta.services, meta.slas) == (
        incident.incident_id, incident.start_s, incident.end_s, incident.services, incident.slas)
    two = tmp_path / "two.csv"
    two.write_text("timestamp,value\n2026-11-02T14:00:00Z,1.5\n1793628060,2\n")
    (one,) = load_metrics_csv(str(two), default_service="api")
    assert one.key == ("api", "value") and list(one.values) == [1.5, 2.0]
    assert list(one.timestamps_s) == [1793628000.0, 1793628060.0]


@pytest.mark.parametrize("text, where", [
    ("timestamp,service,metric,value\n2026-11-02T14:00:00Z,a,m,1\n2026-11-02T14:01:00Z,a,m,fast\n",
     "line 3, column 'value': 'fast' is not a finite number"),
    ("timestamp,service,metric,value\nyesterday,a,m,1\n",
     "line 2, column 'timestamp': 'yesterday' must be an ISO 8601 time"),
    ("timestamp,service,metric,value\n2026-11-02T14:00:00Z,,m,1\n", "line 2, column 'service': empty"),
    ("timestamp,service,metric,value\n2026-11-02T14:00:00Z,a,m\n", "line 2: 3 columns, the header has 4"),
    ("time,val\n1,2\n", "line 1: header 'time,val' has neither"),
    ("", "line 1: empty file"),
    ("timestamp,value\n", "no data rows"),
])
def test_bad_metric_files_name_the_file_line_and_column(tmp_path, text, where):
    path = tmp_path / "actual_metrics.csv"
    path.write_text(text)
    with pytest.raises(ReplayInputError) as err:
        load_metrics_csv(str(path))
    assert str(err.value).startswith(f"{path}: ") and where in str(err.value)


@pytest.mark.parametrize("row, where", [
    ("INC-1,2026-11-02T14:00:00Z,2026-11-02T13:00:00Z,a,", "line 2, column 'end'"),
    ("INC-1,soon,2026-11-02T13:00:00Z,a,", "line 2, column 'start'"),
    ("INC-1,2026-11-02T14:00:00Z,2026-11-02T15:00:00Z,,", "line 2, column 'services': empty"),
    ("INC-1,2026-11-02T14:00:00Z,2026-11-02T15:00:00Z,a,a:lat<=fast", "line 2, column 'expected_slas': SLA"),
])
def test_bad_metadata_names_the_line_and_column(tmp_path, row, where):
    path = tmp_path / "incident_metadata.csv"
    path.write_text("incident_id,start,end,services,expected_slas\n" + row + "\n")
    with pytest.raises(ReplayInputError) as err:
        load_incidents_csv(str(path))
    assert where in str(err.value) and str(path) in str(err.value)


def test_sla_syntax():
    assert parse_slas("checkout:latency_p95_ms<=250; pods>=4") == [
        SLA("checkout", "latency_p95_ms", "<=", 250.0), SLA(None, "pods", ">=", 4.0)]
    with pytest.raises(ValueError, match="service:metric<=number"):
        parse_slas("latency is fine")


# -- narrative and plots ---------------------------------------------------------------------------


def test_narrative_tells_expected_against_actual_with_the_replays_numbers(sample):
    result = sample[3]
    facts = replay_facts(result)
    text = write_narrative(facts)
    assert text == write_narrative(replay_facts(result))  # deterministic
    cause, nxt = facts["cascade"][0], facts["cascade"][1]
    assert (cause["expected_at_peak"], cause["actual_at_peak"], cause["stayed_flat"]) == (6, 2, True)
    minutes = round(nxt["lag_s"] / 60)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"][minutes]
    assert (f"At {cause['start_hhmm']} inventory should have had ~6 pods; it stayed at 2, and {words} minute"
            f"{'s' if minutes != 1 else ''} later checkout's latency_p95_ms rose {nxt['peak_ratio']:g}x") in text
    for b in facts["sla_breaches"]:
        assert f"`{b['sla']}` broken {b['start_hhmm']}–{b['end_hhmm']} ({b['duration_min']:g} min)" in text
    assert "## Actionable insights" in text and "check the autoscaler" in text
    kinds = [i["kind"] for i in facts["insights"]]
    assert kinds[:3] == ["start_here", "capacity_shortfall", "downstream_impact"]
    # every HH:MM in the text is a time of the replay
    times = set(re.findall(r"\b\d\d:\d\d\b", text))
    replay_times = {t for t in re.findall(r"\d\d:\d\d", str(facts))}
    assert times <= replay_times


def test_narrative_of_a_quiet_replay_says_so(sample):
    facts = replay_facts(sample[3])
    quiet = {**facts, "cascade": [], "zones": [], "load_deviations": [], "sla_breaches": [], "insights": [],
             "candidate_cause": None}
    text = write_narrative(quiet)
    assert "within normal behaviour" in text and "held throughout the replay" in text
    assert "Nothing to act on" in text


def test_plots_are_pngs(sample, tmp_path):
    from aiops.replay.plots import metric_png, timeline_png
    from aiops.replay.report import write_outputs
    result = sample[3]
    png = timeline_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert metric_png(result, result.metric("inventory", "pods"))[:4] == b"\x89PNG"
    paths = write_outputs(result, str(tmp_path / "out"))
    assert len(paths["metrics"]) == len(result.metrics) == 6
    assert (tmp_path / "out" / "replay_inventory_pods.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "replay.md").read_text().startswith("# Resilience replay: INC-REPLAY-1")


def test_model_config_is_validated():
    with pytest.raises(ValueError, match="coverage must be within"):
        ModelConfig(coverage=1.5)
    with pytest.raises(ValueError, match="exit must be within"):
        ZoneConfig(enter=1.0, exit=2.0)
    with pytest.raises(ValueError, match="no metric series"):
        run_replay(IncidentMeta("x", 0.0, 60.0, ["a"]), [])


def test_methods_are_a_registry_and_the_peer_runs_on_the_same_rows(sample):
    from aiops.replay.model import FORECASTERS
    with pytest.raises(ValueError, match="unknown replay method 'arima'; valid: gradient_boosting, seasonal_quantile"):
        ModelConfig(method="arima")
    series, incident, truth, ours = sample
    peer = run_replay(incident, series, ReplayConfig(model=ModelConfig(method="seasonal_quantile")))
    assert set(FORECASTERS) == {"gradient_boosting", "seasonal_quantile"} and peer.method == "seasonal_quantile"
    for m in peer.metrics:
        mine = ours.metric(*m.key).forecast.backtest
        assert m.forecast.backtest.points == mine.points  # the same held-out rows
        assert m.forecast.regressors == []
    assert _zones_of(peer, *truth.cause) and [c.service for c in peer.cascade] == truth.cascade
    lat = ours.metric("inventory", "latency_p95_ms").forecast.backtest
    assert lat.mape_ratio < peer.metric("inventory", "latency_p95_ms").forecast.backtest.mape_ratio


def test_two_column_files_replay_as_one_metric(tmp_path, sample):
    from aiops.replay.report import replay_from_csv
    series, incident, truth, _ = sample
    latency = next(s for s in series if s.key == ("checkout", "latency_p95_ms"))
    cut = incident.start_s - 1800
    for name, keep in (("baseline.csv", latency.timestamps_s < cut), ("actual.csv", latency.timestamps_s >= cut)):
        rows = [f"{int(t)},{v}" for t, v in zip(latency.timestamps_s[keep], latency.values[keep])]
        (tmp_path / name).write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    meta = IncidentMeta("INC-2", incident.start_s, incident.end_s, ["checkout"],
                        [SLA(None, "value", "<=", 250.0)])
    write_incidents_csv(str(tmp_path / "meta.csv"), [meta])
    result = replay_from_csv(str(tmp_path / "meta.csv"), str(tmp_path / "baseline.csv"), str(tmp_path / "actual.csv"))
    assert [m.key for m in result.metrics] == [("checkout", "value")]
    (zone,) = [z for z in result.zones if z.direction == "above"]
    assert truth.stall_start_s <= zone.start_s <= truth.stall_start_s + 600 and zone.peak_ratio > 3
    assert result.breaches and result.breaches[0].sla == "checkout:value<=250"
    with pytest.raises(ReplayInputError, match="no incident 'INC-9'"):
        replay_from_csv(str(tmp_path / "meta.csv"), str(tmp_path / "baseline.csv"), str(tmp_path / "actual.csv"),
                        "INC-9")
