"""python -m simulation: list, run in-process and against a server, record/playback, interactive, validate."""
import io
import json
import subprocess
import sys
from pathlib import Path

from simulation.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_list_prints_the_scenarios_table():
    out = subprocess.run([sys.executable, "-m", "simulation", "--list"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for sid in ("memory_leak_gradual", "cpu_spike_traffic_surge", "latency_spike_database", "pod_crash_loop",
                "dependency_failure_timeout"):
        assert sid in out.stdout
    assert "Incident scenarios" in out.stdout and "critical" in out.stdout


def test_unknown_scenario_and_bad_usage_exit_2(capsys):
    assert main(["disk_full"]) == 2
    assert "valid scenarios: memory_leak_gradual" in capsys.readouterr().out.replace("\n", "")
    assert main([]) == 2
    assert main(["play"]) == 2


def test_run_in_process_with_narrative_record_and_playback(tmp_path, capsys):
    recording = tmp_path / "leak.json"
    assert main(["memory_leak_gradual", "--narrative", "--record", str(recording)]) == 0
    out = capsys.readouterr().out
    for fragment in ("Scenario", "inject", "detect", "Hypotheses", "Memory leak", "Recommended actions",
                     "Rolling restart of payment-service", "What if", "score 1.00 (pass)", "/aiops/incidents/INC-",
                     "Diagnosis", "What to do"):
        assert fragment in out, fragment
    data = json.loads(recording.read_text())
    assert data["format"] == "aiops-simulation/1" and data["scenario_id"] == "memory_leak_gradual"
    assert len(data["points"]) == 4 * 421 and data["outcome"]["hypotheses"][0]["category"] == "memory_leak"
    assert set(data["truth"]) == {"memory_usage_bytes", "heap_allocations", "gc_collections", "cpu_usage_percent"}
    assert main(["play", str(recording)]) == 0
    out = capsys.readouterr().out
    assert "Playback" in out and "replayed outcome matches the recording" in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "other"}')
    assert main(["play", str(broken)]) == 2
    assert "not a simulation recording" in capsys.readouterr().out


def test_run_against_a_running_server_and_via_its_api(live_server, demo_app, capsys):
    app = demo_app(DEMO_LATENCY_SCALE=0.2)
    server = live_server(app)
    assert main(["pod_crash_loop", "--url", server.url, "--json"]) == 0
    out = capsys.readouterr().out
    record = json.loads(out[out.index("{\n"):])
    assert record["status"] == "completed" and record["hypotheses"][0]["category"] == "bad_deployment"
    assert record["incident_url"].startswith(server.url + "/aiops/incidents/")
    assert main(["cpu_spike_traffic_surge", "--url", server.url, "--via-api"]) == 0
    out = capsys.readouterr().out
    assert "Capacity saturation" in out and "score 1.00 (pass)" in out
    listed = app.test_client().get("/api/v1/simulator/simulations").get_json()
    assert [s["scenario_id"] for s in listed] == ["cpu_spike_traffic_surge"]


def test_interactive_menu_runs_the_chosen_scenario(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("4\nn\nq\n"))
    assert main(["--interactive"]) == 0
    out = capsys.readouterr().out
    assert "Run which scenario?" in out and "Pod Crash Loop" in out and "Bad deployment" in out


def test_validate_scores_every_scenario(capsys):
    """The validation command is also the test: every scenario's outcome matches its expectation."""
    assert main(["validate", "--json"]) == 0
    out = capsys.readouterr().out
    assert "Scenario validation (seed 0)" in out and "6/6 scenarios passed" in out
    rows = json.loads(out[out.index("[\n"):])
    assert [r["scenario"] for r in rows][:5] == ["memory_leak_gradual", "cpu_spike_traffic_surge",
                                                 "latency_spike_database", "pod_crash_loop",
                                                 "dependency_failure_timeout"]
    for row in rows:
        assert row["passed"] and row["root_cause"]["got"] == row["root_cause"]["expected"], row
        assert set(row["actions"]["expected"]) <= set(row["actions"]["top_three"]), row
