"""Declarative incident scenarios and their registry.

A scenario is one ``IncidentScenario`` declaration: what service, how bad,
the metric patterns it pushes (per phase), the chaos faults and traffic it
drives at the app for request-level incidents, the context an on-call
engineer would have (recent deployments, dependencies), and what a good
analysis must conclude (``expected_root_cause``, ``expected_action_types``).
``register`` validates a declaration and adds it; ``get_scenario`` raises
``UnknownScenario`` listing the valid ids.

The figures of the five built-in scenarios are the product description's.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

SEVERITIES = ("low", "medium", "high", "critical")
DIFFICULTIES = ("beginner", "intermediate", "advanced")
TAGS = ("resource", "availability", "performance", "capacity", "database", "deployment", "dependency",
        "multi-phase")
PATTERN_TYPES = ("spike", "ramp", "step", "drop", "oscillation")
ROOT_CAUSES = ("memory_leak", "capacity_saturation", "database_performance", "bad_deployment",
               "external_dependency_failure")
ACTION_TYPES = ("restart", "rollback", "scale", "add_index", "open_circuit_breaker")
CHAOS_FAULTS = ("delay", "error", "timeout")
#: Healthy points a scenario pushes before its incident: the metric detector's
#: warm-up (200, ``aiops.metric_detect``) plus margin.
MIN_BASELINE_POINTS = 240
_ID = re.compile(r"[a-z][a-z0-9_]{2,63}\Z")
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]{0,199}\Z")


class ScenarioError(ValueError):
    """A scenario declaration that cannot be registered."""


class UnknownScenario(KeyError):
    """No scenario of that id; the message lists the valid ids."""

    def __init__(self, scenario_id: str, valid: list[str]):
        super().__init__(scenario_id)
        self.scenario_id = scenario_id
        self.valid = valid

    def __str__(self) -> str:
        return f"unknown scenario {self.scenario_id!r}; valid scenarios: {', '.join(self.valid)}"


@dataclass(frozen=True)
class MetricPattern:
    """One pushed metric: it sits at ``baseline`` (with noise) and moves to ``value``.

    ``deviation_sigma``: how many baseline standard deviations ``value`` is
    from ``baseline``; the generator's noise is ``|value - baseline| /
    deviation_sigma`` unless ``noise_sigma`` says otherwise. ``pattern``:
    spike, ramp, step, drop or oscillation. ``unit``: the value's unit
    (also part of the metric name). ``minimum``/``maximum`` clamp the noise
    (a percentage stays in [0, 100]); ``integer`` rounds (counts).
    """

    name: str
    value: float
    baseline: float
    deviation_sigma: float
    pattern: str
    unit: str
    noise_sigma: float | None = None
    minimum: float | None = 0.0
    maximum: float | None = None
    integer: bool = False
    cycles: float = 3.0  #: oscillation only: full periods over the phase

    @property
    def sigma(self) -> float:
        """Noise standard deviation of the baseline, in ``unit``."""
        if self.noise_sigma is not None:
            return self.noise_sigma
        return abs(self.value - self.baseline) / self.deviation_sigma


@dataclass(frozen=True)
class ChaosStep:
    """A fault set through ``POST /simulate/<fault>`` for the scenario's duration."""

    fault: str
    endpoint: str
    duration_ms: float | None = None
    rate: float | None = None
    status: int | None = None

    def params(self) -> dict:
        out = {"endpoint": self.endpoint}
        if self.duration_ms is not None:
            out["duration"] = self.duration_ms
        if self.rate is not None:
            out["rate"] = self.rate
        if self.status is not None:
            out["status"] = self.status
        return out


@dataclass(frozen=True)
class TrafficPlan:
    """Real requests at the demo app: ``warmup_requests`` healthy ones to learn
    baselines, then ``requests`` with the faults applied, ``concurrency`` at a time."""

    method: str
    path: str
    faults: tuple[ChaosStep, ...]
    requests: int = 24
    warmup_requests: int = 40
    concurrency: int = 4


