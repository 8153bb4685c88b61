"""Running a scenario through the product's public paths, in-process or against a server.

A run, step by step (each reported to ``progress(step, status, detail)``):

1. ``inject``: the scenario's seeded series (healthy baseline, then each
   phase's pattern, ending now) go through ``POST /aiops/metrics/ingest``.
2. ``traffic`` (request-level scenarios): real requests at the app, first
   healthy ones, then a pass to learn baselines, then with the scenario's
   chaos faults set through ``POST /simulate/<fault>`` (always cleared after).
3. ``detect``: ``POST /aiops/analyze`` until an open incident of the
   scenario's service shows anomalies from this run (the metric detector and
   the span detectors); when none appears (metric detection off, an older
   server), the same online detector judges the injected series locally.
4. ``analyze`` (``auto_analyze``): hypotheses, actions and what-if from the
   evidence (``simulation.analysis``).
5. ``validate``: the outcome scored against the scenario's expectation.

``AppTarget`` calls an app in-process (Flask test client; real traffic needs
the app served at ``base_url``); ``HttpTarget`` calls a running server.
"""
from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import requests

from aiops.metrics.detect import judge_series
from aiops.metrics.model import parse_metric_batch
from llm.features import RANKING_INSTRUCTIONS
from simulation.analysis import analyse_evidence, apply_refinement, refinement_schema
from simulation.generators import generate
from simulation.scenarios import IncidentScenario
from telemetry.timefmt import iso

RECORD_FORMAT = "aiops-simulation/1"
#: demo: the whole timeline ends now and is pushed at once; background: the same in a thread;
#: realtime: history pushed at once, then each incident point when its timestamp comes (in a thread).
EXECUTION_MODES = ("demo", "background", "realtime")
INJECT_BATCH = 5000


class SimulationError(RuntimeError):
    """A step failed in a way the run cannot go on from (the detail says why)."""


class Stopped(Exception):
    pass


# -- targets ------------------------------------------------------------------------


class AppTarget:
    """An app called in-process; ``base_url`` (optional) is where it is also
    served, for real request traffic."""

    def __init__(self, app, base_url: str | None = None, api_key: str | None = None):
        self.app = app
        self.base_url = base_url.rstrip("/") if base_url else None
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        client = self.app.test_client()
        response = client.open(path, method=method, json=body, headers=self.headers)
        try:
            return response.status_code, response.get_json(silent=True)
        finally:
            response.close()

    def incident_url(self, incident_id: str) -> str:
        return f"{self.base_url or ''}/aiops/incidents/{incident_id}"


    @property
    def llm(self):
        """The app's ``LLMWriter`` (None without AIOps)."""
        state = self.app.extensions.get("aiops")
        return getattr(state, "llm", None)


