"""Seeded metric generators: a healthy baseline with noise, then each phase's pattern.

``generate(scenario, start_s, seed)`` returns every series of a scenario
together with its ground truth (when each metric's incident starts, its
pattern and peak), like ruptures' ``pw_constant`` returns its breakpoints,
so tests and the validation can score what the detectors found.

Pattern shapes over a phase of fraction ``f`` in [0, 1] (level ``b`` at the
phase start, target ``v``):

- ``spike``: up to ``v`` within the first 10 % of the phase, then held;
- ``ramp``: linear from ``b`` to ``v``;
- ``step``: ``v`` from the phase's first point;
- ``drop``: ``v`` (< ``b``) from the phase's first point;
- ``oscillation``: ``b + (v - b) * (1 - cos(2π·cycles·f)) / 2``.

Noise is Gaussian with the pattern's ``sigma``, clamped to its bounds and
rounded for counts. Pure and deterministic for a given seed.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field

from simulation.scenarios import PATTERN_TYPES, IncidentScenario, MetricPattern


@dataclass(frozen=True)
class SeriesTruth:
    """What really happened to one metric: ``onset_s`` (epoch s) of its first
    anomalous phase, ``end_s`` of the timeline, the phases it moves in, the
    pattern of the first, the healthy ``baseline`` and ``sigma``, and the
    ``peak`` (the farthest value from the baseline the pattern targets)."""

    service: str
    name: str
    unit: str
    onset_s: float
    end_s: float
    phases: tuple[str, ...]
    pattern: str
    baseline: float
    sigma: float
    peak: float
    direction: str

    def to_dict(self) -> dict:
        return {"service": self.service, "name": self.name, "unit": self.unit, "onset_s": self.onset_s,
                "end_s": self.end_s, "phases": list(self.phases), "pattern": self.pattern,
                "baseline": self.baseline, "sigma": round(self.sigma, 6), "peak": self.peak,
                "direction": self.direction}


@dataclass
class GeneratedScenario:
    """Every series of a scenario: ``points`` as ingestion JSON (time order),
    ``truth`` per metric name, the phase boundaries, and the seed used."""

    scenario_id: str
    seed: int
    start_s: float
    onset_s: float
    end_s: float
    points: list[dict] = field(default_factory=list)
    truth: dict[str, SeriesTruth] = field(default_factory=dict)
    phase_starts: dict[str, float] = field(default_factory=dict)

    def series(self, name: str) -> list[tuple[float, float]]:
        return [(p["timestamp"], p["value"]) for p in self.points if p["name"] == name]


def pattern_level(pattern: str, start_level: float, target: float, fraction: float, cycles: float = 3.0) -> float:
    """The noiseless level ``fraction`` (0..1) of the way through a phase."""
    if pattern not in PATTERN_TYPES:
        raise ValueError(f"unknown pattern {pattern!r}; valid patterns: {', '.join(PATTERN_TYPES)}")
    f = min(max(fraction, 0.0), 1.0)
    if pattern == "ramp":
        return start_level + (target - start_level) * f
    if pattern == "spike":
        return start_level + (target - start_level) * min(1.0, f / 0.1)
    if pattern == "oscillation":
        return start_level + (target - start_level) * (1.0 - math.cos(2.0 * math.pi * cycles * f)) / 2.0
    return target  # step, drop


def _noisy(m: MetricPattern, level: float, rng: random.Random) -> float:
    value = level + (rng.gauss(0.0, m.sigma) if m.sigma > 0 else 0.0)
    if m.minimum is not None:
        value = max(m.minimum, value)
    if m.maximum is not None:
        value = min(m.maximum, value)
    return float(round(value)) if m.integer else float(value)


def seed_for(scenario_id: str, seed: int) -> int:
    """A per-scenario seed, stable across runs and Python versions."""
    return zlib.crc32(f"{scenario_id}:{seed}".encode()) & 0x7FFFFFFF


def generate(scenario: IncidentScenario, end_s: float, seed: int = 0) -> GeneratedScenario:
    """The scenario's series on a timeline that ends at ``end_s`` (epoch s):
    ``baseline_s`` healthy seconds, then each phase in order, one point per
    ``step_s`` per metric."""
    rng = random.Random(seed_for(scenario.scenario_id, seed))
    step = scenario.step_s
    total = scenario.baseline_s + scenario.duration_seconds
    start_s = end_s - total
    onset_s = start_s + scenario.baseline_s
    phase_bounds = []
    t = onset_s
    for phase in scenario.phases:
        phase_bounds.append((phase, t, t + phase.duration_s))
        t += phase.duration_s
    names: list[str] = []
    first: dict[str, MetricPattern] = {}
    for m in scenario.metrics:
        if m.name not in first:
            names.append(m.name)
            first[m.name] = m
    out = GeneratedScenario(scenario.scenario_id, seed, start_s, onset_s, end_s,
                            phase_starts={p.name: lo for p, lo, _ in phase_bounds})
    for name in names:
        m0 = first[name]
        moving = [(p, lo, hi, next(m for m in p.metrics if m.name == name)) for p, lo, hi in phase_bounds
                  if any(m.name == name for m in p.metrics)]
        peak_pattern = max((mv[3] for mv in moving), key=lambda m: abs(m.value - m0.baseline))
        out.truth[name] = SeriesTruth(
            scenario.service, name, m0.unit, moving[0][1], end_s, tuple(p.name for p, *_ in moving), m0.pattern,
            m0.baseline, m0.sigma, peak_pattern.value, "up" if peak_pattern.value >= m0.baseline else "down")
    n_points = int(round(total / step))
    for i in range(n_points + 1):
        ts = start_s + i * step
        for name in names:
            m0 = first[name]
            level, pattern = m0.baseline, m0
            held = None
            for phase, lo, hi in phase_bounds:
                declared = next((m for m in phase.metrics if m.name == name), None)
                if ts < lo:
                    break
                if declared is not None:
                    pattern = declared
                    start_level = declared.baseline
                    level = pattern_level(declared.pattern, start_level, declared.value,
                                          (ts - lo) / (hi - lo), declared.cycles)
                    held = pattern_level(declared.pattern, start_level, declared.value, 1.0, declared.cycles)
                elif held is not None:
                    level = held
            out.points.append({"timestamp": round(ts, 3), "service": scenario.service, "name": name,
                               "value": _noisy(pattern, level, rng),
                               "labels": {"scenario": scenario.scenario_id, "unit": pattern.unit}})
    return out
