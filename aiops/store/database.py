"""What every aiops store shares: one database file, a connection per thread, short
exclusive transactions, the key-value state table and the components' migrations.

Each feature keeps its own tables in its own store module (``aiops/<feature>/store.py``),
built over one ``Database``: the feature's SQL lives there and nowhere else.
The file is the span store's (``AIOPS_DB_PATH``, default ``TELEMETRY_DB_PATH``).
"""
from __future__ import annotations

import os
import sqlite3
import threading
from typing import Sequence

from telemetry.schema import Migration, SQLITE, migrate
from telemetry.store import connect

#: The state table every feature keeps progress marks and id sequences in.
STATE_MIGRATIONS = (
    Migration(1, "key-value state", ("CREATE TABLE IF NOT EXISTS aiops_state (name TEXT PRIMARY KEY, "
                                     "value TEXT NOT NULL)",)),
)


class Database:
    """One SQLite file in WAL mode: ``conn`` is this thread's connection (a new
    one after a fork), ``transaction()`` a ``BEGIN IMMEDIATE`` block.
    ``timeout_s`` (default 10 s) is how long a statement waits for a lock."""

    backend = SQLITE

    def __init__(self, path: str | os.PathLike, timeout_s: float = 10.0):
        self.path = os.path.abspath(os.fspath(path))
        self.timeout_s = timeout_s
        self._local = threading.local()
        self.migrate("aiops.state", STATE_MIGRATIONS)

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = connect(self.path, self.timeout_s)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def transaction(self) -> "Transaction":
        """``with db.transaction() as conn``: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""
        return Transaction(self.conn)

    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Bring ``component``'s tables to their last version (see ``telemetry.schema``)."""
        return migrate(self.conn, component, migrations, self.backend)

    # -- state -------------------------------------------------------------------

    def get_state(self, name: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM aiops_state WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set_state(self, name: str, value) -> None:
        self.conn.execute("INSERT INTO aiops_state (name, value) VALUES (?, ?) "
                          "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, str(value)))

    def next_sequence(self, name: str) -> int:
        """The next number of the sequence ``name`` (1, 2, ...); call inside a transaction."""
        n = int(self.get_state(name, "0")) + 1
        self.set_state(name, n)
        return n


    # -- spans (the telemetry table every feature reads) ---------------------------------

    def span_rows(self, start_s: float, end_s: float) -> list[tuple]:
        """``(service, route, start_time, duration_ms, error)`` of every span that started in
        [start_s, end_s) (epoch seconds; the span table's time index): the five columns the
        dashboard's and the replay's per-bucket series need, as tuples, several times cheaper
        than whole rows as dicts over a day of spans."""
        return self.conn.execute("SELECT service, route, start_time, duration_ms, error FROM spans "
                                 "WHERE start_time >= ? AND start_time < ?", (start_s, end_s)).fetchall()


class Transaction:
    """``with db.transaction() as conn``: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def open_span_store(path: str) -> Database:
    """The ``Database`` of an existing span store file; ``ValueError`` saying why when
    ``path`` is missing, not SQLite, or has no spans table (not a ``TELEMETRY_DB_PATH``)."""
    if not os.path.isfile(path):
        raise ValueError(f"no span store at {path}: pass --db FILE (the TELEMETRY_DB_PATH of your app)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            has_spans = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spans'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a SQLite database: {exc}") from None
    if not has_spans:
        raise ValueError(f"{path} has no spans table: is it the TELEMETRY_DB_PATH of an app with Telemetry?")
    return Database(path)


def open_database(path_or_db: "Database | str | os.PathLike", timeout_s: float = 10.0) -> Database:
    """``path_or_db`` as a ``Database`` (a path opens one)."""
    return path_or_db if isinstance(path_or_db, Database) else Database(path_or_db, timeout_s)
