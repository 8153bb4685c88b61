"""Drive the live demo shop through the product description's three scenarios.

As a script, against a running demo (``python app.py`` in another terminal)::

    python test_aiops.py          # full run: normal traffic, then three scenarios
    python test_aiops.py quick    # a short run
    DEMO_URL=http://127.0.0.1:8080 python test_aiops.py

It prints what happened to each request class, sample trace ids and, when
the analysis engine is installed (``/aiops/*``), the incidents it found.

Under pytest, the same scenario functions run against a real demo app that
the tests start on a free loopback port, and the stored spans are checked.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Outcome:
    """What the client saw for one request class during a phase."""

    name: str
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)
    sample_errors: list[str] = field(default_factory=list)

    def add(self, response: requests.Response | None, elapsed_ms: float, error: str | None = None) -> None:
        status = response.status_code if response is not None else 0
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ms.append(elapsed_ms)
        if response is not None and "X-Trace-Id" in response.headers:
            self.trace_ids.append(response.headers["X-Trace-Id"])
        if status >= 500 or status == 0:
            detail = error
            if response is not None:
                try:
                    detail = response.json().get("detail")
                except ValueError:
                    detail = response.text[:120]
            if detail and len(self.sample_errors) < 3 and detail not in self.sample_errors:
                self.sample_errors.append(detail)

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    def line(self) -> str:
        median = statistics.median(self.latencies_ms) if self.latencies_ms else 0.0
        worst = max(self.latencies_ms) if self.latencies_ms else 0.0
        statuses = ", ".join(f"{s or 'no answer'}x{n}" for s, n in sorted(self.statuses.items()))
        return f"{self.name:<16} {self.count:>4} requests  median {median:7.1f} ms  max {worst:7.1f} ms  [{statuses}]"


class Demo:
    """A client of a running demo shop at ``base_url``."""

    CALLS = {"health": ("GET", "/health"), "inventory": ("GET", "/inventory"),
             "payment": ("POST", "/payment"), "checkout": ("POST", "/checkout")}

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if api_key:
            self.http.headers["X-API-Key"] = api_key

    def call(self, name: str, outcome: Outcome) -> None:
        method, path = self.CALLS[name]
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base_url + path, timeout=self.timeout_s)
            outcome.add(response, (time.perf_counter() - started) * 1000)
        except requests.RequestException as exc:
            outcome.add(None, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}")

    def traffic(self, names: list[str], rounds: int, pause_s: float = 0.0) -> dict[str, Outcome]:
        outcomes = {name: Outcome(name) for name in names}
        for _ in range(rounds):
            for name in names:
                self.call(name, outcomes[name])
            if pause_s:
                time.sleep(pause_s)
        return outcomes

    def simulate(self, kind: str, **params) -> dict:
        response = self.http.post(f"{self.base_url}/simulate/{kind}", params=params, timeout=self.timeout_s)
        response.raise_for_status()
        return response.json()

    def aiops(self, method: str, path: str) -> dict | None:
        """An /aiops call, or None when the analysis engine is not installed."""
        response = self.http.request(method, f"{self.base_url}/aiops/{path}", timeout=60)
        return response.json() if response.status_code == 200 else None


@dataclass
class Scenario:
    name: str
    fault: tuple[str, dict]
    traffic: list[str]
    expectation: str


SCENARIOS = [
    Scenario("latency spike on /payment", ("delay", {"endpoint": "/payment", "duration": 2000}),
             ["checkout", "payment"], "incident with root cause /payment (latency)"),
    Scenario("error spike on /inventory", ("error", {"endpoint": "/inventory", "rate": 0.8}),
             ["inventory"], "incident with root cause /inventory and sample errors"),
    Scenario("cascading failure: /payment broken", ("error", {"endpoint": "/payment", "rate": 1.0}),
             ["checkout"], "root cause /payment; /checkout among the affected endpoints"),
]


def run_scenario(demo: Demo, scenario: Scenario, rounds: int, pause_s: float,
                 fault_scale: float = 1.0) -> dict[str, Outcome]:
    """Apply the scenario's fault, send traffic, clear the fault; return what the client saw."""
    kind, params = scenario.fault
    params = dict(params)
    if "duration" in params:
        params["duration"] = params["duration"] * fault_scale
    demo.simulate(kind, **params)
    try:
        return demo.traffic(scenario.traffic, rounds, pause_s)
    finally:
        demo.simulate("clear")


