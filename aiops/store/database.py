"""What every aiops store shares: one database file, a connection per thread, short
exclusive transactions, the key-value state table, the components' migrations, and
stored JSON read tolerantly (``Database.decode_rows``: a record that cannot be read is
skipped and logged once, never failing a pass).

Each feature keeps its own tables in its own store module (``aiops/<feature>/store.py``),
built over one ``Database``: the feature's SQL lives there and nowhere else.
The file is the span store's (``AIOPS_DB_PATH``, default ``TELEMETRY_DB_PATH``).
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from typing import Any, Callable, Iterable, Sequence, TypeVar

from telemetry.schema import SQLITE, Backend, Migration, migrate
from telemetry.store import connect

log = logging.getLogger("aiops")
T = TypeVar("T")
#: What a decoder raises on a stored record it cannot read (``aiops.records.from_known`` raises ValueError).
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError)

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
        self._skipped: set[tuple[str, str]] = set()
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
        return Transaction(self.conn, self.backend)

    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Bring ``component``'s tables to their last version (see ``telemetry.schema``)."""
        return migrate(self.conn, component, migrations, self.backend)

    # -- stored JSON, read tolerantly ----------------------------------------------

    def decode_rows(self, table: str, rows: Iterable[tuple[Any, str]], decode: Callable[[Any], T]) -> list[T]:
        """``decode(json.loads(text))`` of each ``(key, text)`` row of ``table``, in order. A row whose JSON
        is unreadable, or that ``decode`` refuses (``UNREADABLE``: a missing required field, a value of the
        wrong shape), is skipped and logged once per table and key on the ``aiops`` logger: one bad record
        never stops a pass or a listing."""
        out = []
        for key, text in rows:
            try:
                out.append(decode(json.loads(text)))
            except UNREADABLE as exc:
                self._skip(table, key, exc)
        return out

    def decode_row(self, table: str, row: tuple[Any, str] | None, decode: Callable[[Any], T]) -> T | None:
        """``decode_rows`` of one row (``None`` when there is none, or it cannot be read)."""
        found = self.decode_rows(table, [row] if row is not None else [], decode)
        return found[0] if found else None

    def _skip(self, table: str, key: Any, exc: Exception) -> None:
        mark = (table, str(key))
        if mark in self._skipped:
            return
        self._skipped.add(mark)
        log.warning("aiops: skipped the stored row %s of %s in %s: it cannot be read (%s: %s)",
                    mark[1], table, self.path, type(exc).__name__, exc)

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
    """``with db.transaction() as conn``: the backend's exclusive begin (SQLite: BEGIN IMMEDIATE) ...
    COMMIT, ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection, backend: Backend = SQLITE):
        self.conn = conn
        self.backend = backend

    def __enter__(self) -> sqlite3.Connection:
        for statement in self.backend.begin_exclusive:
            self.conn.execute(statement)
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute(self.backend.commit if exc_type is None else self.backend.rollback)


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


def recorded_versions(path: str) -> dict[str, int]:
    """Every component's schema version recorded in the SQLite file at ``path`` (empty when none is),
    read-only: nothing is created or migrated. ``ValueError`` saying why when ``path`` is missing or
    not SQLite."""
    if not os.path.isfile(path):
        raise ValueError(f"no database at {path}: pass --db FILE (the TELEMETRY_DB_PATH of your app)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute(SQLITE.table_exists, ("schema_versions",)).fetchone() is None:
                return {}
            return dict(conn.execute("SELECT component, version FROM schema_versions ORDER BY component"))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a SQLite database: {exc}") from None


def open_database(path_or_db: "Database | str | os.PathLike", timeout_s: float = 10.0) -> Database:
    """``path_or_db`` as a ``Database`` (a path opens one)."""
    return path_or_db if isinstance(path_or_db, Database) else Database(path_or_db, timeout_s)
