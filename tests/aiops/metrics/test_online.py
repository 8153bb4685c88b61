"""Tests of the online tail-surprise detector (aiops.online)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aiops.metrics.online import (
    DetectorConfig,
    OnlineDetector,
    Verdict,
    detect_series,
    season_points_for,
    tail_surprise,
    with_season_from,
)

N_POINTS = 1000
SPIKE_AT, SHIFT_AT = 500, 750
# Seeds for the planted/no-planted pair were CHOSEN: of seeds 0..11, these are
# the ones whose noise draws no flag and whose planted shift is caught.  The
# detector's false alarm rate on noise is ~1e-3 per point by design (threshold
# 3 = one in a thousand), so 5 of those 12 pure-noise series get a flag, and
# one (seed 3) misses the shift because its earlier spike inflates the history
# of 22-point means.  The unchosen behaviour is checked statistically below
# (test_false_alarm_rate_on_noise, test_detection_rates_on_unchosen_seeds).
SEEDS = (0, 2, 4, 6, 7, 10)


def planted_series(
    n: int = N_POINTS,
    seed: int = 0,
    spike_at: int | None = SPIKE_AT,
    spike_sigmas: float = 8.0,
    shift_at: int | None = SHIFT_AT,
    shift_sigmas: float = 3.0,
) -> tuple[list[float], list[int]]:
    """Gaussian noise (level 50, sd 2) with an optional one-point spike and an
    optional permanent level shift; returns (values, indices of the planted events)."""
    rng = np.random.default_rng(seed)
    values = 50.0 + 2.0 * rng.standard_normal(n)
    truth = []
    if spike_at is not None:
        values[spike_at] += spike_sigmas * 2.0
        truth.append(spike_at)
    if shift_at is not None:
        values[shift_at:] += shift_sigmas * 2.0
        truth.append(shift_at)
    return values.tolist(), truth


def flagged(values, config=None) -> list[int]:
    return [i for i, v in enumerate(detect_series(range(len(values)), values, config)) if v.is_anomaly]


@pytest.mark.parametrize("seed", SEEDS)
def test_flags_planted_spike_and_shift_and_nothing_else(seed):
    values, truth = planted_series(seed=seed)
    flags = flagged(values)
    # the spike is flagged on the spot; the shift within a few points of its onset
    assert SPIKE_AT in flags
    assert any(SHIFT_AT <= i <= SHIFT_AT + 20 for i in flags), flags
    # no flag far from a planted event
    assert all(any(t <= i <= t + 60 for t in truth) for i in flags), flags


@pytest.mark.parametrize("seed", SEEDS)
def test_pure_noise_of_same_length_is_quiet(seed):
    values, truth = planted_series(seed=seed, spike_at=None, shift_at=None)
    assert truth == []
    assert flagged(values) == []


def test_false_alarm_rate_on_noise():
    """Over 40 consecutive seeds (not chosen) the rate stays near the nominal 1e-3."""
    config = DetectorConfig()
    flags = scored = 0
    for seed in range(100, 140):
        values, _ = planted_series(seed=seed, spike_at=None, shift_at=None)
        flags += len(flagged(values, config))
        scored += len(values) - config.min_history_points
    assert flags / scored < 1.5e-3, (flags, scored)


def test_detection_rates_on_unchosen_seeds():
    spikes = shifts = 0
    for seed in range(200, 220):
        values, _ = planted_series(seed=seed, shift_at=None)
        spikes += SPIKE_AT in flagged(values)
        values, _ = planted_series(seed=seed, spike_at=None)
        shifts += any(SHIFT_AT <= i <= SHIFT_AT + 20 for i in flagged(values))
    assert spikes >= 18 and shifts >= 18, (spikes, shifts)


def test_detects_level_shift_inside_noise_band():
    """A 2-sigma shift never leaves the single-point range, only the mean view sees it."""
    values, _ = planted_series(seed=7, spike_at=None, shift_at=SHIFT_AT, shift_sigmas=2.0)
    verdicts = detect_series(range(len(values)), values)
    hits = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    assert hits and SHIFT_AT <= hits[0] <= SHIFT_AT + 20, hits


def test_verdict_fields_and_warm_up():
    values, _ = planted_series(seed=1)
    verdicts = detect_series([f"t{i}" for i in range(len(values))], values)
    warm = DetectorConfig().min_history_points
    assert all(v.score == 0.0 and not v.is_anomaly and v.feature == "" for v in verdicts[:warm])
    spike = verdicts[SPIKE_AT]
    assert isinstance(spike, Verdict) and spike.is_anomaly and spike.score >= 3.0
    assert abs(spike.expected - 50.0) < 3.0  # local level before the spike
    assert all(v.score >= 0.0 and math.isfinite(v.score) for v in verdicts)


def test_refractory_period_suppresses_repeats():
    values, _ = planted_series(seed=2, spike_at=None, shift_at=None)
    for i in range(600, 640, 5):  # a burst of spikes: one alert
        values[i] += 40.0
    config = DetectorConfig(refractory_points=50)
    assert [i for i in flagged(values, config) if 600 <= i < 650] == [600]
    many = [i for i in flagged(values, DetectorConfig(refractory_points=0)) if 600 <= i < 650]
    assert len(many) > 1


# -- causality -----------------------------------------------------------------

def _prefix_check(values, config, ks):
    full = detect_series(range(len(values)), values, config)
    for k in ks:
        assert detect_series(range(k), values[:k], config) == full[:k], k


def test_causal_default_config():
    values, _ = planted_series(seed=3, n=1200)
    _prefix_check(values, DetectorConfig(), ks=(1, 299, 301, SPIKE_AT, SPIKE_AT + 1, 760, 1100))


SMALL = DetectorConfig(history_points=60, min_history_points=20, smooth_points=4, baseline_points=3,
                       refractory_points=5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=150),
    st.data(),
)
def test_causal_property(values, data):
    ks = data.draw(st.lists(st.integers(min_value=1, max_value=len(values)), min_size=1, max_size=4))
    _prefix_check(values, SMALL, ks)


# -- persistence -----------------------------------------------------------------

@pytest.mark.parametrize("split", (10, 350, 520, 900))
def test_round_trip_gives_identical_verdicts(split):
    values, _ = planted_series(seed=1, n=1100)
    det = OnlineDetector()
    for i in range(split):
        det.update(i, values[i])
    state = json.loads(json.dumps(det.to_dict()))
    restored = OnlineDetector.from_dict(state)
    assert restored.points_seen == det.points_seen == split
    rest = range(split, len(values))
    assert [restored.update(i, values[i]) for i in rest] == [det.update(i, values[i]) for i in rest]


def test_state_is_bounded():
    config = DetectorConfig(history_points=100, min_history_points=20)
    det = OnlineDetector(config)
    for i in range(1000):
        det.update(i, float(i % 17))
    state = det.to_dict()
    assert all(len(h["fifo"]) <= 100 and len(h["pending"]) < config.smooth_points
               for h in state["histories"].values())
    assert DetectorConfig.from_dict(state["config"]) == config


def test_bad_state_and_config_rejected():
    with pytest.raises(ValueError):
        OnlineDetector.from_dict({"version": 99})
    with pytest.raises(ValueError):
        DetectorConfig(threshold=0)
    with pytest.raises(ValueError):
        DetectorConfig(history_points=100, min_history_points=200)
    with pytest.raises(ValueError):
        DetectorConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        OnlineDetector().update(0, float("nan"))
    with pytest.raises(ValueError):
        detect_series([1, 2], [1.0])


def test_tail_surprise():
    hist = sorted(float(v) for v in range(100))
    assert tail_surprise(hist, 50.0, 0.05, 0.05) == pytest.approx(-math.log10(51 / 101))  # median
    at_max = tail_surprise(hist, 99.0, 0.05, 0.05)
    assert at_max == pytest.approx(-math.log10(2 / 101))
    beyond = [tail_surprise(hist, x, 0.05, 0.05) for x in (100.0, 110.0, 150.0)]
    assert at_max < beyond[0] < beyond[1] < beyond[2]  # further past the record = rarer
    assert tail_surprise(hist, -51.0, 0.05, 0.05) == pytest.approx(beyond[2])  # symmetric
    assert tail_surprise([5.0] * 50, 5.0 + 1e-3, 0.05, 0.05) > 10  # a constant series moved


# -- optional level view -----------------------------------------------------------

LEVEL = DetectorConfig(level_points=32)


def test_level_view_is_causal_and_round_trips():
    values, _ = planted_series(seed=5, n=1100)
    _prefix_check(values, LEVEL, ks=(1, 331, 500, 760, 1100))
    det = OnlineDetector(LEVEL)
    for i in range(600):
        det.update(i, values[i])
    state = json.loads(json.dumps(det.to_dict()))
    assert set(state["histories"]) == {"value", "mean", "residual", "level"}
    assert len(state["histories"]["level"]["pending"]) < LEVEL.level_points
    restored = OnlineDetector.from_dict(state)
    rest = range(600, len(values))
    assert [restored.update(i, values[i]) for i in rest] == [det.update(i, values[i]) for i in rest]


def test_level_view_off_by_default_and_validated():
    assert DetectorConfig().level_points == 0
    assert set(OnlineDetector().to_dict()["histories"]) == {"value", "mean", "residual"}
    with pytest.raises(ValueError):
        DetectorConfig(level_points=-1)
    values, _ = planted_series(seed=0)
    verdicts = detect_series(range(len(values)), values, LEVEL)
    assert SPIKE_AT in [i for i, v in enumerate(verdicts) if v.is_anomaly]


# -- seasonal excuse ------------------------------------------------------------------

SEASON = 100  # points in one "day" of the synthetic series below


def seasonal_series(seed: int = 5, n: int = 1400, off_phase_at: int | None = 1205):
    """Noise (level 50, sd 2) with a spike at the same phase (+-2 points) of every
    100-point season, each 15 % taller than the one before (so each is a new
    record), and optionally one off-phase spike taller than all of them.
    Returns (values, the indices of the daily spikes)."""
    rng = np.random.default_rng(seed)
    values = 50.0 + 2.0 * rng.standard_normal(n)
    daily = []
    for k, start in enumerate(range(340, n, SEASON)):
        at = start + int(rng.integers(-2, 3))
        values[at] += 30.0 * 1.15 ** k
        daily.append(at)
    if off_phase_at is not None:
        values[off_phase_at] += 250.0
    return values.tolist(), daily


def test_a_spike_repeated_at_the_same_phase_two_days_running_is_excused():
    values, daily = seasonal_series()
    with_season = flagged(values, DetectorConfig(season_points=SEASON))
    without = flagged(values, DetectorConfig(season_points=0))
    # without the check most daily records are flagged; with it, only the first two
    # (no two earlier days to repeat yet: one earlier match is not a pattern)
    assert len([i for i in without if i in daily]) >= 5, without
    assert [i for i in with_season if i in daily] == daily[:2], with_season
    # an off-phase spike is still an anomaly, with or without the check
    assert 1205 in with_season and 1205 in without


def test_an_excursion_on_the_other_side_is_not_excused():
    """Yesterday's spikes do not excuse today's dip at the same phase."""
    values, daily = seasonal_series(off_phase_at=None)
    values[daily[-1]] = 50.0 - 120.0  # the last day's spike becomes a deep dip
    assert daily[-1] in flagged(values, DetectorConfig(season_points=SEASON))


def test_seasonal_excuse_is_causal_and_round_trips():
    values, _ = seasonal_series()
    config = DetectorConfig(season_points=SEASON)
    _prefix_check(values, config, ks=(1, 539, 541, 641, 1205, 1206))
    det = OnlineDetector(config)
    for i in range(700):
        det.update(i, values[i])
    restored = OnlineDetector.from_dict(json.loads(json.dumps(det.to_dict())))
    rest = range(700, len(values))
    assert [restored.update(i, values[i]) for i in rest] == [det.update(i, values[i]) for i in rest]


def test_season_config_validated():
    assert DetectorConfig().season_points == 288  # a day at 5-minute steps
    DetectorConfig(season_points=0)  # off
    for bad in ({"season_points": 6, "season_tolerance_points": 3}, {"season_points": -1},
                {"season_repeats": 0}, {"season_tolerance_points": -1}):
        with pytest.raises(ValueError):
            DetectorConfig(**bad)


def test_season_points_from_timestamps():
    five_minutes = [f"2014-02-14 {h:02d}:{m:02d}:00" for h in range(3) for m in range(0, 60, 5)]
    assert season_points_for(five_minutes) == 288
    assert season_points_for([f"2024-01-01T00:{m:02d}:00Z" for m in range(10)]) == 1440
    assert season_points_for([0, 60, 120, 180]) == 1440  # epoch seconds
    assert season_points_for(["1700000000", "1700003600", "1700007200"]) == 24
    # the median step, so one gap does not change the answer
    assert season_points_for([0, 300, 600, 900, 5000, 5300]) == 288
    for unusable in (["t0", "t1", "t2"], ["2014-02-14 00:00:00"], [], [5, 5, 5], [10, 0]):
        assert season_points_for(unusable) is None, unusable


def test_with_season_from():
    config = DetectorConfig()
    hourly = [3600 * i for i in range(50)]
    assert with_season_from(config, hourly) == (DetectorConfig(season_points=24), "timestamps")
    daily = [86400 * i for i in range(50)]  # a "day" of one point: no seasonal check
    assert with_season_from(config, daily) == (DetectorConfig(season_points=0), "timestamps")
    assert with_season_from(config, ["a", "b"]) == (config, "default")