def print_outcomes(title: str, outcomes: dict[str, Outcome]) -> None:
    print(f"\n--- {title}")
    for outcome in outcomes.values():
        print("  " + outcome.line())
        for error in outcome.sample_errors:
            print(f"      error: {error}")
    traces = [t for o in outcomes.values() for t in o.trace_ids[-1:]]
    if traces:
        print("  last trace ids: " + ", ".join(traces))


def print_incidents(demo: Demo) -> None:
    found = demo.aiops("POST", "analyze")
    incidents = demo.aiops("GET", "incidents")
    if found is None or incidents is None:
        print("  (analysis engine not installed on this app: no /aiops/incidents)")
        return
    for incident in incidents.get("active_incidents", []):
        root = incident.get("root_cause") or {}
        print(f"  {incident['id']}  {incident['severity']:<8} {incident['title']}")
        print(f"      root cause {root.get('endpoint')} (confidence {root.get('confidence')}): "
              f"{root.get('description')}; affected {', '.join(incident.get('affected_endpoints', []))}")


def main(argv: list[str]) -> int:
    quick = "quick" in argv[1:]
    base_url = os.environ.get("DEMO_URL", "http://127.0.0.1:5000")
    demo = Demo(base_url, os.environ.get("AIOPS_API_KEY"))
    try:
        demo.http.get(base_url + "/health", timeout=3)
    except requests.RequestException:
        print(f"The demo is not answering at {base_url}. Start it first: python app.py", file=sys.stderr)
        return 1
    rounds, pause_s, fault_scale = (8, 0.05, 0.25) if quick else (30, 0.2, 1.0)
    print(f"Driving the demo at {base_url} ({'quick' if quick else 'full'} run)")
    demo.simulate("clear")
    print_outcomes("normal traffic", demo.traffic(list(Demo.CALLS), rounds * 2, pause_s))
    learned = demo.aiops("POST", "analyze") and demo.aiops("GET", "metrics")
    if learned:
        ready = [route for route, m in learned["metrics"].items() if m["baseline_ready"]]
        print(f"  baselines learned for: {', '.join(ready) or 'none yet (send more traffic)'}")
    for number, scenario in enumerate(SCENARIOS, 1):
        outcomes = run_scenario(demo, scenario, rounds, pause_s, fault_scale)
        print_outcomes(f"scenario {number}: {scenario.name}  (expect: {scenario.expectation})", outcomes)
        print_incidents(demo)
        demo.traffic(list(Demo.CALLS), 3, pause_s)  # let things settle between scenarios
    print("\nDone. Inspect a trace with the ids above, or GET /simulate/status.")
    return 0


# --------------------------------------------------------------------------- pytest
# The same scenarios against a real demo app on a free loopback port.

try:
    import pytest
except ImportError:  # running as a script without pytest installed
    pytest = None

