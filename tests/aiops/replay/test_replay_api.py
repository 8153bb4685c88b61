"""The replay of a stored incident: over HTTP on a live server, and from the CLI (store and CSV files).

The store holds 4.5 hours of seeded shop traffic written into a real SQLite file; the analysis
engine itself detects a /payment latency fault and opens the incident that is replayed.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from aiops.analysis.config import AnalysisConfig
from aiops.analysis.engine import Analyzer
from aiops.analysis.store import AnalysisStore
from aiops.metrics.detect import MetricSignals
from aiops.metrics.model import MetricPoint
from aiops.metrics.store import MetricStore
from aiops.testing.synthetic import Fault, as_row, generate, replay, shop_routes
from telemetry.store import INSERT_SPAN as _INSERT, connect

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "aiops" / "replay" / "samples"
T0 = 1_800_000_000.0
DURATION_S = 4.5 * 3600
FAULT = (T0 + 15000, T0 + 15900)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(db path, incident id) after the engine analysed the fault."""
    db = tmp_path_factory.mktemp("replay") / "t.db"
    traffic = generate(shop_routes(), {("shop", "/checkout"): 1.0, ("shop", "/health"): 0.3}, T0, DURATION_S,
                       [Fault(("shop", "/payment"), "latency", *FAULT, 300.0)], seed=3)
    conn = connect(str(db))
    store = AnalysisStore(str(db))
    start = FAULT[0] - 600

    def write(rows):
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")

    early = [s for s in traffic.spans if s["start_time"] + s["duration_ms"] / 1000 <= start]
    write([as_row(s) for s in early])
    traffic.spans = traffic.spans[len(early):]
    metrics = MetricStore(store.db)
    analyzer = Analyzer(store, AnalysisConfig(), sources=[MetricSignals(metrics)])
    # pushed metrics: the payment pool runs 4 workers, and 1 while the fault lasts
    metrics.insert_metrics([MetricPoint(t, "shop", "payment_workers", 1.0 if FAULT[0] <= t < FAULT[1] else 4.0,
                                      {"pool": "payment"}) for t in range(int(T0), int(T0 + DURATION_S), 30)])
    replay(traffic, write, analyzer.run_pass, start, T0 + DURATION_S, 10.0)
    store.release_lock(analyzer.owner)
    conn.close()
    incidents = store.incidents(limit=10)
    store.close()
    assert incidents, "the engine opened no incident"
    payment = [i for i in incidents if i.root_cause["endpoint"] == "/payment"]
    assert payment, [i.to_json() for i in incidents]
    return db, payment[-1].id


@pytest.fixture
def replay_app(make_app, stored):
    """``replay_app(**config)``: AIOps alone (no Telemetry) on the analysed store."""
    return lambda **config: make_app("replay", telemetry=False, AIOPS_DB_PATH=str(stored[0]), **config)


@pytest.fixture
def server(live_server, replay_app):
    return live_server(replay_app())


