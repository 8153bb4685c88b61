"""``aiops schema --db FILE``: each component's stored version beside the latest, read-only."""
import hashlib
import json
import subprocess
import sys

from aiops import AIOps
from aiops.cli import SCHEMAS
from tests.aiops.store.round_one import ROOT, make_app, raw


def cli(*args):
    return subprocess.run([sys.executable, "-m", "aiops", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_schema_shows_pending_then_up_to_date_and_changes_nothing(copy, fixture_clock):
    before = digest(copy)
    pending = cli("schema", "--db", str(copy), "--json")
    assert pending.returncode == 0, pending.stderr
    rows = json.loads(pending.stdout)["components"]
    assert [r["component"] for r in rows] == list(SCHEMAS)
    assert all(r["version"] == 0 and r["latest"] >= 1 and r["state"].startswith("pending") for r in rows)
    assert digest(copy) == before  # read-only: round one's file is as it was
    assert "schema_versions" not in {r[0] for r in raw(copy, "SELECT name FROM sqlite_master")}

    AIOps.shutdown(make_app(copy))  # today's code starts on it once
    table = cli("schema", "--db", str(copy))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["component", "version", "latest", "state"]
    assert {line.split()[0]: line.split(None, 3)[3] for line in lines[1:]} == {c: "up to date" for c in SCHEMAS}


def test_schema_names_a_newer_database_and_a_missing_file(copy, tmp_path):
    raw(copy, "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL, "
              "updated_at REAL NOT NULL)")
    raw(copy, "INSERT INTO schema_versions VALUES ('aiops.slo', 99, 0), ('aiops.otlp', 1, 0)")
    rows = {r["component"]: r for r in json.loads(cli("schema", "--db", str(copy), "--json").stdout)["components"]}
    assert rows["aiops.slo"]["version"] == 99 and rows["aiops.slo"]["state"].startswith("newer than this code")
    assert rows["aiops.otlp"] == {"component": "aiops.otlp", "version": 1, "latest": None,
                                  "state": "unknown to this code"}
    missing = cli("schema", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "no database at" in missing.stderr
    (tmp_path / "text.db").write_text("not sqlite, just text that is long enough to be read as a header" * 4)
    foreign = cli("schema", "--db", str(tmp_path / "text.db"))
    assert foreign.returncode == 2 and "is not a SQLite database" in foreign.stderr
