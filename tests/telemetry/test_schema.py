"""The migrations runner on real SQLite files: fresh and existing databases, order, failure
and rollback, a database newer than the code, numbering, two processes at once, and the
statements it sends (only the backend's and portable SQL)."""
import json
import multiprocessing
import os
import sqlite3
import time

import pytest

from telemetry.schema import SQLITE, Backend, Migration, SchemaError, current_version, migrate


def open_db(path, timeout_s: float = 10.0) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=timeout_s, isolation_level=None)


def tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(conn, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


V1 = Migration(1, "incidents", ("CREATE TABLE incidents (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
                                "CREATE INDEX incidents_by_id ON incidents (id)"))


def _backfill_team(conn) -> None:
    """Version 2's backfill: the team of each incident, from the service in its JSON."""
    for ident, data in conn.execute("SELECT id, data FROM incidents").fetchall():
        conn.execute("UPDATE incidents SET team = ? WHERE id = ?", (f"team-{json.loads(data)['service']}", ident))


V2 = Migration(2, "incidents get a team, backfilled from their service",
               ("ALTER TABLE incidents ADD COLUMN team TEXT NOT NULL DEFAULT 'unknown'",), _backfill_team)
V3 = Migration(3, "a deployments table", ("CREATE TABLE deployments (id TEXT PRIMARY KEY)",))


def test_a_fresh_database_gets_every_version(tmp_path):
    conn = open_db(tmp_path / "fresh.db")
    assert current_version(conn, "shop") == 0
    assert migrate(conn, "shop", (V1, V2, V3)) == 3
    assert {"incidents", "deployments", "schema_versions"} <= tables(conn)
    assert columns(conn, "incidents") == ["id", "data", "team"]
    assert conn.execute("SELECT component, version FROM schema_versions").fetchall() == [("shop", 3)]
    assert current_version(conn, "other") == 0  # versions are per component


def test_migrations_apply_in_order_and_only_once(tmp_path):
    applied = []

    def step(n):
        return Migration(n, f"step {n}", (f"CREATE TABLE t{n} (x)",), lambda conn: applied.append(n))

    path = tmp_path / "order.db"
    assert migrate(open_db(path), "c", [step(1), step(2), step(3)]) == 3
    assert migrate(open_db(path), "c", [step(1), step(2), step(3)]) == 3  # a second start: nothing pending
    assert applied == [1, 2, 3]
    assert migrate(open_db(path), "c", [step(1), step(2), step(3), step(4)]) == 4  # new code: only the new one
    assert applied == [1, 2, 3, 4]


def test_a_pending_migration_runs_on_an_existing_database_and_keeps_its_data(tmp_path):
    path = tmp_path / "existing.db"
    conn = open_db(path)
    migrate(conn, "incidents", (V1,))
    rows = [(f"INC-{i}", json.dumps({"service": s, "n": i})) for i, s in enumerate(["shop", "pay", "shop"])]
    conn.executemany("INSERT INTO incidents (id, data) VALUES (?, ?)", rows)
    conn.close()

    conn = open_db(path)  # the next release starts on it
    assert migrate(conn, "incidents", (V1, V2)) == 2
    assert conn.execute("SELECT id, data, team FROM incidents ORDER BY id").fetchall() == [
        ("INC-0", rows[0][1], "team-shop"), ("INC-1", rows[1][1], "team-pay"), ("INC-2", rows[2][1], "team-shop")]
    conn.execute("INSERT INTO incidents (id, data) VALUES ('INC-9', '{}')")  # the default serves new rows
    assert conn.execute("SELECT team FROM incidents WHERE id = 'INC-9'").fetchone() == ("unknown",)


def test_a_failing_migration_rolls_back_entirely_and_names_component_and_version(tmp_path):
    path = tmp_path / "fail.db"
    conn = open_db(path)
    migrate(conn, "incidents", (V1,))
    conn.execute("INSERT INTO incidents (id, data) VALUES ('INC-1', '{\"service\": \"shop\"}')")
    broken = Migration(3, "a typo", ("CREATE TABLE half_done (x)",
                                     "INSERT INTO incidents (id, data) VALUES ('X', '{}')",
                                     "ALTER TABLE no_such_table ADD COLUMN y"))
    with pytest.raises(SchemaError) as err:
        migrate(conn, "incidents", (V1, V2, broken))
    message = str(err.value)
    assert "incidents" in message and "version 3" in message and "a typo" in message and "no_such_table" in message
    assert "still at version 1" in message
    # nothing of versions 2 and 3 is left: no table, no column, no row, the version unchanged
    assert "half_done" not in tables(conn)
    assert columns(conn, "incidents") == ["id", "data"]
    assert conn.execute("SELECT id FROM incidents").fetchall() == [("INC-1",)]
    assert current_version(conn, "incidents") == 1
    assert not conn.in_transaction

    def failing_apply(conn):
        conn.execute("INSERT INTO incidents (id, data) VALUES ('Y', '{}')")
        raise KeyError("service")

    with pytest.raises(SchemaError, match=r"incidents: migration to version 2 .*KeyError"):
        migrate(conn, "incidents", (V1, Migration(2, "backfill", ("CREATE TABLE t2 (x)",), failing_apply)))
    assert "t2" not in tables(conn) and conn.execute("SELECT count(*) FROM incidents").fetchone() == (1,)
    assert migrate(conn, "incidents", (V1, V2)) == 2  # once fixed, the same database upgrades


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "newer.db"
    migrate(open_db(path), "incidents", (V1, V2, V3))
    conn = open_db(path)
    with pytest.raises(SchemaError, match=r"incidents: the database is at schema version 3, newer than this code "
                                          r"knows \(2\); upgrade the package"):
        migrate(conn, "incidents", (V1, V2))
    assert current_version(conn, "incidents") == 3 and "deployments" in tables(conn)


@pytest.mark.parametrize("versions", [[2], [1, 3], [1, 1], [2, 1], [0, 1]])
def test_migrations_must_be_numbered_one_to_n(tmp_path, versions):
    conn = open_db(tmp_path / "n.db")
    with pytest.raises(ValueError) as err:
        migrate(conn, "c", [Migration(v, "x") for v in versions])
    assert str(err.value) == f"c: migrations must be numbered 1, 2, 3 ... in order, got {versions}"
    assert "schema_versions" not in tables(conn)


def test_no_migrations_is_version_zero(tmp_path):
    conn = open_db(tmp_path / "none.db")
    assert migrate(conn, "empty", ()) == 0 and tables(conn) == set()


# -- two processes at once ---------------------------------------------------------------------------


def _log_once(conn) -> None:
    conn.execute("INSERT INTO migration_log (version, pid) VALUES (2, ?)", (os.getpid(),))
    time.sleep(0.3)  # hold the lock a while: the other process is waiting for it meanwhile


RACE = (Migration(1, "the log", ("CREATE TABLE migration_log (version INTEGER, pid INTEGER)",),
                  lambda conn: conn.execute("INSERT INTO migration_log (version, pid) VALUES (1, ?)",
                                            (os.getpid(),))),
        Migration(2, "a slow step", (), _log_once))


def _migrate_in_child(path, barrier, results) -> None:
    conn = open_db(path, timeout_s=30.0)
    seen_before = current_version(conn, "race")
    barrier.wait(30)
    try:
        results.put((os.getpid(), seen_before, migrate(conn, "race", RACE)))
    except Exception as exc:  # reported, so the test shows it
        results.put((os.getpid(), seen_before, repr(exc)))


def test_two_processes_migrating_one_file_apply_each_migration_once(tmp_path):
    path = str(tmp_path / "race.db")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_migrate_in_child, args=(path, barrier, results)) for _ in range(2)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert [o[2] for o in outcomes] == [2, 2], outcomes          # both end at the last version
    assert [o[1] for o in outcomes] == [0, 0]                    # both found nothing migrated before the race
    conn = open_db(path)
    log = conn.execute("SELECT version, pid FROM migration_log ORDER BY version").fetchall()
    assert [v for v, _ in log] == [1, 2]                         # each migration exactly once
    assert log[0][1] == log[1][1] and log[0][1] in {o[0] for o in outcomes}  # by one process, in one transaction
    assert current_version(conn, "race") == 2