@dataclass(frozen=True)
class Phase:
    """A stretch of the incident: its metric patterns unfold over ``duration_s``."""

    name: str
    duration_s: float
    metrics: tuple[MetricPattern, ...]
    description: str = ""


@dataclass(frozen=True)
class Deployment:
    """A deployment in the scenario's context, ``minutes_before`` the incident's onset."""

    version: str
    minutes_before: float
    change: str


@dataclass(frozen=True)
class Dependency:
    """A dependency of the service; ``external`` for third parties, ``state`` e.g.
    ``circuit_breaker_open``."""

    name: str
    kind: str
    external: bool = False
    state: str = "healthy"


@dataclass(frozen=True)
class IncidentScenario:
    """One incident scenario (see the module docstring)."""

    scenario_id: str
    name: str
    description: str
    service: str
    severity: str
    difficulty: str
    tags: tuple[str, ...]
    phases: tuple[Phase, ...]
    expected_root_cause: str
    expected_action_types: tuple[str, ...]
    deployments: tuple[Deployment, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    traffic: TrafficPlan | None = None
    baseline_s: float = 1800.0  #: seconds of healthy history pushed before the first phase
    step_s: float = 5.0         #: seconds between pushed points
    story: str = ""             #: one paragraph for the narrative mode

    @property
    def duration_seconds(self) -> float:
        return sum(p.duration_s for p in self.phases)

    @property
    def metrics(self) -> tuple[MetricPattern, ...]:
        """Every phase's patterns (a name may recur across phases)."""
        return tuple(m for p in self.phases for m in p.metrics)

    @property
    def request_level(self) -> bool:
        return self.traffic is not None

    def summary(self) -> dict:
        """The list shape of ``GET /api/v1/simulator/scenarios``."""
        return {"id": self.scenario_id, "name": self.name, "description": self.description,
                "service": self.service, "severity": self.severity, "difficulty": self.difficulty,
                "tags": list(self.tags), "duration_seconds": self.duration_seconds,
                "metric_count": len({m.name for m in self.metrics}), "phase_count": len(self.phases),
                "request_level": self.request_level}

    def to_dict(self) -> dict:
        """The detail shape of ``GET /api/v1/simulator/scenarios/<id>``."""
        out = self.summary()
        out.update({
            "phases": [{"name": p.name, "duration_seconds": p.duration_s, "description": p.description,
                        "metrics": [_pattern_dict(m) for m in p.metrics]} for p in self.phases],
            "metrics": [_pattern_dict(m) for m in self.metrics],
            "context": {"recent_deployments": [asdict(d) for d in self.deployments],
                        "dependencies": [asdict(d) for d in self.dependencies]},
            "traffic": None if self.traffic is None else {
                "method": self.traffic.method, "path": self.traffic.path, "requests": self.traffic.requests,
                "warmup_requests": self.traffic.warmup_requests, "concurrency": self.traffic.concurrency,
                "faults": [{"fault": f.fault, **f.params()} for f in self.traffic.faults]},
            "expected_outcome": {"root_cause": self.expected_root_cause,
                                 "action_types": list(self.expected_action_types),
                                 "severity": self.severity},
            "baseline_seconds": self.baseline_s, "step_seconds": self.step_s, "story": self.story,
        })
        return out


def _pattern_dict(m: MetricPattern) -> dict:
    return {"name": m.name, "value": m.value, "baseline": m.baseline, "deviation_sigma": m.deviation_sigma,
            "pattern": m.pattern, "unit": m.unit, "noise_sigma": round(m.sigma, 6)}


def validate(s: IncidentScenario) -> None:
    """Raise ``ScenarioError`` naming the first wrong field and what is valid."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ScenarioError(f"scenario {s.scenario_id!r}: {message}")

    need(isinstance(s.scenario_id, str) and bool(_ID.match(s.scenario_id)),
         "scenario_id must be 3-64 characters of a-z, 0-9 and _, starting with a letter")
    need(bool(s.name.strip()) and bool(s.description.strip()), "name and description must not be empty")
    need(bool(s.service.strip()), "service must not be empty")
    need(s.severity in SEVERITIES, f"severity must be one of {', '.join(SEVERITIES)}, got {s.severity!r}")
    need(s.difficulty in DIFFICULTIES, f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {s.difficulty!r}")
    bad_tags = [t for t in s.tags if t not in TAGS]
    need(not bad_tags, f"unknown tag(s) {bad_tags}; valid tags: {', '.join(TAGS)}")
    need(s.expected_root_cause in ROOT_CAUSES,
         f"expected_root_cause must be one of {', '.join(ROOT_CAUSES)}, got {s.expected_root_cause!r}")
    bad_actions = [a for a in s.expected_action_types if a not in ACTION_TYPES]
    need(bool(s.expected_action_types) and not bad_actions,
         f"expected_action_types must be a non-empty subset of {', '.join(ACTION_TYPES)}, got {bad_actions}")
    need(bool(s.phases), "at least one phase is needed")
    need(s.baseline_s > 0 and s.step_s > 0 and s.baseline_s / s.step_s >= MIN_BASELINE_POINTS,
         f"baseline_s / step_s must give at least {MIN_BASELINE_POINTS} healthy points (the metric detector "
         "warms up on 200)")
    for phase in s.phases:
        need(phase.duration_s >= 2 * s.step_s, f"phase {phase.name!r} must last at least two steps")
        need(bool(phase.metrics), f"phase {phase.name!r} has no metric patterns")
        for m in phase.metrics:
            need(bool(_METRIC.match(m.name)), f"metric name {m.name!r} must match {_METRIC.pattern}")
            need(m.pattern in PATTERN_TYPES,
                 f"metric {m.name!r}: pattern must be one of {', '.join(PATTERN_TYPES)}, got {m.pattern!r}")
            need(m.deviation_sigma > 0, f"metric {m.name!r}: deviation_sigma must be > 0")
            need(m.value != m.baseline or m.pattern == "oscillation",
                 f"metric {m.name!r}: value must differ from baseline")
            need(m.sigma >= 0, f"metric {m.name!r}: noise must be >= 0")
            need(m.pattern != "drop" or m.value < m.baseline, f"metric {m.name!r}: a drop needs value < baseline")
            need(m.pattern not in ("spike", "ramp", "step") or m.value > m.baseline,
                 f"metric {m.name!r}: a {m.pattern} needs value > baseline (use drop for a fall)")
            need(bool(m.unit), f"metric {m.name!r}: unit must not be empty")
    if s.traffic is not None:
        need(s.traffic.method in ("GET", "POST"), "traffic.method must be GET or POST")
        need(s.traffic.path.startswith("/"), "traffic.path must start with /")
        need(1 <= s.traffic.requests <= 1000 and 0 <= s.traffic.warmup_requests <= 1000,
             "traffic.requests must be within [1, 1000] and warmup_requests within [0, 1000]")
        need(1 <= s.traffic.concurrency <= 32, "traffic.concurrency must be within [1, 32]")
        for f in s.traffic.faults:
            need(f.fault in CHAOS_FAULTS, f"chaos fault must be one of {', '.join(CHAOS_FAULTS)}, got {f.fault!r}")


SCENARIOS: dict[str, IncidentScenario] = {}


def register(scenario: IncidentScenario, replace: bool = False) -> IncidentScenario:
    """Validate ``scenario`` and add it; an id already taken needs ``replace=True``."""
    validate(scenario)
    if scenario.scenario_id in SCENARIOS and not replace:
        raise ScenarioError(f"scenario {scenario.scenario_id!r} is already registered (pass replace=True)")
    SCENARIOS[scenario.scenario_id] = scenario
    return scenario


def unregister(scenario_id: str) -> None:
    SCENARIOS.pop(scenario_id, None)


def get_scenario(scenario_id: str) -> IncidentScenario:
    try:
        return SCENARIOS[scenario_id]
    except KeyError:
        raise UnknownScenario(scenario_id, list(SCENARIOS)) from None


def list_scenarios(severity: str | None = None, difficulty: str | None = None,
                   tag: str | None = None) -> list[IncidentScenario]:
    """Registered scenarios in registration order, filtered; a filter outside
    the valid values raises ``ScenarioError`` listing them."""
    for value, valid, what in ((severity, SEVERITIES, "severity"), (difficulty, DIFFICULTIES, "difficulty"),
                               (tag, TAGS, "tag")):
        if value is not None and value not in valid:
            raise ScenarioError(f"{what} must be one of {', '.join(valid)}, got {value!r}")
    return [s for s in SCENARIOS.values()
            if (severity is None or s.severity == severity) and (difficulty is None or s.difficulty == difficulty)
            and (tag is None or tag in s.tags)]


# -- the built-in scenarios (figures from the product description) --------------------

GB = 1024 ** 3

register(IncidentScenario(
    scenario_id="memory_leak_gradual",
    name="Gradual Memory Leak",
    description="A memory leak in the payment service grows the heap until the pods are OOM-killed.",
    service="payment-service", severity="critical", difficulty="beginner", tags=("resource", "availability"),
    phases=(Phase("leak", 300.0, (
        MetricPattern("memory_usage_bytes", 8 * GB, 2 * GB, 5.2, "ramp", "bytes"),
        MetricPattern("heap_allocations", 15e6, 2e6, 4.8, "ramp", "allocations", integer=True),
        MetricPattern("gc_collections", 5000, 500, 4.5, "ramp", "collections", integer=True),
        MetricPattern("cpu_usage_percent", 62.0, 40.0, 3.0, "ramp", "percent", maximum=100.0),
    ), "heap grows after the v2.4.1 deploy; GC works harder and harder"),),
    expected_root_cause="memory_leak", expected_action_types=("restart", "rollback"),
    deployments=(Deployment("v2.4.1", 45, "new in-memory cache for payment tokens"),),
    dependencies=(Dependency("postgres", "database"), Dependency("redis", "cache")),
    story="Forty-five minutes after v2.4.1 shipped a token cache, payment-service's memory starts to climb "
          "and never comes back down.",
))

register(IncidentScenario(
    scenario_id="cpu_spike_traffic_surge",
    name="CPU Spike from a Traffic Surge",
    description="A marketing push quadruples traffic; CPU saturates and requests queue.",
    service="api-gateway", severity="high", difficulty="beginner", tags=("capacity", "performance"),
    phases=(Phase("surge", 240.0, (
        MetricPattern("cpu_usage_percent", 98.5, 45.0, 6.0, "spike", "percent", maximum=100.0),
        MetricPattern("http_requests_per_second", 3500.0, 800.0, 5.5, "spike", "requests/s"),
        MetricPattern("http_p95_latency_seconds", 4.2, 0.3, 5.0, "spike", "seconds"),
    ), "requests arrive faster than the pods can serve them"),),
    expected_root_cause="capacity_saturation", expected_action_types=("scale",),
    dependencies=(Dependency("payment-service", "service"), Dependency("inventory-service", "service")),
    story="At 10:00 a newsletter goes out; within two minutes the gateway serves four times its usual load.",
))

register(IncidentScenario(
    scenario_id="latency_spike_database",
    name="Database Latency Spike",
    description="Inventory queries slow down after a migration dropped an index; checkout latency follows.",
    service="shop", severity="high", difficulty="intermediate", tags=("performance", "database"),
    phases=(Phase("slow queries", 240.0, (
        MetricPattern("http_p95_latency_seconds", 8.5, 0.4, 6.5, "step", "seconds"),
        MetricPattern("db_query_duration_seconds", 7.2, 0.05, 7.0, "step", "seconds"),
        MetricPattern("db_connections_active", 98, 15, 5.5, "ramp", "connections", maximum=100.0, integer=True),
    ), "a full table scan on every stock lookup holds connections"),),
    expected_root_cause="database_performance", expected_action_types=("add_index",),
    deployments=(Deployment("migration-0042", 20, "schema migration: dropped and re-created inventory table"),),
    dependencies=(Dependency("postgres", "database"),),
    traffic=TrafficPlan("POST", "/checkout", (ChaosStep("delay", "/inventory", duration_ms=400.0),)),
    story="A schema migration re-created the inventory table without its index; every stock lookup scans.",
))

register(IncidentScenario(
    scenario_id="pod_crash_loop",
    name="Pod Crash Loop after a Bad Deployment",
    description="A deployment with a bad config crashes pods on start; ready pods and traffic collapse.",
    service="checkout-service", severity="critical", difficulty="intermediate",
    tags=("availability", "deployment"),
    phases=(Phase("crash loop", 300.0, (
        MetricPattern("pod_restarts_total", 45, 0, 8.0, "ramp", "restarts", noise_sigma=0.0, integer=True),
        MetricPattern("pods_ready", 1, 3, 8.0, "drop", "pods", noise_sigma=0.0, integer=True),
        MetricPattern("http_requests_per_second", 50.0, 800.0, 6.0, "drop", "requests/s"),
    ), "every new pod fails its readiness check and restarts"),),
    expected_root_cause="bad_deployment", expected_action_types=("rollback",),
    deployments=(Deployment("v3.1.0", 4, "new config loader; requires env var CHECKOUT_REGION"),),
    dependencies=(Dependency("payment-service", "service"),),
    story="Four minutes after v3.1.0 rolls out, checkout pods start failing their readiness checks.",
))

register(IncidentScenario(
    scenario_id="dependency_failure_timeout",
    name="External Dependency Timeout",
    description="The external payment gateway stops answering; checkout requests time out and fail.",
    service="shop", severity="high", difficulty="advanced", tags=("dependency", "availability"),
    phases=(Phase("gateway down", 240.0, (
        MetricPattern("external_call_duration_seconds", 30.0, 0.5, 8.0, "step", "seconds"),
        MetricPattern("http_5xx_errors", 850, 5, 7.5, "spike", "errors", integer=True),
        MetricPattern("circuit_breaker_open", 1, 0, 8.0, "step", "state", noise_sigma=0.0, maximum=1.0,
                      integer=True),
    ), "calls to the gateway hang until the client gives up"),),
    expected_root_cause="external_dependency_failure", expected_action_types=("open_circuit_breaker",),
    dependencies=(Dependency("payment-gateway", "http", external=True, state="circuit_breaker_open"),
                  Dependency("postgres", "database")),
    traffic=TrafficPlan("POST", "/checkout", (ChaosStep("timeout", "/payment", duration_ms=1500.0),),
                        requests=16),
    story="The third-party payment gateway stops answering; every checkout hangs until its timeout.",
))

register(IncidentScenario(
    scenario_id="memory_leak_oom_crash_loop",
    name="Memory Leak turning into an OOM Crash Loop",
    description="Two phases: a leak fills memory, then the OOM killer restarts pods over and over.",
    service="payment-service", severity="critical", difficulty="advanced",
    tags=("resource", "availability", "multi-phase"),
    phases=(
        Phase("leak", 240.0, (
            MetricPattern("memory_usage_bytes", 7.5 * GB, 2 * GB, 5.2, "ramp", "bytes"),
            MetricPattern("gc_collections", 4000, 500, 4.5, "ramp", "collections", integer=True),
        ), "memory climbs steadily"),
        Phase("oom crash loop", 180.0, (
            MetricPattern("memory_usage_bytes", 8 * GB, 2 * GB, 5.2, "oscillation", "bytes", cycles=4.0),
            MetricPattern("pod_restarts_total", 12, 0, 8.0, "ramp", "restarts", noise_sigma=0.0, integer=True),
            MetricPattern("pods_ready", 1, 3, 8.0, "drop", "pods", noise_sigma=0.0, integer=True),
        ), "pods hit the limit, are OOM-killed, restart and leak again"),
    ),
    expected_root_cause="memory_leak", expected_action_types=("restart", "rollback"),
    deployments=(Deployment("v2.4.1", 50, "new in-memory cache for payment tokens"),),
    dependencies=(Dependency("postgres", "database"),),
    story="The leak nobody caught in the first hour reaches the container limit: pods start dying.",
))