class HttpTarget:
    """A running server at ``base_url``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if api_key:
            self.http.headers["X-API-Key"] = api_key

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(method, self.base_url + path, json=body, timeout=self.timeout_s)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def incident_url(self, incident_id: str) -> str:
        return f"{self.base_url}/aiops/incidents/{incident_id}"


def _ok(target, method: str, path: str, body: Any = None) -> Any:
    status, payload = target.call(method, path, body)
    if status >= 400:
        detail = payload.get("detail") if isinstance(payload, dict) else payload
        raise SimulationError(f"{method} {path} answered {status}: {detail}")
    return payload


# -- the record -----------------------------------------------------------------------


@dataclass
class SimulationRecord:
    """One simulation: its progress and outcome (the ``GET .../simulations/<id>`` shape)."""

    simulation_id: str
    scenario_id: str
    execution_mode: str
    auto_analyze: bool
    seed: int
    status: str = "pending"          # pending, running, completed, stopped, failed
    started_at: float = 0.0
    finished_at: float | None = None
    steps: list[dict] = field(default_factory=list)
    points_injected: int = 0
    traffic: dict | None = None
    incident_id: str | None = None
    incident_url: str | None = None
    incident_source: str | None = None  # "analysis" (a stored incident) or "local" (judged by the runner)
    detection: dict = field(default_factory=dict)
    evidence: list[dict] = field(default_factory=list)
    hypotheses: list[dict] = field(default_factory=list)
    hypotheses_ranked_by: str = "evidence"  # "llm" when a configured model re-ranked them
    ranking_note: str = ""                  # the model's reason, or why the evidence ranking stands
    actions: list[dict] = field(default_factory=list)
    what_if: list[dict] = field(default_factory=list)
    validation: dict | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["started_at"] = iso(self.started_at)
        out["finished_at"] = iso(self.finished_at)
        out["hypotheses_count"] = len(self.hypotheses)
        out["actions_count"] = len(self.actions)
        out["metrics_injected"] = self.points_injected > 0
        return out

    def summary(self) -> dict:
        """The ``POST .../start`` answer (the product's shape plus links)."""
        return {"simulation_id": self.simulation_id, "scenario_id": self.scenario_id,
                "incident_id": self.incident_id, "status": self.status, "started_at": iso(self.started_at),
                "hypotheses_count": len(self.hypotheses), "actions_count": len(self.actions),
                "metrics_injected": self.points_injected > 0, "points_injected": self.points_injected,
                "execution_mode": self.execution_mode, "incident_url": self.incident_url,
                "validation": self.validation}


def new_simulation_id() -> str:
    return f"sim_{uuid.uuid4().hex[:8]}"


# -- the run --------------------------------------------------------------------------


Progress = Callable[[str, str, str], None]


class Run:
    """One simulation of ``scenario`` against ``target`` (see the module docstring)."""

    def __init__(self, scenario: IncidentScenario, target, record: SimulationRecord | None = None,
                 progress: Progress | None = None, cancel: threading.Event | None = None,
                 points: list[dict] | None = None, truth: dict | None = None):
        self.scenario = scenario
        self.target = target
        self.record = record or SimulationRecord(new_simulation_id(), scenario.scenario_id, "demo", True, 0)
        self.progress = progress or (lambda step, status, detail: None)
        self.cancel = cancel or threading.Event()
        self.points = points  # given: play these (a recording) instead of generating
        self.generated = None
        self.served = False
        self.traffic_done = False
        self.live: dict = {}
        self._skip_reason = ""
        self.truth = truth or {}  # metric name -> SeriesTruth.to_dict() (onset_s, pattern, ...)

    # step bookkeeping
    def _step(self, name: str, status: str, detail: str = "") -> None:
        entry = {"step": name, "status": status, "detail": detail, "at": iso(time.time())}
        steps = [s for s in self.record.steps if s["step"] != name]
        self.record.steps = steps + [entry]
        self.progress(name, status, detail)

    def _check(self) -> None:
        if self.cancel.is_set():
            raise Stopped()

    def execute(self) -> SimulationRecord:
        rec = self.record
        rec.status, rec.started_at = "running", time.time()
        try:
            self.served = self.scenario.request_level and self._reachable()
            if self.served:
                self.warm_up()  # healthy traffic and a pass first, so the baselines exist
            self.inject()
            if self.scenario.request_level and not self.traffic_done:
                self.drive_traffic()
            anomalies = self.detect()
            if rec.auto_analyze:
                self.analyze(anomalies)
            self.validate()
            rec.status = "completed"
        except Stopped:
            rec.status = "stopped"
            self._step("stopped", "done", "stopped on request")
        except Exception as exc:  # a failed run is reported, never raised into a server
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
            self._step("failed", "error", rec.error)
        finally:
            rec.finished_at = time.time()
        return rec

    # 1. inject
    def inject(self) -> None:
        realtime = self.record.execution_mode == "realtime"
        self._step("inject", "running", "generating series")
        if self.points is None:
            end_s = self.record.started_at + (self.scenario.duration_seconds if realtime else 0.0)
            self.generated = generate(self.scenario, end_s, self.record.seed)
            points = self.generated.points
            self.truth = {name: t.to_dict() for name, t in self.generated.truth.items()}
        else:
            points = self.points
        now = time.time()
        past = [p for p in points if not realtime or p["timestamp"] <= now]
        future = [p for p in points if realtime and p["timestamp"] > now]
        for i in range(0, len(past), INJECT_BATCH):
            self._check()
            body = _ok(self.target, "POST", "/aiops/metrics/ingest", past[i:i + INJECT_BATCH])
            self.record.points_injected += body["stored"]
            self._step("inject", "running", f"{self.record.points_injected}/{len(points)} points")
        if future:
            self._unfold(future, len(points))
        self._step("inject", "done", f"{self.record.points_injected} points in "
                                     f"{len({p['name'] for p in points})} series via POST /aiops/metrics/ingest"
                                     + (" as their time came" if future else ""))

    def _unfold(self, future: list[dict], total: int) -> None:
        """Realtime: push each instant's points when it comes, run a pass, note the first detection."""
        onset_s = min((t["onset_s"] for t in self.truth.values()), default=future[0]["timestamp"])
        groups: dict[float, list[dict]] = {}
        for p in future:
            groups.setdefault(p["timestamp"], []).append(p)
        for ts in sorted(groups):
            while time.time() < ts:
                self._check()
                time.sleep(min(0.2, max(0.0, ts - time.time())))
            self._check()
            body = _ok(self.target, "POST", "/aiops/metrics/ingest", groups[ts])
            self.record.points_injected += body["stored"]
            if self.scenario.request_level and not self.traffic_done and ts >= onset_s:
                self.drive_traffic()  # the faults start with the incident
            if "first_anomaly_at" not in self.live:
                _ok(self.target, "POST", "/aiops/analyze")
                if self._fresh_incidents():
                    now = time.time()
                    self.live = {"first_anomaly_at": iso(now), "detected_after_onset_s": round(now - onset_s, 1)}
            seen = (f", first anomaly {self.live['detected_after_onset_s']:g} s after the onset"
                    if self.live else ", nothing detected yet")
            self._step("inject", "running", f"t+{ts - onset_s:.0f} s: {self.record.points_injected}/{total} "
                                            f"points{seen}")

    # 2. traffic
    def warm_up(self) -> None:
        plan = self.scenario.traffic
        self._step("traffic", "running", f"warm-up: {plan.warmup_requests} x {plan.method} {plan.path}")
        self._requests(self.target.base_url, plan, plan.warmup_requests)
        _ok(self.target, "POST", "/aiops/analyze")  # learn the healthy baselines

    def _reachable(self) -> bool:
        """True when the app answers over HTTP at the target's ``base_url``."""
        base = getattr(self.target, "base_url", None)
        if not base:
            self._skip_reason = "the app is not served over HTTP here (in-process run); metrics only"
            return False
        try:
            requests.get(base + "/aiops/status", timeout=3.0).close()
            return True
        except requests.RequestException as exc:
            self._skip_reason = f"the app did not answer at {base} ({type(exc).__name__}); metrics only"
            return False

    def drive_traffic(self) -> None:
        plan = self.scenario.traffic
        base = self.target.base_url
        if not self.served:
            self.record.traffic = {"driven": False, "reason": self._skip_reason}
            self._step("traffic", "skipped", self._skip_reason)
            return
        self.traffic_done = True
        faults = []
        try:
            for step in plan.faults:
                self._check()
                _ok(self.target, "POST", f"/simulate/{step.fault}", step.params())
                faults.append(f"{step.fault} on {step.endpoint}")
            self._step("traffic", "running", f"{plan.requests} x {plan.method} {plan.path} with {', '.join(faults)}")
            outcomes = self._requests(base, plan, plan.requests)
        finally:
            if faults:
                try:
                    self.target.call("POST", "/simulate/clear", {})
                except Exception:  # clearing is best effort; faults also expire with the app
                    pass
        latencies = [ms for _, ms in outcomes]
        failed = sum(1 for status, _ in outcomes if status == 0 or status >= 500)
        self.record.traffic = {"driven": True, "path": plan.path, "method": plan.method, "requests": len(outcomes),
                               "warmup_requests": plan.warmup_requests, "faults": faults, "failed": failed,
                               "median_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
                               "statuses": _count(status for status, _ in outcomes)}
        self._step("traffic", "done", f"{len(outcomes)} requests, {failed} failed, median "
                                      f"{self.record.traffic['median_ms']:.0f} ms")

    def _requests(self, base: str, plan, n: int) -> list[tuple[int, float]]:
        local = threading.local()

        def one(_):
            if self.cancel.is_set():
                return None
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            started = time.perf_counter()
            try:
                status = session.request(plan.method, base + plan.path, timeout=30).status_code
            except requests.RequestException:
                status = 0
            return status, (time.perf_counter() - started) * 1000.0

        with ThreadPoolExecutor(plan.concurrency) as pool:
            results = [r for r in pool.map(one, range(n)) if r is not None]
        self._check()
        return results

    # 3. detect
    def detect(self, attempts: int = 4, pause_s: float = 0.5) -> list[dict]:
        self._step("detect", "running", "POST /aiops/analyze")
        found: list = []
        for attempt in range(attempts):
            self._check()
            _ok(self.target, "POST", "/aiops/analyze")
            found = self._fresh_incidents()
            if found and (not self.scenario.request_level or not self.record.traffic
                          or not self.record.traffic.get("driven")
                          or any(not a.get("metric") for _, fresh in found for a in fresh)):
                break
            time.sleep(pause_s * (attempt + 1))
        anomalies: list[dict] = []
        if found:
            found.sort(key=lambda t: -len(t[1]))
            incident = found[0][0]
            self.record.incident_id = incident["id"]
            self.record.incident_url = self.target.incident_url(incident["id"])
            self.record.incident_source = "analysis"
            anomalies = [a for _, fresh in found for a in fresh]
            self._step("detect", "done", f"incident {incident['id']}: {incident['title']} "
                                         f"({len(anomalies)} anomalies)")
        else:
            anomalies = self._judge_locally()
            self.record.incident_source = "local"
            self._step("detect", "done", f"no stored incident; the runner's own detector flagged "
                                         f"{len(anomalies)} series")
        self.record.detection = self._score_detection(anomalies)
        if self.live:
            self.record.detection["live"] = self.live
        return anomalies

    def _fresh_incidents(self) -> list[tuple[dict, list[dict]]]:
        """Open incidents with anomalies of the scenario's service detected since this run started."""
        since = self.record.started_at - 1.0
        incidents = _ok(self.target, "GET", "/aiops/incidents?status=open&limit=1000")["active_incidents"]
        found = []
        for incident in incidents:
            fresh = [a for a in incident["anomalies"]
                     if a["service"] == self.scenario.service and a["detected_at"] >= since]
            if fresh:
                found.append((incident, fresh))
        return found

    def _judge_locally(self) -> list[dict]:
        points = parse_metric_batch(self.points if self.points is not None else self.generated.points,
                                    max_points=10 ** 7)
        by_series: dict[tuple[str, str], list] = {}
        for p in sorted(points, key=lambda p: p.timestamp_s):
            by_series.setdefault((p.service, p.name), []).append(p)
        out = []
        for key in sorted(by_series):
            anomaly = judge_series(by_series[key], 0, time.time())
            if anomaly is not None:
                out.append(anomaly.to_dict())
        return out

    def _score_detection(self, anomalies: list[dict]) -> dict:
        truth = self.truth
        flagged = {a["metric"]["name"]: a["metric"] for a in anomalies if a.get("metric")}
        rows, delays = [], []
        for name, t in truth.items():
            m = flagged.get(name)
            delay = round(m["first_flagged_at"] - t["onset_s"], 1) + 0.0 if m else None
            if delay is not None and delay >= 0:
                delays.append(delay)
            rows.append({"metric": name, "pattern": t["pattern"], "detected": m is not None, "delay_s": delay,
                         "onset": iso(t["onset_s"])})
        return {"metrics": rows, "detected": sum(r["detected"] for r in rows), "total": len(rows),
                "span_anomalies": sum(1 for a in anomalies if not a.get("metric")),
                "median_delay_s": statistics.median(delays) if delays else None}

    # 4. analyze
    def analyze(self, anomalies: list[dict]) -> None:
        self._step("analyze", "running", "ranking hypotheses")
        context = self.scenario.to_dict()["context"]
        result = analyse_evidence(anomalies, context, self.scenario.service)
        rec = self.record
        rec.evidence, rec.hypotheses = result["evidence"], self._refined(result["hypotheses"])
        rec.actions, rec.what_if = result["actions"], result["what_if"]
        top = rec.hypotheses[0]["title"] if rec.hypotheses else "none"
        self._step("analyze", "done", f"{len(rec.hypotheses)} hypotheses (top: {top}), {len(rec.actions)} actions")

    def _refined(self, hypotheses: list[dict]) -> list[dict]:
        """The evidence's ranking, re-ordered by the model when the app has one configured.

        A model that fails, answers invalid JSON or an order that is not a
        permutation of the hypotheses leaves the evidence's ranking, and
        ``record.hypotheses_ranked_by`` says which ranking stands.
        """
        self.record.hypotheses_ranked_by = "evidence"
        llm = getattr(self.target, "llm", None)
        if llm is None or not llm.enabled or len(hypotheses) < 2:
            return hypotheses
        facts = {"scenario": self.scenario.name, "service": self.scenario.service,
                 "hypotheses": [{k: h[k] for k in ("category", "title", "confidence", "rank", "evidence")}
                                for h in hypotheses]}
        doc = llm.structured("hypothesis_ranking", facts, refinement_schema(hypotheses),
                             lambda f: {"order": [h["category"] for h in hypotheses]}, RANKING_INSTRUCTIONS)
        if doc.source != "llm":
            self.record.ranking_note = f"evidence ranking kept: {doc.fallback_reason}"
            return hypotheses
        try:
            refined = apply_refinement(hypotheses, doc.data)
        except ValueError as exc:
            self.record.ranking_note = f"evidence ranking kept: {exc}"
            return hypotheses
        self.record.hypotheses_ranked_by = "llm"
        self.record.ranking_note = doc.data.get("reason", "")
        return refined

    # 5. validate
    def validate(self) -> None:
        self.record.validation = score(self.scenario, self.record)
        v = self.record.validation
        self._step("validate", "done", f"score {v['score']:.2f} ({'pass' if v['passed'] else 'fail'})")


def _count(values) -> dict:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


def score(scenario: IncidentScenario, record: SimulationRecord) -> dict:
    """0..1: 0.5 for the expected root cause ranked first (0.25 if second),
    0.3 x the share of expected action types among the top three actions,
    0.2 x the share of the scenario's metrics detected. Passed: >= 0.7 with
    the root cause ranked first."""
    categories = [h["category"] for h in record.hypotheses]
    expected = scenario.expected_root_cause
    root = 0.5 if categories[:1] == [expected] else 0.25 if expected in categories[:2] else 0.0
    top_actions = [a["action_type"] for a in record.actions[:3]]
    matched = [a for a in scenario.expected_action_types if a in top_actions]
    actions = 0.3 * len(matched) / len(scenario.expected_action_types)
    det = record.detection or {}
    detection = 0.2 * det["detected"] / det["total"] if det.get("total") else 0.0
    total = round(root + actions + detection, 3)
    return {"score": total, "passed": total >= 0.7 and root == 0.5,
            "root_cause": {"expected": expected, "got": categories[0] if categories else None,
                           "points": root},
            "actions": {"expected": list(scenario.expected_action_types), "top_three": top_actions,
                        "points": round(actions, 3)},
            "detection": {"detected": det.get("detected", 0), "total": det.get("total", 0),
                          "points": round(detection, 3)}}


# -- record / playback ----------------------------------------------------------------


def save_recording(path: str, scenario: IncidentScenario, run: Run) -> None:
    """The injected points, the scenario and the outcome, as one JSON file."""
    points = run.points if run.points is not None else run.generated.points
    data = {"format": RECORD_FORMAT, "recorded_at": iso(time.time()), "scenario_id": scenario.scenario_id,
            "seed": run.record.seed, "scenario": scenario.to_dict(), "points": points,
            "truth": run.truth,
            "outcome": run.record.to_dict()}
    with open(path, "w") as f:
        json.dump(data, f)


def load_recording(path: str) -> dict:
    """A recording; ValueError when the file is not one."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path} is not a simulation recording (format {RECORD_FORMAT!r})")
    return data


def shifted(recording: dict, end_s: float) -> tuple[list[dict], dict]:
    """A recording's points and truth moved in time so the last point falls at ``end_s``."""
    points = recording["points"]
    delta = end_s - max(p["timestamp"] for p in points)
    moved = [{**p, "timestamp": round(p["timestamp"] + delta, 3)} for p in points]
    truth = {name: {**t, "onset_s": t["onset_s"] + delta, "end_s": t["end_s"] + delta}
             for name, t in recording.get("truth", {}).items()}
    return moved, truth
