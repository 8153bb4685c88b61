"""The SLO count tables have one column per latency bucket: the last migration's columns are
``LATENCY_BUCKETS_MS`` (editing the tuple without a migration fails here), and ``SLOStore``
refuses a database whose columns do not match."""
import pytest

import aiops.slo.store as slo_store
from aiops.slo.definitions import LATENCY_BUCKETS_MS
from aiops.slo.store import COUNT_TABLES, MIGRATIONS, SLOStore
from aiops.store.database import Database
from telemetry.schema import SchemaError, migrate

WANTED = [f"le_{b}" for b in LATENCY_BUCKETS_MS]


def bucket_columns(conn, table):
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})") if row[1].startswith("le_")]


def test_the_last_migrations_bucket_columns_are_latency_buckets_ms(tmp_path):
    db = Database(tmp_path / "t.db")
    assert migrate(db.conn, "aiops.slo", MIGRATIONS) == MIGRATIONS[-1].version  # the tables as migrations leave them
    assert COUNT_TABLES == ("aiops_slo_minutes", "aiops_slo_hours", "aiops_request_totals")
    for table in COUNT_TABLES:
        assert bucket_columns(db.conn, table) == WANTED, (
            f"{table}: LATENCY_BUCKETS_MS changed without a migration of the count tables")
    assert SLOStore(db).bucket_columns("aiops_slo_hours") == WANTED


def test_a_database_lacking_a_bucket_column_is_refused(tmp_path):
    path = tmp_path / "t.db"
    SLOStore(path)
    db = Database(path)
    db.conn.execute("ALTER TABLE aiops_slo_hours DROP COLUMN le_500")  # as if a bucket had been added in code only
    with pytest.raises(SchemaError) as err:
        SLOStore(db)
    message = str(err.value)
    assert message.startswith("aiops.slo: aiops_slo_hours has no column for latency bucket(s) le_500: ")
    assert "aiops_slo_minutes" not in message and "without a migration" in message


def test_a_bucket_added_to_the_code_without_a_migration_is_refused(tmp_path, monkeypatch):
    SLOStore(tmp_path / "t.db")  # a database of today's buckets
    monkeypatch.setattr(slo_store, "LATENCY_BUCKETS_MS", (*LATENCY_BUCKETS_MS, 20000))
    with pytest.raises(SchemaError) as err:
        SLOStore(tmp_path / "t.db")
    for table in COUNT_TABLES:
        assert f"{table} has no column for latency bucket(s) le_20000" in str(err.value)
    monkeypatch.setattr(slo_store, "LATENCY_BUCKETS_MS", tuple(b for b in LATENCY_BUCKETS_MS if b != 75))
    with pytest.raises(SchemaError, match="aiops_slo_minutes has column.s. le_75 for bucket.s. not in "
                                          "LATENCY_BUCKETS_MS"):
        SLOStore(tmp_path / "t.db")