# -- backend-neutral -----------------------------------------------------------------------------------


def test_the_runner_sends_only_the_backends_statements_and_portable_sql(tmp_path):
    """Every statement that is not a migration's own comes from the ``Backend`` or is portable
    SQL with its placeholder: a second backend (PostgreSQL) needs nothing but another ``Backend``."""
    backend = Backend("sqlite-exclusive", ("BEGIN EXCLUSIVE",),
                      table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      commit="END", versions_table=SQLITE.versions_table.replace("REAL", "DOUBLE PRECISION"))
    deployments = Migration(2, "deployments", V3.statements)
    conn = open_db(tmp_path / "neutral.db")
    sent: list[str] = []
    conn.set_trace_callback(sent.append)
    assert migrate(conn, "c", (V1, deployments), backend) == 2
    conn.set_trace_callback(None)
    own = {*V1.statements, *deployments.statements}
    runner = [s for s in sent if s not in own]
    assert runner[:2] == ["SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'",
                          "BEGIN EXCLUSIVE"]
    assert runner[2] == backend.versions_table and runner[-1] == "END"
    portable = [s for s in runner[3:-1] if not s.startswith("SELECT 1 FROM sqlite_master")]
    assert portable == ["SELECT version FROM schema_versions WHERE component = 'c'", portable[1]]
    assert portable[1].startswith("INSERT INTO schema_versions (component, version, updated_at) VALUES ('c', 2, ")
    assert "ON CONFLICT (component) DO UPDATE SET" in portable[1]
    assert not any("PRAGMA" in s or "sqlite" in s.lower() for s in portable)
    assert columns(conn, "schema_versions") == ["component", "version", "updated_at"]

    sent.clear()
    conn.set_trace_callback(sent.append)
    migrate(conn, "c", (V1, deployments), backend)  # nothing pending: reads only, no lock
    assert not any(s.startswith(("BEGIN", "INSERT", "CREATE")) for s in sent)
