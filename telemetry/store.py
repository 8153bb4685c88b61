"""The span store: a bounded in-memory queue, a writer thread, SQLite in WAL mode.

The request path only appends a tuple to a deque (``enqueue``). A single
writer thread per database file drains it in batches with ``executemany``,
deletes expired rows in small batches, and survives every database error: a
locked, read-only or full database costs the batch (counted in
``write_errors`` and logged at most once a minute), never a request.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from telemetry.lifecycle import keep_alive_hooks
from telemetry.logs import RateLimitedLog
from telemetry.schema import Migration, SchemaError, migrate

#: Page cache of the writer's connection (KiB): the trace-id index is written at random places.
WRITER_CACHE_KIB = 32768

#: Column order of a span tuple, as the middleware builds it and the table stores it.
SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "service", "route", "method", "path",
    "status_code", "start_time", "duration_ms", "error", "exception_type",
    "exception_message", "stacktrace",
)

#: The span table's schema, version by version (``telemetry.schema``); round one's files are at version 1.
SPAN_MIGRATIONS = (
    Migration(1, "spans with their time, route and trace indexes", (
        """CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,            -- 32 lowercase hex
    span_id TEXT NOT NULL,             -- 16 lowercase hex
    parent_span_id TEXT,               -- 16 lowercase hex, NULL for a root span
    service TEXT NOT NULL,             -- TELEMETRY_SERVICE_NAME of the writing app
    route TEXT NOT NULL,               -- http.route: the URL rule, or '<unmatched>'
    method TEXT NOT NULL,              -- http.request.method
    path TEXT NOT NULL,                -- raw path, capped at TELEMETRY_MAX_PATH_CHARS
    status_code INTEGER NOT NULL,      -- http.response.status_code
    start_time REAL NOT NULL,          -- epoch seconds
    duration_ms REAL NOT NULL,         -- WSGI entry until the body was sent or closed
    error INTEGER NOT NULL,            -- 1 if status >= 500 or an exception was raised
    exception_type TEXT,
    exception_message TEXT,
    stacktrace TEXT                    -- capped at TELEMETRY_MAX_STACKTRACE_CHARS
)""",
        "CREATE INDEX IF NOT EXISTS spans_by_time ON spans (start_time)",
        "CREATE INDEX IF NOT EXISTS spans_by_route_time ON spans (service, route, start_time)",
        "CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id)",
    )),
)

INSERT_SPAN = f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"


def connect(path: str, timeout_s: float = 5.0) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode (autocommit) with the span schema migrated."""
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        migrate(conn, "spans", SPAN_MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass
class StoreStats:
    """Counters since start: spans ``written``, ``dropped_spans`` (queue full
    or batch lost), ``write_errors`` (failed batches), ``queued`` (now)."""

    written: int
    dropped_spans: int
    write_errors: int
    queued: int


class SpanStore:
    """One per database file per process; use ``SpanStore.for_path``.

    ``max_queue`` (spans, default 10000) bounds memory; ``batch_size`` (spans,
    default 10000) bounds one transaction; ``flush_interval_s`` (default 0.2 s)
    is how long spans may wait before they are written; ``retention_s``
    (default 7 days) how long rows are kept, deleted every
    ``retention_check_s`` (default 60 s) in batches of ``delete_batch`` rows.
    """

    _by_path: dict[str, "SpanStore"] = {}
    _by_path_lock = threading.Lock()

    @classmethod
    def for_path(cls, path: str, **options) -> "SpanStore":
        """The store of ``path`` in this process, created on first use.

        Options of a later caller update the shared store (the last app to
        configure a file decides its queue size, intervals and retention).
        """
        key = os.path.abspath(path)
        with cls._by_path_lock:
            store = cls._by_path.get(key)
            if store is None:
                store = cls._by_path[key] = cls(key, **options)
            else:
                store.configure(**options)
            return store

    def __init__(self, path: str, max_queue: int = 10000, batch_size: int = 10000,
                 flush_interval_s: float = 0.2, retention_s: float = 7 * 86400.0,
                 retention_check_s: float = 60.0, delete_batch: int = 5000):
        self.path = path
        self.configure(max_queue, batch_size, flush_interval_s, retention_s, retention_check_s, delete_batch)
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flushed = threading.Condition(self._lock)
        self._flush_requests = 0
        self._flush_done = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._conn: sqlite3.Connection | None = None
        self._next_retention = 0.0
        self.written = 0
        self.dropped_spans = 0
        self.write_errors = 0
        self.warn = RateLimitedLog()
        self._listeners: tuple[Callable[[Sequence[tuple]], None], ...] = ()
        self._ensure_schema()
        keep_alive_hooks(self, at_exit=lambda store: store.close(timeout=2.0), after_fork=_after_fork)

    def configure(self, max_queue: int = 10000, batch_size: int = 10000, flush_interval_s: float = 0.2,
                  retention_s: float = 7 * 86400.0, retention_check_s: float = 60.0,
                  delete_batch: int = 5000) -> None:
        self.max_queue = int(max_queue)
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.retention_s = float(retention_s)
        self.retention_check_s = float(retention_check_s)
        self.delete_batch = int(delete_batch)

    # -- listeners ---------------------------------------------------------------

    def add_listener(self, listener: Callable[[Sequence[tuple]], None]) -> None:
        """Call ``listener(batch)`` on the writer thread after each committed
        batch (span tuples in ``SPAN_COLUMNS`` order). It must be quick and must
        not flush this store; what it raises is logged and never stops the writer."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Callable[[Sequence[tuple]], None]) -> None:
        """Stop calling ``listener`` (a listener never added is ignored)."""
        with self._lock:
            self._listeners = tuple(fn for fn in self._listeners if fn != listener)

    # -- request path ----------------------------------------------------------

    def enqueue(self, span: tuple) -> None:
        """Queue one span tuple (``SPAN_COLUMNS`` order). Never blocks: when
        the queue holds ``max_queue`` spans the span is dropped and counted."""
        queue = self._queue
        if len(queue) < self.max_queue:
            queue.append(span)
            if self._thread is None:
                self._start()
        else:
            self._drop(1, "queue full")

    # -- writer ------------------------------------------------------------------

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self.dropped_spans += count
        self.warn.warning("drop:" + why, "telemetry: dropped %d span(s) (%s); %d dropped so far",
                          count, why, self.dropped_spans)
        if self._thread is not None and not self._thread.is_alive() and not self._stopping:
            self._thread = None  # the writer died: start a new one on the next span
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name=f"telemetry-writer:{os.path.basename(self.path)}",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            with self._lock:
                target = self._flush_requests
            try:
                self._drain()
                self._expire()
            except Exception:  # never let the writer die
                self.warn.warning("writer", "telemetry: writer error", exc_info=True)
            with self._lock:
                self._flush_done = max(self._flush_done, target)
                self._flushed.notify_all()
                if self._stopping and not self._queue:
                    break
        self._reset_connection()  # the writer owns its connection: only it closes it

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch = []
            append, popleft = batch.append, queue.popleft
            try:
                for _ in range(self.batch_size):
                    append(popleft())
            except IndexError:
                pass
            self._write(batch)

    def _write(self, batch: Sequence[tuple]) -> None:
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                conn.executemany(INSERT_SPAN, batch)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.written += len(batch)
        except (sqlite3.Error, SchemaError) as exc:
            with self._lock:
                self.write_errors += 1
                self.dropped_spans += len(batch)
            self.warn.warning("write", "telemetry: could not write %d span(s) to %s: %s "
                              "(requests are unaffected; %d spans dropped so far)",
                              len(batch), self.path, exc, self.dropped_spans)
            self._reset_connection()
            return
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:  # a listener never stops the writer
                self.warn.warning("listener", "telemetry: span listener %r failed", listener, exc_info=True)

    def _expire(self) -> None:
        now = time.time()
        if now < self._next_retention or self.retention_s <= 0:
            return
        self._next_retention = now + self.retention_check_s
        cutoff = now - self.retention_s
        try:
            conn = self._connection()
            while True:  # small batches, so readers and the next insert never wait long
                deleted = conn.execute(
                    "DELETE FROM spans WHERE id IN (SELECT id FROM spans WHERE start_time < ? LIMIT ?)",
                    (cutoff, self.delete_batch)).rowcount
                if deleted < self.delete_batch or self._queue:
                    break
        except (sqlite3.Error, SchemaError) as exc:
            self.warn.warning("retention", "telemetry: retention delete failed on %s: %s", self.path, exc)
            self._reset_connection()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
            # Room for the index pages random trace ids touch (32 MiB, on the writer's connection only).
            self._conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        return self._conn

    def _reset_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None

    def _ensure_schema(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            connect(self.path).close()
        except (OSError, sqlite3.Error, SchemaError) as exc:
            self.warn.warning("schema", "telemetry: cannot open span store %s: %s "
                              "(the app runs; spans are dropped and counted until it is writable)", self.path, exc)

    # -- control -------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far; True if done within ``timeout`` s."""
        if self._thread is None and not self._queue:
            return True
        if self._thread is None or not self._thread.is_alive():
            self._thread = None
            self._start()
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_requests += 1
            target = self._flush_requests
            self._wake.set()
            while self._flush_done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._flushed.wait(remaining):
                    return not self._queue
        return not self._queue

    def close(self, timeout: float = 5.0) -> None:
        """Flush and stop the writer (run at interpreter exit)."""
        self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._reset_connection()
        # else: the writer is still busy (a locked database, a long queue); it
        # closes its connection itself when it returns. Never close it under it.
        with SpanStore._by_path_lock:
            if SpanStore._by_path.get(self.path) is self:
                del SpanStore._by_path[self.path]

    @classmethod
    def close_all(cls, timeout: float = 5.0) -> None:
        """Flush and stop every store of this process."""
        for store in list(cls._by_path.values()):
            store.close(timeout)

    def stats(self) -> StoreStats:
        return StoreStats(self.written, self.dropped_spans, self.write_errors, len(self._queue))


def flush(timeout: float = 5.0) -> bool:
    """Write every queued span of every store in this process (``telemetry.flush``); True if done in time."""
    return all(store.flush(timeout) for store in list(SpanStore._by_path.values()))


def _after_fork(store: SpanStore) -> None:
    """A forked child (gunicorn) has no writer thread: start afresh."""
    store._queue = deque()
    store._lock = threading.Lock()
    store._wake = threading.Event()
    store._flushed = threading.Condition(store._lock)
    store._thread = None
    store._conn = None
    store.warn.after_fork()


# -- reads (used by tests, the CLI and the analysis store) ------------------------


def read_spans(conn: sqlite3.Connection, where: str = "1", params: Iterable = (),
               order: str = "start_time", limit: int | None = None) -> list[dict]:
    """Rows of ``spans`` as dicts (``SPAN_COLUMNS`` keys)."""
    sql = f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [dict(zip(SPAN_COLUMNS, row)) for row in conn.execute(sql, tuple(params))]
