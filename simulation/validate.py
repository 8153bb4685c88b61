"""Run every registered scenario in a fresh in-process demo and score each outcome."""
from __future__ import annotations

from simulation.local import LocalDemo
from simulation.runner import HttpTarget, Run, SimulationRecord, new_simulation_id
from simulation.scenarios import SCENARIOS, get_scenario


def validate_scenario(scenario_id: str, seed: int = 0, progress=None, config: dict | None = None) -> SimulationRecord:
    """One scenario, start to end, on its own demo app served on loopback."""
    scenario = get_scenario(scenario_id)
    with LocalDemo(config={"DEMO_LATENCY_SCALE": 0.2, **(config or {})}) as demo:
        record = SimulationRecord(new_simulation_id(), scenario_id, "demo", True, seed)
        Run(scenario, HttpTarget(demo.url), record, progress=progress).execute()
    return record


def validate_all(seed: int = 0, scenario_ids: list[str] | None = None, progress=None) -> list[SimulationRecord]:
    """Every scenario (or those named), in registration order."""
    return [validate_scenario(sid, seed, (lambda s, st, d, sid=sid: progress(sid, s, st, d)) if progress else None)
            for sid in (scenario_ids or list(SCENARIOS))]
