"""SQL of pushed metrics: the ``aiops_metrics`` table (points of ``POST /aiops/metrics/ingest``).

A batch is stored in one transaction or not at all; reads are bounded by
series and time (indexes on (service, name, ts) and on ts).
"""
from __future__ import annotations

import json
import os
from typing import Iterable

from aiops.metrics.model import MetricPoint
from aiops.store.database import Database, open_database
from telemetry.schema import Migration

MIGRATIONS = (
    Migration(1, "pushed metric points with series and time indexes", (
        "CREATE TABLE IF NOT EXISTS aiops_metrics (ts REAL NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, "
        "value REAL NOT NULL, labels TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS aiops_metrics_by_series ON aiops_metrics (service, name, ts)",
        "CREATE INDEX IF NOT EXISTS aiops_metrics_by_time ON aiops_metrics (ts)",
    )),
)


class MetricStore:
    """Pushed metric points in one ``Database`` (or the file at a path)."""

    def __init__(self, db: Database | str | os.PathLike, timeout_s: float = 10.0):
        self.db = open_database(db, timeout_s)
        self.db.migrate("aiops.metrics", MIGRATIONS)

    @property
    def conn(self):
        return self.db.conn

    def transaction(self):
        return self.db.transaction()

    def close(self) -> None:
        self.db.close()

    def insert_metrics(self, points: Iterable[MetricPoint]) -> int:
        """Store every point in one transaction (all or nothing); returns how many."""
        encoded: dict[str, str] = {}  # batches repeat a few label sets: encode each once
        rows = []
        for p in points:
            labels = p.labels
            if labels:
                key = str(labels)  # not items(): True, 1 and 1.0 are equal keys but encode differently
                text = encoded.get(key)
                if text is None:
                    text = encoded[key] = json.dumps(labels, sort_keys=True, separators=(",", ":"))
            else:
                text = "{}"
            rows.append((p.timestamp_s, p.service, p.name, p.value, text))
        if not rows:
            return 0
        with self.transaction() as conn:
            conn.executemany("INSERT INTO aiops_metrics (ts, service, name, value, labels) VALUES (?, ?, ?, ?, ?)",
                             rows)
        return len(rows)

    def metric_series(self, service: str | None = None, name: str | None = None, start_s: float | None = None,
                      end_s: float | None = None, limit: int | None = None) -> list[MetricPoint]:
        """Points matching every given filter (times inclusive), oldest first."""
        where, params = [], []
        for column, op, value in (("service", "=", service), ("name", "=", name), ("ts", ">=", start_s),
                                  ("ts", "<=", end_s)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        sql = "SELECT ts, service, name, value, labels FROM aiops_metrics"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [MetricPoint(ts, svc, nm, value, json.loads(labels) if labels != "{}" else {})
                for ts, svc, nm, value, labels in self.conn.execute(sql, params)]

    def metric_rows_after(self, last_id: int, limit: int) -> list[tuple[int, str, str, float]]:
        """(row id, service, name, ts) of points stored after row ``last_id``, oldest row first."""
        return list(self.conn.execute("SELECT rowid, service, name, ts FROM aiops_metrics WHERE rowid > ? "
                                      "ORDER BY rowid LIMIT ?", (last_id, limit)))

    def first_metric_id_since(self, start_s: float) -> int:
        """Row id just before the first point stamped at or after ``start_s`` (0 when none)."""
        row = self.conn.execute("SELECT min(rowid) FROM aiops_metrics INDEXED BY aiops_metrics_by_time "
                                "WHERE ts >= ?", (start_s,)).fetchone()
        if row[0] is not None:
            return row[0] - 1
        row = self.conn.execute("SELECT max(rowid) FROM aiops_metrics").fetchone()
        return row[0] or 0

    def metric_series_rows(self, service: str, name: str, start_s: float,
                           end_s: float) -> list[tuple[int, MetricPoint]]:
        """(row id, point) of one series in [start_s, end_s], oldest first."""
        return [(rowid, MetricPoint(ts, service, name, value, json.loads(labels) if labels != "{}" else {}))
                for rowid, ts, value, labels in self.conn.execute(
                    "SELECT rowid, ts, value, labels FROM aiops_metrics WHERE service = ? AND name = ? "
                    "AND ts >= ? AND ts <= ? ORDER BY ts, rowid", (service, name, start_s, end_s))]

    def metric_names(self) -> list[tuple[str, str]]:
        """Every (service, name) with at least one point, sorted."""
        return [(s, n) for s, n in self.conn.execute(
            "SELECT DISTINCT service, name FROM aiops_metrics ORDER BY service, name")]