if pytest is not None:
    from aiops import AIOps
    from app import create_app
    from telemetry import Telemetry
    from telemetry.store import SpanStore

    @pytest.fixture
    def demo_server(tmp_path):
        from tests.helpers import LiveServer
        app = create_app({"TELEMETRY_DB_PATH": str(tmp_path / "demo.db"), "DEMO_LATENCY_SCALE": 0.2,
                          "DEMO_ERROR_RATE": 0.0, "DEMO_SEED": 7, "TELEMETRY_FLUSH_INTERVAL_MS": 20,
                          "AIOPS_SCHEDULER": False})
        server = LiveServer(app)
        yield server
        server.stop()
        AIOps.shutdown(app)
        SpanStore.close_all()

    def learned_demo(server) -> Demo:
        """A client of ``server`` once every business route has a ready baseline."""
        demo = Demo(server.url)
        demo.traffic(list(Demo.CALLS), rounds=32)
        demo.aiops("POST", "analyze")
        ready = {route for route, m in demo.aiops("GET", "metrics")["metrics"].items() if m["baseline_ready"]}
        assert ready == {"/health", "/inventory", "/payment", "/checkout"}, ready
        return demo

    def incidents_after(demo: Demo) -> list[dict]:
        result = demo.aiops("POST", "analyze")
        assert result is not None
        return demo.aiops("GET", "incidents")["active_incidents"]

    def incident_of(demo: Demo, kind: str) -> dict:
        """The one open incident with an anomaly of ``kind``. (A live server on a
        busy 2-core CI machine may add a genuine latency blip; that is not what
        these tests judge, so only incidents of the scenario's kind count.)"""
        found = [i for i in incidents_after(demo) if any(a["type"] == kind for a in i["anomalies"])]
        assert len(found) == 1, [(i["title"], i["root_cause"]) for i in found]
        return found[0]

    def test_three_scenarios_find_their_root_causes(demo_server):
        """The product description's scenarios, each on the live demo, judged by the analysis."""
        demo = learned_demo(demo_server)
        assert not [i for i in incidents_after(demo) if any(a["type"] != "latency_anomaly" for a in i["anomalies"])]

        # 1. latency spike on /payment -> root cause /payment
        run_scenario(demo, SCENARIOS[0], rounds=4, pause_s=0, fault_scale=0.1)  # 200 ms
        incident = incident_of(demo, "latency_anomaly")
        assert incident["root_cause"]["endpoint"] == "/payment"
        assert incident["title"] == "Latency spike detected in /payment"
        assert "/checkout" in incident["affected_endpoints"]
        demo.http.post(f"{demo.base_url}/aiops/incidents/{incident['id']}/resolve")

    def test_error_spike_on_inventory_is_an_incident_with_sample_errors(demo_server):
        demo = learned_demo(demo_server)
        run_scenario(demo, SCENARIOS[1], rounds=12, pause_s=0)
        incident = incident_of(demo, "error_spike")
        assert incident["root_cause"]["endpoint"] == "/inventory"
        samples = [e for a in incident["anomalies"] if a["endpoint"] == "/inventory" for e in a["sample_errors"]]
        assert samples[0]["type"] == "simulation.chaos.InjectedFault"
        assert samples[0]["message"] == "injected fault: 80% error rate on /inventory (HTTP 500)"

    def test_payment_broken_cascades_to_checkout(demo_server):
        demo = learned_demo(demo_server)
        outcomes = run_scenario(demo, SCENARIOS[2], rounds=10, pause_s=0)
        incident = incident_of(demo, "error_spike")
        assert incident["root_cause"]["endpoint"] == "/payment"
        assert incident["affected_endpoints"][:2] == ["/payment", "/checkout"]
        assert incident["severity"] == "critical"
        failing = {s["trace_id"] for s in incident["trace_correlation"]["sample_traces"] if s["root_status"] == 500}
        assert failing and failing <= set(outcomes["checkout"].trace_ids)
        chain = incident["trace_correlation"]["sample_traces"][0]["affected_chain"]
        assert chain == ["/checkout", "/inventory", "/payment"]
        trace = demo.aiops("GET", f"traces/{outcomes['checkout'].trace_ids[0]}")
        assert trace["span_count"] == 3 and trace["roots"][0]["route"] == "/checkout"

    def stored_spans(server, count: int) -> list[dict]:
        from tests.helpers import wait_for_spans
        return wait_for_spans(server.app, server.app.config["TELEMETRY_DB_PATH"], count)

    def test_normal_traffic_is_healthy_and_traced_end_to_end(demo_server):
        demo = Demo(demo_server.url)
        outcomes = demo.traffic(list(Demo.CALLS), rounds=3)
        assert all(o.errors == 0 for o in outcomes.values()), {n: o.statuses for n, o in outcomes.items()}
        spans = stored_spans(demo_server, 3 * 6)  # checkout adds an inventory and a payment span
        checkout_trace = outcomes["checkout"].trace_ids[0]
        chain = [s for s in spans if s["trace_id"] == checkout_trace]
        by_route = {s["route"]: s for s in chain}
        assert set(by_route) == {"/checkout", "/inventory", "/payment"}
        assert by_route["/inventory"]["parent_span_id"] == by_route["/checkout"]["span_id"]
        assert by_route["/payment"]["parent_span_id"] == by_route["/checkout"]["span_id"]
        assert {s["service"] for s in chain} == {"shop"}

    def test_scenario_latency_spike_on_payment(demo_server):
        demo = Demo(demo_server.url)
        outcomes = run_scenario(demo, SCENARIOS[0], rounds=3, pause_s=0, fault_scale=0.1)  # 200 ms
        assert outcomes["checkout"].errors == 0
        assert min(outcomes["payment"].latencies_ms) >= 200
        spans = stored_spans(demo_server, 3 * 4)
        payment = [s for s in spans if s["route"] == "/payment"]
        assert len(payment) == 6 and min(s["duration_ms"] for s in payment) >= 200
        checkout = [s for s in spans if s["route"] == "/checkout"]
        assert min(s["duration_ms"] for s in checkout) >= 200  # the slowness shows in the caller too

    def test_scenario_error_spike_on_inventory(demo_server):
        demo = Demo(demo_server.url)
        demo.simulate("error", endpoint="/inventory", rate=1.0, status=503)
        outcomes = demo.traffic(["inventory"], rounds=5)
        demo.simulate("clear")
        assert outcomes["inventory"].statuses == {503: 5}
        assert "injected fault" in outcomes["inventory"].sample_errors[0]
        spans = stored_spans(demo_server, 5)
        assert all(s["error"] == 1 and s["exception_type"] == "simulation.chaos.InjectedFault" for s in spans)
        assert "error rate on /inventory" in spans[0]["exception_message"]

    def test_scenario_cascading_failure_from_payment(demo_server):
        demo = Demo(demo_server.url)
        outcomes = run_scenario(demo, SCENARIOS[2], rounds=4, pause_s=0)
        assert outcomes["checkout"].statuses == {502: 4}
        assert "payment returned HTTP 500" in outcomes["checkout"].sample_errors[0]
        spans = stored_spans(demo_server, 4 * 3)
        for trace_id in outcomes["checkout"].trace_ids:
            chain = {s["route"]: s for s in spans if s["trace_id"] == trace_id}
            assert chain["/payment"]["status_code"] == 500 and chain["/payment"]["error"] == 1
            assert chain["/checkout"]["status_code"] == 502 and chain["/checkout"]["error"] == 1
            assert chain["/checkout"]["exception_type"] == "simulation.shop.UpstreamFailure"
            assert chain["/inventory"]["status_code"] == 200
            assert chain["/payment"]["parent_span_id"] == chain["/checkout"]["span_id"]

    def test_timeout_on_payment_makes_checkout_answer_504(tmp_path):
        from tests.helpers import LiveServer
        app = create_app({"TELEMETRY_DB_PATH": str(tmp_path / "demo.db"), "DEMO_LATENCY_SCALE": 0.0,
                          "DEMO_ERROR_RATE": 0.0, "DEMO_UPSTREAM_TIMEOUT_S": 0.3, "AIOPS_SCHEDULER": False})
        server = LiveServer(app)
        try:
            demo = Demo(server.url)
            demo.simulate("timeout", endpoint="/payment", duration=1000)
            outcome = demo.traffic(["checkout"], rounds=1)["checkout"]
            assert outcome.statuses == {504: 1}
            assert "did not answer within 0.3 s" in outcome.sample_errors[0]
        finally:
            server.stop()
            SpanStore.close_all()

    def test_upstream_url_points_checkout_at_another_service(tmp_path):
        from tests.helpers import LiveServer
        backend = LiveServer(create_app({"TELEMETRY_DB_PATH": str(tmp_path / "b.db"), "DEMO_LATENCY_SCALE": 0.0,
                                         "TELEMETRY_SERVICE_NAME": "backend", "DEMO_ERROR_RATE": 0.0,
                                         "AIOPS_SCHEDULER": False}))
        front = LiveServer(create_app({"TELEMETRY_DB_PATH": str(tmp_path / "f.db"), "DEMO_LATENCY_SCALE": 0.0,
                                       "DEMO_UPSTREAM_URL": backend.url, "DEMO_ERROR_RATE": 0.0,
                                       "TELEMETRY_SERVICE_NAME": "frontend", "AIOPS_SCHEDULER": False}))
        try:
            Demo(backend.url).simulate("error", endpoint="/payment", rate=1.0)
            outcome = Demo(front.url).traffic(["checkout"], rounds=2)["checkout"]
            assert outcome.statuses == {502: 2}
            from tests.helpers import wait_for_spans
            back_spans = wait_for_spans(backend.app, tmp_path / "b.db", 4)
            assert {s["service"] for s in back_spans} == {"backend"}
            assert set(outcome.trace_ids) == {s["trace_id"] for s in back_spans}
        finally:
            front.stop()
            backend.stop()
            SpanStore.close_all()

    def test_two_services_writing_one_store_blame_the_right_service(tmp_path):
        """frontend /checkout calls backend /inventory and /payment over HTTP; both
        write one store; backend /payment breaks; the analysis names the service."""
        from tests.helpers import LiveServer
        db = str(tmp_path / "shared.db")
        common = {"TELEMETRY_DB_PATH": db, "DEMO_LATENCY_SCALE": 0.2, "DEMO_ERROR_RATE": 0.0,
                  "AIOPS_SCHEDULER": False}
        backend = LiveServer(create_app({**common, "TELEMETRY_SERVICE_NAME": "backend"}))
        front = LiveServer(create_app({**common, "TELEMETRY_SERVICE_NAME": "frontend",
                                       "DEMO_UPSTREAM_URL": backend.url}))
        try:
            shopper = Demo(front.url)
            shopper.traffic(["checkout"], rounds=35)
            shopper.aiops("POST", "analyze")
            Demo(backend.url).simulate("error", endpoint="/payment", rate=1.0)
            shopper.traffic(["checkout"], rounds=10)
            incident = incident_of(shopper, "error_spike")
            assert incident["root_cause"]["service"] == "backend"
            assert incident["root_cause"]["endpoint"] == "backend /payment"
            assert incident["affected_endpoints"][:2] == ["backend /payment", "frontend /checkout"]
            deps = shopper.aiops("GET", "dependencies")
            edges = {(e["caller"]["service"], e["callee"]["service"]) for e in deps["edges"]}
            assert edges == {("frontend", "backend")}
        finally:
            front.stop()
            backend.stop()
            for server in (front, backend):
                AIOps.shutdown(server.app)
            SpanStore.close_all()

    def test_app_factory_twice_in_one_process(tmp_path, monkeypatch):
        monkeypatch.setenv("DEMO_ERROR_RATE", "0.5")
        monkeypatch.setenv("PORT", "8080")
        first = create_app({"TELEMETRY_DB_PATH": str(tmp_path / "1.db"), "DEMO_LATENCY_SCALE": 0,
                            "AIOPS_SCHEDULER": False})
        second = create_app({"TELEMETRY_DB_PATH": str(tmp_path / "2.db"), "DEMO_LATENCY_SCALE": 0,
                             "DEMO_ERROR_RATE": 0.0, "AIOPS_SCHEDULER": False})
        assert first.config["DEMO_ERROR_RATE"] == 0.5  # from the environment
        assert second.config["DEMO_ERROR_RATE"] == 0.0  # create_app(config) wins over the environment
        for app in (first, second):
            response = app.test_client().get("/health")
            response.get_data()
            response.close()
            Telemetry.flush(app)
        assert first.extensions["telemetry"].store is not second.extensions["telemetry"].store
        assert Telemetry.stats(first)["written"] == 1 and Telemetry.stats(second)["written"] == 1
        with pytest.raises(ValueError, match="DEMO_ERROR_RATE must be a number within"):
            create_app({"TELEMETRY_DB_PATH": str(tmp_path / "3.db"), "DEMO_ERROR_RATE": 3, "AIOPS_SCHEDULER": False})
        SpanStore.close_all()

    def test_script_quick_run_against_a_live_demo(demo_server, capsys, monkeypatch):
        monkeypatch.setenv("DEMO_URL", demo_server.url)
        assert main(["test_aiops.py", "quick"]) == 0
        out = capsys.readouterr().out
        assert "scenario 3: cascading failure" in out and "502x" in out and "injected fault" in out


if __name__ == "__main__":
    sys.exit(main(sys.argv))
