"""The simulator's REST API under ``/api/v1/simulator``: a thin shell over the registry and the runner.

Registered by ``Chaos.init_app`` (the simulator is a trainer's tool, next to
the chaos endpoints it drives; ``aiops`` never imports ``simulation``). It
needs ``AIOps`` on the same app (checked per request: 503 otherwise). With
``AIOPS_API_KEY`` set, every call needs ``X-API-Key``, reads included (they
expose what is being injected). Errors are ``{"error", "detail"}``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from flask import current_app, request

from llm.features import write_feature
from simulation.runner import EXECUTION_MODES, AppTarget, Run, SimulationRecord, new_simulation_id
from simulation.scenarios import ScenarioError, UnknownScenario, get_scenario, list_scenarios
from simulation.writers import narrative_facts, narrative_text
from telemetry.config import ConfigKey, as_bool, as_number, as_optional_str
from telemetry.errors import PayloadError
from telemetry.web import ApiBlueprint, json_body, json_error, json_response

EXTENSION_KEY = "simulator"
PREFIX = "/api/v1/simulator"
SIMULATOR_CONFIG = (
    ConfigKey("AIOPS_SIMULATOR_ENABLED", True, as_bool, "bool",
              "Register `/api/v1/simulator/*` (with the chaos endpoints); `False`: no simulator routes."),
    ConfigKey("AIOPS_SIMULATOR_TRAFFIC_URL", None, as_optional_str, "URL",
              "Where request-level scenarios send real traffic; default: the address the start request came in on."),
    ConfigKey("AIOPS_SIMULATOR_KEEP", 100, as_number(1, 10_000, integer=True), "simulations",
              "Finished simulations kept in memory for `GET .../simulations/<id>` (oldest dropped first)."),
)
ENDPOINTS = [
    "GET  /api/v1/simulator/scenarios?severity=&difficulty=&tag=",
    "GET  /api/v1/simulator/scenarios/<id>",
    "POST /api/v1/simulator/scenarios/<id>/start",
    "GET  /api/v1/simulator/simulations",
    "GET  /api/v1/simulator/simulations/<sim_id>",
    "GET  /api/v1/simulator/simulations/<sim_id>/narrative",
    "POST /api/v1/simulator/simulations/<sim_id>/stop",
]
_START_FIELDS = ("auto_analyze", "execution_mode", "seed")


@dataclass
class SimulatorState:
    api_key: str | None
    traffic_url: str | None
    keep: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    simulations: "OrderedDict[str, SimulationRecord]" = field(default_factory=OrderedDict)
    cancels: dict = field(default_factory=dict)
    threads: dict = field(default_factory=dict)

    def add(self, record: SimulationRecord, cancel: threading.Event) -> None:
        with self.lock:
            self.simulations[record.simulation_id] = record
            self.cancels[record.simulation_id] = cancel
            while len(self.simulations) > self.keep:
                old_id, old = next(iter(self.simulations.items()))
                if old.status in ("pending", "running"):
                    break
                self.simulations.pop(old_id)
                self.cancels.pop(old_id, None)
                self.threads.pop(old_id, None)


def register_simulator(app, settings: dict) -> None:
    """Called by ``Chaos.init_app`` with its settings (``SIMULATOR_CONFIG`` included)."""
    if not settings["AIOPS_SIMULATOR_ENABLED"]:
        return
    app.extensions[EXTENSION_KEY] = SimulatorState(settings["AIOPS_API_KEY"], settings["AIOPS_SIMULATOR_TRAFFIC_URL"],
                                                   settings["AIOPS_SIMULATOR_KEEP"])
    app.register_blueprint(make_blueprint())


def _state() -> SimulatorState:
    return current_app.extensions[EXTENSION_KEY]


def _unknown_scenario(exc: UnknownScenario):
    return json_error(404, f"scenario {exc.scenario_id} not found", "valid scenarios: " + ", ".join(exc.valid),
                      scenarios=exc.valid)


def _unknown_simulation(sim_id: str):
    return json_error(404, f"simulation {sim_id} not found",
                      "list simulation ids with GET /api/v1/simulator/simulations (finished ones are kept up to "
                      "AIOPS_SIMULATOR_KEEP, in memory, until the app restarts)")


def make_blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("simulator", __name__, url_prefix=PREFIX, api_key=lambda: _state().api_key, key_for_reads=True)

    @bp.before_request
    def needs_analysis():
        if current_app.extensions.get("aiops") is None:
            return json_error(503, "analysis not available",
                              "the simulator needs AIOps(app) on this app (and AIOPS_ENABLED true)")
        return None

    @bp.get("/scenarios")
    def scenarios():
        try:
            found = list_scenarios(request.args.get("severity") or None, request.args.get("difficulty") or None,
                                   request.args.get("tag") or None)
        except ScenarioError as exc:
            raise PayloadError(None, str(exc), error="invalid filter") from None
        return json_response([s.summary() for s in found])

    @bp.get("/scenarios/<scenario_id>")
    def scenario(scenario_id: str):
        try:
            return json_response(get_scenario(scenario_id).to_dict())
        except UnknownScenario as exc:
            return _unknown_scenario(exc)

    @bp.post("/scenarios/<scenario_id>/start")
    def start(scenario_id: str):
        try:
            scenario = get_scenario(scenario_id)
        except UnknownScenario as exc:
            return _unknown_scenario(exc)
        what = 'a JSON object such as {"auto_analyze": true, "execution_mode": "demo"}'
        body = json_body(required=False, what=what)
        if not isinstance(body, dict):
            raise PayloadError("body", f"the body must be {what}", error="invalid JSON body")
        unknown = sorted(set(body) - set(_START_FIELDS))
        if unknown:
            raise PayloadError(unknown[0], "valid fields: " + ", ".join(_START_FIELDS),
                               error=f"unknown field(s) {', '.join(unknown)}")
        auto_analyze = body.get("auto_analyze", True)
        mode = body.get("execution_mode", "demo")
        seed = body.get("seed", 0)
        if not isinstance(auto_analyze, bool):
            raise PayloadError("auto_analyze", f"auto_analyze must be true or false, got {auto_analyze!r}")
        if mode not in EXECUTION_MODES:
            raise PayloadError("execution_mode",
                               f"execution_mode must be one of {', '.join(EXECUTION_MODES)} (demo runs to the end "
                               "before answering; background answers 202 at once; realtime answers 202 and pushes "
                               f"each incident point when its time comes), got {mode!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
            raise PayloadError("seed", f"seed must be an integer within [0, 2^31), got {seed!r}")
        state = _state()
        app = current_app._get_current_object()
        target = AppTarget(app, state.traffic_url or request.host_url, state.api_key)
        record = SimulationRecord(new_simulation_id(), scenario.scenario_id, mode, auto_analyze, seed)
        cancel = threading.Event()
        state.add(record, cancel)
        run = Run(scenario, target, record, cancel=cancel)
        if mode == "demo":
            run.execute()
            return json_response(record.summary(), 200)
        thread = threading.Thread(target=run.execute, name=f"simulation-{record.simulation_id}", daemon=True)
        state.threads[record.simulation_id] = thread
        record.status = "running"
        thread.start()
        return json_response(record.summary(), 202,
                             headers={"Location": f"{PREFIX}/simulations/{record.simulation_id}"})

    @bp.get("/simulations")
    def simulations():
        with _state().lock:
            records = list(_state().simulations.values())
        return json_response([r.summary() for r in reversed(records)])

    @bp.get("/simulations/<sim_id>")
    def simulation(sim_id: str):
        record = _state().simulations.get(sim_id)
        if record is None:
            return _unknown_simulation(sim_id)
        return json_response(record.to_dict())

    @bp.get("/simulations/<sim_id>/narrative")
    def narrative(sim_id: str):
        record = _state().simulations.get(sim_id)
        if record is None:
            return _unknown_simulation(sim_id)
        facts = narrative_facts(get_scenario(record.scenario_id).to_dict(), record.to_dict())
        doc = write_feature(current_app.extensions["aiops"].llm, "simulation_narrative", facts, narrative_text)
        return json_response({"simulation_id": sim_id, "source": doc.source, "model": doc.model,
                              "latency_ms": round(doc.latency_ms, 2), "usage": doc.usage,
                              "fallback_reason": doc.fallback_reason, "text": doc.text, "facts": facts})

    @bp.post("/simulations/<sim_id>/stop")
    def stop(sim_id: str):
        state = _state()
        record = state.simulations.get(sim_id)
        if record is None:
            return _unknown_simulation(sim_id)
        was_running = record.status in ("pending", "running")
        if was_running:
            state.cancels[sim_id].set()
            thread = state.threads.get(sim_id)
            if thread is not None:
                thread.join(30.0)
        return json_response({**record.summary(), "stopped": was_running,
                              "detail": "stopped; chaos faults it set were cleared" if was_running
                              else f"already {record.status}; nothing to stop"})

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def not_found(unknown: str):
        return json_error(404, f"no such endpoint {PREFIX}/{unknown}", "valid endpoints: " + "; ".join(ENDPOINTS))

    return bp
