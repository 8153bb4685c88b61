"""Tests of the online tail-surprise detector (aiops.online)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.online import DetectorConfig, OnlineDetector, Verdict, detect_series, tail_surprise

N_POINTS = 1000
SPIKE_AT, SHIFT_AT = 500, 750
# Seeds for the planted/no-planted pair were CHOSEN: of seeds 0..11, these are
# the ones whose noise draws no flag and whose planted shift is caught.  The
# detector's false alarm rate on noise is ~1e-3 per point by design (threshold
# 3 = one in a thousand), so 4 of those 12 pure-noise series get one flag, and
# one (seed 3) misses the shift because its earlier spike inflates the history
# of 16-point means.  The unchosen behaviour is checked statistically below
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
