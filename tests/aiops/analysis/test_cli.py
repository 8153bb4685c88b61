"""python -m aiops incidents / analyze against a real store file, in a subprocess."""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aiops.testing.synthetic import shop_routes
from tests.aiops.helpers import Run, fault

ROOT = Path(__file__).resolve().parents[3]
RATES = {("shop", "/inventory"): 3, ("shop", "/payment"): 3, ("shop", "/checkout"): 5}


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "aiops", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "t.db"
    run = Run(db, shop_routes(), RATES, 900, [fault(("shop", "/payment"), "error", 500, 600, 1.0)])
    run.store.release_lock(run.analyzer.owner)  # the replay's clock is in the future: let the CLI analyse
    return db


def test_incidents_json_and_table(store_file):
    listed = cli("incidents", "--db", str(store_file), "--status", "all", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert body["incident_count"] == 1
    incident = body["incidents"][0]
    assert incident["root_cause"]["endpoint"] == "/payment" and "/checkout" in incident["affected_endpoints"]
    table = cli("incidents", "--db", str(store_file), "--status", "all")
    assert table.returncode == 0 and incident["id"] in table.stdout and "/payment" in table.stdout
    one = cli("incidents", "--db", str(store_file), "--id", incident["id"])
    assert one.returncode == 0 and "timeline" in one.stdout and "sample traces" in one.stdout
    assert json.loads(cli("incidents", "--db", str(store_file), "--json").stdout)["incident_count"] == 0  # resolved


def test_analyze_runs_a_pass(store_file):
    result = cli("analyze", "--db", str(store_file), "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["skipped"] is None and {"anomalies", "incidents", "spans_in_window"} <= set(body)
    assert "analysed" in cli("analyze", "--db", str(store_file)).stdout


def test_bad_input_exits_2_saying_what_was_expected(store_file, tmp_path):
    missing = cli("incidents", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "no span store at" in missing.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    foreign = cli("analyze", "--db", str(other))
    assert foreign.returncode == 2 and "has no spans table" in foreign.stderr
    unknown = cli("incidents", "--db", str(store_file), "--id", "INC-0-0")
    assert unknown.returncode == 2 and "INC-0-0 not found" in unknown.stderr
    import os
    bad_env = cli("analyze", "--db", str(store_file), env={**os.environ, "AIOPS_WINDOW_S": "soon"})
    assert bad_env.returncode == 2 and "AIOPS_WINDOW_S must be a number" in bad_env.stderr