def test_replay_json_over_http(stored, server):
    db, incident_id = stored
    response = requests.get(f"{server.url}/aiops/incidents/{incident_id}/replay", timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["incident"]["id"] == incident_id and body["incident"]["services"] == ["shop"]
    keys = {(m["service"], m["metric"]) for m in body["metrics"]}
    assert ("shop", "/payment latency_p95_ms") in keys and ("shop", "/checkout latency_p95_ms") in keys
    assert {m["metric"] for m in body["metrics"] if m["driver"]} >= {"/payment requests_per_s"}
    slow = [z for z in body["zones"] if z["metric"] == "/payment latency_p95_ms" and z["direction"] == "above"]
    assert slow, body["zones"]
    zone = slow[0]
    # the fault added 300 ms to /payment from FAULT[0]: the zone starts within a step of it
    from telemetry.timefmt import parse_time
    assert abs(parse_time(zone["start"]) - FAULT[0]) <= 120 and zone["peak_ratio"] > 2
    workers = [z for z in body["zones"] if z["metric"] == "payment_workers"]
    assert [(z["direction"], z["peak_actual"], round(z["peak_expected"])) for z in workers] == [("below", 1.0, 4)]
    assert abs(parse_time(workers[0]["start"]) - FAULT[0]) <= 60
    # both latencies leave the band in the same minute; the engine's trace-based root cause breaks the tie
    cause = body["candidate_cause"]
    assert (cause["service"], cause["metric"]) == ("shop", "/payment latency_p95_ms"), body["zones"]
    # no zero traffic is invented after the last stored span
    assert not [z for z in body["zones"] if z["metric"].endswith("requests_per_s") and z["direction"] == "below"]
    assert body["window"]["history_s"] >= 3 * 3600 and body["window"]["step_s"] == 60
    point = body["metrics"][0]["points"][0]
    assert set(point) == {"t", "actual", "expected", "lower", "upper"}
    assert body["narrative"]["markdown"].startswith(f"# Resilience replay: {incident_id}")
    assert "/payment latency_p95_ms" in body["narrative"]["markdown"]
    assert body["plots"]["timeline"] == f"/aiops/incidents/{incident_id}/replay.png"
    lean = requests.get(f"{server.url}/aiops/incidents/{incident_id}/replay?points=0", timeout=120).json()
    assert "points" not in lean["metrics"][0] and lean["zones"] == body["zones"]


def test_replay_png_over_http(stored, server):
    _, incident_id = stored
    timeline = requests.get(f"{server.url}/aiops/incidents/{incident_id}/replay.png", timeout=120)
    assert timeline.status_code == 200 and timeline.headers["Content-Type"] == "image/png"
    assert timeline.content[:8] == b"\x89PNG\r\n\x1a\n"
    one = requests.get(f"{server.url}/aiops/incidents/{incident_id}/replay.png",
                       params={"metric": "shop:/payment latency_p95_ms"}, timeout=120)
    assert one.status_code == 200 and one.content[:4] == b"\x89PNG" and one.content != timeline.content
    bad = requests.get(f"{server.url}/aiops/incidents/{incident_id}/replay.png", params={"metric": "shop:cpu"},
                       timeout=120)
    assert bad.status_code == 404 and "shop:/payment latency_p95_ms" in bad.json()["detail"]


def test_replay_errors(stored, server, live_server, replay_app):
    unknown = requests.get(f"{server.url}/aiops/incidents/INC-0-0/replay", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"] == "incident INC-0-0 not found"
    assert requests.get(f"{server.url}/aiops/incidents/INC-0-0/replay.png", timeout=30).status_code == 404
    bad = requests.get(f"{server.url}/aiops/incidents/{stored[1]}/replay?points=yes", timeout=30)
    assert bad.status_code == 400 and "points must be" in bad.json()["detail"]
    # a margin reaching back to the first span leaves too little history before the window
    app = replay_app(AIOPS_REPLAY_MARGIN_S=14000)
    short = requests.get(f"{live_server(app).url}/aiops/incidents/{stored[1]}/replay", timeout=60)
    assert short.status_code == 422, short.text
    body = short.json()
    assert body["needed_points"] == 180 and body["found_points"] < 180 and body["needed_history_s"] == 10800
    assert "at least 180 points" in body["detail"]


def test_replay_config_is_validated(replay_app):
    with pytest.raises(ValueError, match="AIOPS_REPLAY_COVERAGE must be a number within"):
        replay_app(AIOPS_REPLAY_COVERAGE=2)
    with pytest.raises(ValueError, match="AIOPS_REPLAY_METHOD must be one of: gradient_boosting, seasonal_quantile"):
        replay_app(AIOPS_REPLAY_METHOD="prophet")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "aiops", "replay", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_replays_a_stored_incident(stored, tmp_path):
    db, incident_id = stored
    out = tmp_path / "out"
    done = cli("--incident", incident_id, "--db", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "replay.json").read_text())
    assert report["incident"]["id"] == incident_id
    assert (out / "replay.md").read_text() in done.stdout
    assert (out / "replay_timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "replay_shop_payment_latency_p95_ms.png").exists()
    missing = cli("--incident", "INC-nope", "--db", str(db), "--out", str(out))
    assert missing.returncode == 2 and "incident INC-nope not found" in missing.stderr


def test_cli_replays_the_shipped_csv_sample(tmp_path):
    out = tmp_path / "sample"
    done = cli("--metadata", str(SAMPLES / "incident_metadata.csv"), "--baseline",
               str(SAMPLES / "historical_baseline.csv.gz"), "--actual", str(SAMPLES / "actual_metrics.csv"),
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "replay.json").read_text())
    assert [c["service"] for c in report["cascade"]] == ["inventory", "checkout"]
    assert "inventory should have had ~6 pods; it stayed at 2" in done.stdout
    assert len(list(out.glob("replay_*.png"))) == 7  # six metrics and the timeline


def test_cli_reports_bad_input(tmp_path):
    bad = tmp_path / "actual_metrics.csv"
    bad.write_text("timestamp,service,metric,value\n2026-11-02T14:00:00Z,a,m,oops\n")
    done = cli("--metadata", str(SAMPLES / "incident_metadata.csv"), "--baseline", str(bad), "--actual", str(bad))
    assert done.returncode == 2 and f"{bad}: line 2, column 'value': 'oops' is not a finite number" in done.stderr
    half = cli("--metadata", str(SAMPLES / "incident_metadata.csv"))
    assert half.returncode == 2 and "go together" in half.stderr
    neither = cli()
    assert neither.returncode == 2 and "--incident ID is required" in neither.stderr
