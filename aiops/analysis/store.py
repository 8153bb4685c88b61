"""SQL of the analysis: span reads, baselines, the dependency graph, incidents and the lease.

Tables (prefixed ``aiops_``) live in the span store's file next to ``spans``,
over one ``aiops.store.database.Database``: baselines, incidents, the
dependency graph, and a lease that lets one process analyse at a time when
several share the file (progress marks are in the shared state table).

Every read of spans is bounded by the window or by row id, so the cost of
a pass grows with the window, not with the history.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from typing import Iterable

from aiops.analysis.baseline import Baseline
from aiops.analysis.incidents import OPEN_STATUSES, Incident
from aiops.analysis.rca import DependencyGraph
from aiops.signals import SeriesKey
from aiops.store.database import Database, open_database
from telemetry.schema import Migration
from telemetry.store import SPAN_COLUMNS

MIGRATIONS = (
    Migration(1, "baselines, incidents, the dependency graph and the analysis lease", (
        "CREATE TABLE IF NOT EXISTS aiops_baselines (service TEXT NOT NULL, route TEXT NOT NULL, data TEXT NOT NULL, "
        "updated_at REAL NOT NULL, PRIMARY KEY (service, route))",
        "CREATE TABLE IF NOT EXISTS aiops_incidents (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
        "severity TEXT NOT NULL, root_service TEXT NOT NULL, root_route TEXT NOT NULL, "
        "first_detected REAL NOT NULL, last_detected REAL NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS aiops_incidents_by_status ON aiops_incidents (status, first_detected)",
        "CREATE INDEX IF NOT EXISTS aiops_incidents_by_root ON aiops_incidents (root_service, root_route, "
        "first_detected)",
        "CREATE TABLE IF NOT EXISTS aiops_edges (caller_service TEXT NOT NULL, caller_route TEXT NOT NULL, "
        "callee_service TEXT NOT NULL, callee_route TEXT NOT NULL, calls INTEGER NOT NULL, errors INTEGER NOT NULL, "
        "offset_ms_total REAL NOT NULL, last_seen REAL NOT NULL, "
        "PRIMARY KEY (caller_service, caller_route, callee_service, callee_route))",
        "CREATE TABLE IF NOT EXISTS aiops_callers (service TEXT NOT NULL, route TEXT NOT NULL, "
        "spans INTEGER NOT NULL, PRIMARY KEY (service, route))",
        "CREATE TABLE IF NOT EXISTS aiops_lock (name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "expires_at REAL NOT NULL)",
    )),
)

_SPAN_SELECT = f"SELECT id, {', '.join(SPAN_COLUMNS)} FROM spans"
_SPAN_FIELDS = ("id",) + SPAN_COLUMNS


def _rows(cursor: Iterable[tuple]) -> list[dict]:
    return [dict(zip(_SPAN_FIELDS, row)) for row in cursor]


class AnalysisStore:
    """The analysis tables of one ``Database`` (or of the file at a path)."""

    def __init__(self, db: Database | str | os.PathLike, timeout_s: float = 10.0):
        self.db = open_database(db, timeout_s)
        self.path = self.db.path
        self.db.migrate("aiops.analysis", MIGRATIONS)

    @property
    def conn(self):
        return self.db.conn

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        return self.db.transaction()

    # -- spans -------------------------------------------------------------------

    def window_spans(self, start_s: float, end_s: float, columns: tuple[str, ...] | None = None) -> list[dict]:
        """Spans that started in [start_s, end_s] (uses the time index); with ``columns``
        (names of ``SPAN_COLUMNS``) only those keys, which reads a long window faster."""
        if columns is None:
            return _rows(self.conn.execute(f"{_SPAN_SELECT} WHERE start_time >= ? AND start_time <= ?",
                                           (start_s, end_s)))
        unknown = set(columns) - set(SPAN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown span columns {sorted(unknown)}; valid: {', '.join(SPAN_COLUMNS)}")
        cursor = self.conn.execute(f"SELECT {', '.join(columns)} FROM spans WHERE start_time >= ? AND start_time <= ?",
                                   (start_s, end_s))
        return [dict(zip(columns, row)) for row in cursor]

    def spans_after(self, last_id: int, limit: int) -> list[dict]:
        """Spans stored after row ``last_id``, oldest first, at most ``limit``."""
        return _rows(self.conn.execute(f"{_SPAN_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)))

    def first_span_id_since(self, start_s: float) -> int:
        """Row id just before the first span that started at or after ``start_s``."""
        # INDEXED BY: without it SQLite walks the rowids from the oldest span.
        row = self.conn.execute("SELECT min(id) FROM spans INDEXED BY spans_by_time WHERE start_time >= ?",
                                (start_s,)).fetchone()
        if row[0] is not None:
            return row[0] - 1
        row = self.conn.execute("SELECT max(id) FROM spans").fetchone()
        return row[0] or 0

    def trace(self, trace_id: str) -> list[dict]:
        return _rows(self.conn.execute(f"{_SPAN_SELECT} WHERE trace_id = ? ORDER BY start_time", (trace_id,)))

    def spans_of_traces(self, trace_ids: Iterable[str]) -> list[dict]:
        ids = list(trace_ids)
        out: list[dict] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out += _rows(self.conn.execute(
                f"{_SPAN_SELECT} WHERE trace_id IN ({', '.join('?' * len(chunk))})", chunk))
        return out

    def last_seen(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, float]:
        """Start time of the latest span of each series (one index lookup each)."""
        out = {}
        for service, route in keys:
            row = self.conn.execute("SELECT max(start_time) FROM spans WHERE service = ? AND route = ?",
                                    (service, route)).fetchone()
            if row[0] is not None:
                out[(service, route)] = row[0]
        return out

    # -- state -------------------------------------------------------------------

    def get_state(self, name: str, default: str | None = None) -> str | None:
        return self.db.get_state(name, default)

    def set_state(self, name: str, value) -> None:
        self.db.set_state(name, value)

    def next_incident_id(self, now_s: float) -> str:
        """``INC-<epoch s>-<n>``, n counting up in this store."""
        return f"INC-{int(now_s)}-{self.db.next_sequence('incident_seq')}"

    def try_lock(self, owner: str, ttl_s: float, now_s: float | None = None) -> bool:
        """Take or renew the analysis lease; False while another owner holds it."""
        now_s = time.time() if now_s is None else now_s
        with self.transaction() as conn:
            row = conn.execute("SELECT owner, expires_at FROM aiops_lock WHERE name = 'analysis'").fetchone()
            if row is not None and row[0] != owner and row[1] > now_s:
                return False
            conn.execute("INSERT INTO aiops_lock (name, owner, expires_at) VALUES ('analysis', ?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                         (owner, now_s + ttl_s))
            return True

    def release_lock(self, owner: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM aiops_lock WHERE name = 'analysis' AND owner = ?", (owner,))

    # -- baselines -----------------------------------------------------------------

    def load_baselines(self) -> dict[SeriesKey, Baseline]:
        """Every stored baseline (one that cannot be read is skipped and logged; the pass learns it anew)."""
        rows = (((s, r), d) for s, r, d in self.conn.execute("SELECT service, route, data FROM aiops_baselines"))
        return {b.key: b for b in self.db.decode_rows("aiops_baselines", rows, Baseline.from_dict)}

    def save_baselines(self, baselines: Iterable[Baseline]) -> None:
        self.conn.executemany(
            "INSERT INTO aiops_baselines (service, route, data, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(service, route) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            [(b.service, b.route, json.dumps(b.to_dict()), b.updated_at) for b in baselines])

    # -- dependency graph --------------------------------------------------------

    def load_graph(self) -> DependencyGraph:
        graph = DependencyGraph()
        for cs, cr, ds, dr, calls, errors, offset in self.conn.execute(
                "SELECT caller_service, caller_route, callee_service, callee_route, calls, errors, offset_ms_total "
                "FROM aiops_edges"):
            graph.edges[((cs, cr), (ds, dr))] = [calls, errors, offset]
        for service, route, spans in self.conn.execute("SELECT service, route, spans FROM aiops_callers"):
            graph.caller_spans[(service, route)] = spans
        return graph

    def add_to_graph(self, delta: DependencyGraph, now_s: float) -> None:
        self.conn.executemany(
            "INSERT INTO aiops_edges VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
            "calls = calls + excluded.calls, errors = errors + excluded.errors, "
            "offset_ms_total = offset_ms_total + excluded.offset_ms_total, last_seen = excluded.last_seen",
            [(c[0], c[1], d[0], d[1], calls, errors, offset, now_s)
             for (c, d), (calls, errors, offset) in delta.edges.items()])
        self.conn.executemany(
            "INSERT INTO aiops_callers VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET spans = spans + excluded.spans",
            [(k[0], k[1], n) for k, n in delta.caller_spans.items()])

    # -- incidents -------------------------------------------------------------------

    def save_incidents(self, incidents: Iterable[Incident]) -> None:
        self.conn.executemany(
            "INSERT INTO aiops_incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, severity = excluded.severity, root_service = excluded.root_service, "
            "root_route = excluded.root_route, last_detected = excluded.last_detected, data = excluded.data",
            [(i.id, i.status, i.severity, i.root_key[0], i.root_key[1], i.first_detected, i.last_detected,
              json.dumps(i.to_dict())) for i in incidents])

    # Every read of incidents skips (and logs once) a stored incident that cannot be read.

    def incidents(self, status: str | None = None, limit: int = 100) -> list[Incident]:
        """Newest first; ``status`` one of active, acknowledged, resolved, or None for all."""
        if status is None:
            cursor = self.conn.execute("SELECT id, data FROM aiops_incidents ORDER BY first_detected DESC LIMIT ?",
                                       (limit,))
        else:
            cursor = self.conn.execute("SELECT id, data FROM aiops_incidents WHERE status = ? "
                                       "ORDER BY first_detected DESC LIMIT ?", (status, limit))
        return self.db.decode_rows("aiops_incidents", cursor, Incident.from_dict)

    def open_incidents(self) -> list[Incident]:
        cursor = self.conn.execute(
            f"SELECT id, data FROM aiops_incidents WHERE status IN ({', '.join('?' * len(OPEN_STATUSES))}) "
            "ORDER BY first_detected", OPEN_STATUSES)
        return self.db.decode_rows("aiops_incidents", cursor, Incident.from_dict)

    def incidents_with_root(self, key: SeriesKey, since_s: float) -> list[Incident]:
        cursor = self.conn.execute("SELECT id, data FROM aiops_incidents WHERE root_service = ? AND root_route = ? "
                                   "AND first_detected >= ? ORDER BY first_detected", (key[0], key[1], since_s))
        return self.db.decode_rows("aiops_incidents", cursor, Incident.from_dict)

    def incident(self, incident_id: str) -> Incident | None:
        row = self.conn.execute("SELECT id, data FROM aiops_incidents WHERE id = ?", (incident_id,)).fetchone()
        return self.db.decode_row("aiops_incidents", row, Incident.from_dict)

def new_owner_id() -> str:
    """A lease owner id unique to this process and extension instance."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
