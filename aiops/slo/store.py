"""SQL of the SLO part: services, SLOs, per-minute request counts, burn
history, SLO alerts, the release audit trail and per-process telemetry stats.

Tables live in the span store's SQLite file, prefixed ``aiops_``.

Request counting: ``rollup`` folds spans stored since the last call (by row
id, in chunks, inside ``BEGIN IMMEDIATE`` so two processes never count a
span twice) into

* ``aiops_slo_minutes``: per service, route and minute: requests, errors and
  requests within each latency bucket; plus one row per service and minute
  with route ``*`` (all routes). A 30-day SLO reads at most 43,200 rows,
  whatever the traffic, and the counts outlive span retention (7 days by
  default);
* ``aiops_request_totals``: all-time counts per service, route, method and
  status code, with latency buckets and sum: the Prometheus request
  histogram, shared by every process that writes the file.

The counting itself is SQL (``INSERT ... SELECT ... GROUP BY``) over the
span table's primary key: no span row is read into Python.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from typing import Iterable

from aiops.records import from_known, json_object
from aiops.slo.budgets import WindowCounts
from aiops.slo.definitions import LATENCY_BUCKETS_MS, Service, SLODefinition
from aiops.store.database import Database, open_database
from telemetry.schema import Migration, SchemaError

ALL_ROUTES = "*"
#: The tables with one column per latency bucket.
COUNT_TABLES = ("aiops_slo_minutes", "aiops_slo_hours", "aiops_request_totals")
#: The latency buckets (ms) the version-1 tables were created with. Frozen: the tables'
#: columns are these, whatever ``LATENCY_BUCKETS_MS`` says later; a change of buckets
#: needs a migration that adds (or folds) columns, and ``SLOStore`` refuses to start
#: on a database whose columns do not match ``LATENCY_BUCKETS_MS``.
_V1_BUCKETS_MS = (5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500, 5000, 10000)
_BUCKET_COLS = [f"le_{b}" for b in LATENCY_BUCKETS_MS]
_BUCKET_DEFS = ", ".join(f"le_{b} INTEGER NOT NULL" for b in _V1_BUCKETS_MS)
_BUCKET_SUMS = ", ".join(f"sum(duration_ms <= {b})" for b in LATENCY_BUCKETS_MS)
_BUCKET_ADD = ", ".join(f"{c} = {c} + excluded.{c}" for c in _BUCKET_COLS)

_V1_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS aiops_services (
    name TEXT PRIMARY KEY, tier INTEGER NOT NULL, owner TEXT, description TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS aiops_slos (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, service TEXT NOT NULL, source TEXT NOT NULL,
    data TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_slos_by_service ON aiops_slos (service);
CREATE TABLE IF NOT EXISTS aiops_slo_minutes (
    service TEXT NOT NULL, route TEXT NOT NULL, minute INTEGER NOT NULL,
    total INTEGER NOT NULL, errors INTEGER NOT NULL, {_BUCKET_DEFS},
    PRIMARY KEY (service, route, minute)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aiops_slo_minutes_by_minute ON aiops_slo_minutes (minute);
CREATE TABLE IF NOT EXISTS aiops_slo_hours (
    service TEXT NOT NULL, route TEXT NOT NULL, hour INTEGER NOT NULL,
    total INTEGER NOT NULL, errors INTEGER NOT NULL, {_BUCKET_DEFS},
    PRIMARY KEY (service, route, hour)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aiops_slo_hours_by_hour ON aiops_slo_hours (hour);
CREATE TABLE IF NOT EXISTS aiops_request_totals (
    service TEXT NOT NULL, route TEXT NOT NULL, method TEXT NOT NULL, status_code INTEGER NOT NULL,
    total INTEGER NOT NULL, errors INTEGER NOT NULL, duration_ms_sum REAL NOT NULL, {_BUCKET_DEFS},
    PRIMARY KEY (service, route, method, status_code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aiops_slo_latest (
    slo_id INTEGER PRIMARY KEY, service TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aiops_burn_history (
    id INTEGER PRIMARY KEY, slo_id INTEGER NOT NULL, service TEXT NOT NULL, at REAL NOT NULL,
    composite REAL NOT NULL, remaining REAL NOT NULL, risk TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_burn_history_by_slo ON aiops_burn_history (slo_id, at);
CREATE INDEX IF NOT EXISTS aiops_burn_history_by_service ON aiops_burn_history (service, at);
CREATE INDEX IF NOT EXISTS aiops_burn_history_by_time ON aiops_burn_history (at);
CREATE TABLE IF NOT EXISTS aiops_slo_alerts (
    id TEXT PRIMARY KEY, slo_id INTEGER NOT NULL, service TEXT NOT NULL, status TEXT NOT NULL,
    severity TEXT NOT NULL, fired_at REAL NOT NULL, last_evaluated REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_slo_alerts_by_slo ON aiops_slo_alerts (slo_id, fired_at);
CREATE INDEX IF NOT EXISTS aiops_slo_alerts_by_status ON aiops_slo_alerts (status, fired_at);
CREATE TABLE IF NOT EXISTS aiops_release_audit (
    id INTEGER PRIMARY KEY, service TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    decision TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_release_audit_by_service ON aiops_release_audit (service, at);
CREATE TABLE IF NOT EXISTS aiops_release_overrides (
    id INTEGER PRIMARY KEY, service TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    who TEXT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_release_overrides_by_service ON aiops_release_overrides (service, expires_at);
CREATE TABLE IF NOT EXISTS aiops_process_stats (
    process TEXT PRIMARY KEY, service TEXT NOT NULL, written INTEGER NOT NULL, dropped INTEGER NOT NULL,
    write_errors INTEGER NOT NULL, queued INTEGER NOT NULL, updated_at REAL NOT NULL);
"""
MIGRATIONS = (
    Migration(1, "services, SLOs, per-minute and hourly request counts, request totals, burn history, SLO alerts, "
                 "the release audit trail and overrides, per-process telemetry stats",
              tuple(statement.strip() for statement in _V1_SCHEMA.split(";") if statement.strip())),
)


_COLS = ", ".join(_BUCKET_COLS)
_SUM_COLS = ", ".join(f"sum({c})" for c in _BUCKET_COLS)
# One scan of the new spans into a small temporary delta, then every table from the delta.
_DELTA = f"""
INSERT INTO temp.aiops_slo_delta
SELECT service, route, method, status_code, CAST(start_time / 60 AS INTEGER), count(*), sum(error),
       sum(duration_ms), {_BUCKET_SUMS}
FROM spans WHERE id > ? AND id <= ? GROUP BY 1, 2, 3, 4, 5"""
_UPSERT_COUNTS = "ON CONFLICT ({key}) DO UPDATE SET total = total + excluded.total, " \
                 f"errors = errors + excluded.errors, {_BUCKET_ADD}"
_FROM_DELTA = [
    f"INSERT INTO aiops_slo_minutes SELECT service, route, minute, sum(n), sum(errors), {_SUM_COLS} "
    "FROM temp.aiops_slo_delta WHERE 1 GROUP BY 1, 2, 3 " + _UPSERT_COUNTS.format(key="service, route, minute"),
    f"INSERT INTO aiops_slo_minutes SELECT service, '{ALL_ROUTES}', minute, sum(n), sum(errors), {_SUM_COLS} "
    "FROM temp.aiops_slo_delta WHERE 1 GROUP BY 1, 3 " + _UPSERT_COUNTS.format(key="service, route, minute"),
    f"INSERT INTO aiops_slo_hours SELECT service, route, minute / 60, sum(n), sum(errors), {_SUM_COLS} "
    "FROM temp.aiops_slo_delta WHERE 1 GROUP BY 1, 2, 3 " + _UPSERT_COUNTS.format(key="service, route, hour"),
    f"INSERT INTO aiops_slo_hours SELECT service, '{ALL_ROUTES}', minute / 60, sum(n), sum(errors), {_SUM_COLS} "
    "FROM temp.aiops_slo_delta WHERE 1 GROUP BY 1, 3 " + _UPSERT_COUNTS.format(key="service, route, hour"),
    f"INSERT INTO aiops_request_totals SELECT service, route, method, status_code, sum(n), sum(errors), "
    f"sum(duration_ms_sum), {_SUM_COLS} FROM temp.aiops_slo_delta WHERE 1 GROUP BY 1, 2, 3, 4 "
    "ON CONFLICT (service, route, method, status_code) DO UPDATE SET total = total + excluded.total, "
    "errors = errors + excluded.errors, duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum, "
    f"{_BUCKET_ADD}",
]
_TEMP_SCHEMA = f"""
CREATE TEMP TABLE IF NOT EXISTS aiops_slo_delta (
    service TEXT, route TEXT, method TEXT, status_code INTEGER, minute INTEGER, n INTEGER, errors INTEGER,
    duration_ms_sum REAL, {_COLS})"""

#: Spans folded in per transaction (a short write lock), and at most per ``rollup`` call.
ROLLUP_CHUNK = 100_000
ROLLUP_MAX_PER_CALL = 2_000_000


class SLOStore:
    """SLO tables of one ``Database`` (or the file at a path)."""

    def __init__(self, db: Database | str):
        self.db = open_database(db)
        self.db.migrate("aiops.slo", MIGRATIONS)
        self._check_bucket_columns()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def transaction(self):
        return self.db.transaction()

    def bucket_columns(self, table: str) -> list[str]:
        """The latency bucket columns (``le_<ms>``) of one of ``COUNT_TABLES``, in table order."""
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})") if row[1].startswith("le_")]

    def _check_bucket_columns(self) -> None:
        """``SchemaError`` unless every count table has one column per ``LATENCY_BUCKETS_MS`` bucket, in its
        order (the counts are inserted by position)."""
        wanted = [f"le_{b}" for b in LATENCY_BUCKETS_MS]
        problems = []
        for table in COUNT_TABLES:
            have = self.bucket_columns(table)
            missing = [c for c in wanted if c not in have]
            extra = [c for c in have if c not in wanted]
            if missing:
                problems.append(f"{table} has no column for latency bucket(s) {', '.join(missing)}")
            if extra:
                problems.append(f"{table} has column(s) {', '.join(extra)} for bucket(s) not in LATENCY_BUCKETS_MS")
            if not missing and not extra and have != wanted:
                problems.append(f"{table} has the bucket columns in another order ({', '.join(have)})")
        if problems:
            raise SchemaError(f"aiops.slo: {'; '.join(problems)}: LATENCY_BUCKETS_MS changed without a migration "
                              "of the count tables (add one to aiops.slo.store.MIGRATIONS)")

    # -- request counts --------------------------------------------------------------

    def rollup(self, chunk: int = ROLLUP_CHUNK, max_spans: int = ROLLUP_MAX_PER_CALL) -> int:
        """Fold spans stored since the last call into the per-minute and total
        counts; returns how many span ids were covered."""
        covered = 0
        while covered < max_spans:
            with self.transaction() as conn:
                row = conn.execute("SELECT value FROM aiops_state WHERE name = 'slo_rollup_span_id'").fetchone()
                last = int(row[0]) if row else 0
                top = conn.execute("SELECT max(id) FROM spans").fetchone()[0] or 0
                if top <= last:
                    return covered
                high = min(top, last + chunk)
                conn.execute(_TEMP_SCHEMA)
                conn.execute("DELETE FROM temp.aiops_slo_delta")
                conn.execute(_DELTA, (last, high))
                for sql in _FROM_DELTA:
                    conn.execute(sql)
                conn.execute("DELETE FROM temp.aiops_slo_delta")
                conn.execute("INSERT INTO aiops_state (name, value) VALUES ('slo_rollup_span_id', ?) "
                             "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(high),))
            covered += high - last
        return covered

    def window_counts(self, slo: SLODefinition, windows_s: Iterable[float], now_s: float) -> dict[float, WindowCounts]:
        """Requests and bad requests of ``slo`` in each window ending at the
        minute of ``now_s`` (a window of k minutes: the current minute and the
        k - 1 before it). Whole hours inside a window are read from the hourly
        counts, the ragged ends from the per-minute counts: a 30-day window
        reads at most 720 + 118 rows, whatever the traffic."""
        now_min = int(now_s // 60)
        bad = "errors" if slo.indicator != "latency" else f"(total - le_{int(slo.threshold_ms)})"
        sql = (f"SELECT sum(t), sum(b) FROM ("
               f"SELECT total AS t, {bad} AS b FROM aiops_slo_hours WHERE service = ? AND route = ? "
               f"AND hour >= ? AND hour <= ? UNION ALL "
               f"SELECT total, {bad} FROM aiops_slo_minutes WHERE service = ? AND route = ? "
               f"AND minute >= ? AND minute <= ? UNION ALL "
               f"SELECT total, {bad} FROM aiops_slo_minutes WHERE service = ? AND route = ? "
               f"AND minute >= ? AND minute <= ?)")
        key = (slo.service, slo.route or ALL_ROUTES)
        out = {}
        for w in sorted(set(windows_s)):
            start_min = now_min - max(1, int(round(w / 60.0))) + 1
            first_hour = -(-start_min // 60)            # first hour starting inside the window
            last_hour = (now_min + 1) // 60 - 1         # last hour ending inside the window
            if first_hour <= last_hour:
                ranges = (first_hour, last_hour, start_min, first_hour * 60 - 1, (last_hour + 1) * 60, now_min)
            else:
                ranges = (1, 0, start_min, now_min, 1, 0)  # no whole hour: minutes only
            row = self.conn.execute(sql, (*key, ranges[0], ranges[1], *key, ranges[2], ranges[3],
                                          *key, ranges[4], ranges[5])).fetchone()
            out[w] = WindowCounts(w, int(row[0] or 0), int(row[1] or 0))
        return out

    def request_totals(self) -> list[dict]:
        """All-time request counts per service, route, method and status (the Prometheus histogram)."""
        cursor = self.conn.execute(f"SELECT service, route, method, status_code, total, errors, duration_ms_sum, "
                                   f"{', '.join(_BUCKET_COLS)} FROM aiops_request_totals "
                                   "ORDER BY service, route, method, status_code")
        out = []
        for row in cursor:
            out.append({"service": row[0], "route": row[1], "method": row[2], "status_code": row[3],
                        "total": row[4], "errors": row[5], "duration_ms_sum": row[6],
                        "buckets": list(zip(LATENCY_BUCKETS_MS, row[7:]))})
        return out

    def prune(self, before_s: float) -> None:
        """Delete counts, burn history, expired overrides and served release
        decisions older than ``before_s`` (override audit entries are kept)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM aiops_slo_minutes WHERE minute < ?", (int(before_s // 60),))
            conn.execute("DELETE FROM aiops_slo_hours WHERE hour < ?", (int(before_s // 3600),))
            conn.execute("DELETE FROM aiops_burn_history WHERE at < ?", (before_s,))
            conn.execute("DELETE FROM aiops_release_overrides WHERE expires_at < ?", (before_s,))
            # served decisions expire; overrides stay in the audit trail
            conn.execute("DELETE FROM aiops_release_audit WHERE kind = 'decision' AND at < ?", (before_s,))

    # -- services -------------------------------------------------------------------------

    def services(self) -> list[Service]:
        return [Service(*row) for row in self.conn.execute(
            "SELECT name, tier, owner, description, created_at, updated_at FROM aiops_services ORDER BY name")]

    def service(self, name: str) -> Service | None:
        row = self.conn.execute("SELECT name, tier, owner, description, created_at, updated_at "
                                "FROM aiops_services WHERE name = ?", (name,)).fetchone()
        return Service(*row) if row else None

    def service_exists(self, name: str, conn: sqlite3.Connection | None = None) -> bool:
        row = (conn or self.conn).execute("SELECT 1 FROM aiops_services WHERE name = ?", (name,)).fetchone()
        return row is not None

    def upsert_service(self, fields: dict, now_s: float, conn: sqlite3.Connection | None = None) -> None:
        """Create or update (only the given fields of) a service."""
        conn = conn or self.conn
        existing = conn.execute("SELECT tier, owner, description FROM aiops_services WHERE name = ?",
                                (fields["name"],)).fetchone()
        if existing is None:
            conn.execute("INSERT INTO aiops_services VALUES (?, ?, ?, ?, ?, ?)",
                         (fields["name"], fields.get("tier", 3), fields.get("owner"), fields.get("description"),
                          now_s, now_s))
        else:
            merged = dict(zip(("tier", "owner", "description"), existing)) | {
                k: v for k, v in fields.items() if k != "name"}
            conn.execute("UPDATE aiops_services SET tier = ?, owner = ?, description = ?, updated_at = ? "
                         "WHERE name = ?", (merged["tier"], merged["owner"], merged["description"], now_s,
                                            fields["name"]))

    def delete_service(self, name: str) -> int:
        """Delete a service, its SLOs and their state; returns the SLOs deleted."""
        with self.transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM aiops_slos WHERE service = ?", (name,))]
            for slo_id in ids:
                self._delete_slo_rows(conn, slo_id)
            conn.execute("DELETE FROM aiops_services WHERE name = ?", (name,))
        return len(ids)

    def known_service_names(self) -> list[str]:
        """Services with a definition or an SLO, or seen in the request counts."""
        rows = self.conn.execute("SELECT name FROM aiops_services UNION SELECT service FROM aiops_slos "
                                 "UNION SELECT DISTINCT service FROM aiops_request_totals")
        return sorted(r[0] for r in rows)

    # -- SLOs ----------------------------------------------------------------------------

    # Stored JSON is read tolerantly (``Database.decode_rows``): a row that cannot be read is skipped
    # and logged once, never failing a compute or a listing.

    def _slo(self, row) -> SLODefinition | None:
        if row is None:
            return None
        return self.db.decode_row("aiops_slos", row, lambda data: from_known(SLODefinition, data, id=row[0]))

    def slos(self, service: str | None = None) -> list[SLODefinition]:
        if service is None:
            cursor = self.conn.execute("SELECT id, data FROM aiops_slos ORDER BY service, id")
        else:
            cursor = self.conn.execute("SELECT id, data FROM aiops_slos WHERE service = ? ORDER BY id", (service,))
        return [slo for slo in map(self._slo, cursor) if slo is not None]

    def slo(self, slo_id: int) -> SLODefinition | None:
        return self._slo(self.conn.execute("SELECT id, data FROM aiops_slos WHERE id = ?", (slo_id,)).fetchone())

    def slo_by_name(self, name: str, conn=None) -> SLODefinition | None:
        return self._slo((conn or self.conn).execute("SELECT id, data FROM aiops_slos WHERE name = ?",
                                                     (name,)).fetchone())

    def save_slo(self, slo: SLODefinition, now_s: float, conn: sqlite3.Connection) -> SLODefinition:
        """Insert (``slo.id`` None) or replace; the service is created when unknown. In a transaction."""
        data = slo.to_dict()
        data.pop("id")
        if conn.execute("SELECT 1 FROM aiops_services WHERE name = ?", (slo.service,)).fetchone() is None:
            self.upsert_service({"name": slo.service}, now_s, conn)
        if slo.id is None:
            cursor = conn.execute("INSERT INTO aiops_slos (name, service, source, data, created_at, updated_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", (slo.name, slo.service, slo.source,
                                                                json.dumps(data), now_s, now_s))
            slo.id = cursor.lastrowid
        else:
            conn.execute("UPDATE aiops_slos SET name = ?, service = ?, source = ?, data = ?, updated_at = ? "
                         "WHERE id = ?", (slo.name, slo.service, slo.source, json.dumps(data), now_s, slo.id))
            conn.execute("DELETE FROM aiops_slo_latest WHERE slo_id = ?", (slo.id,))
        return slo

    def delete_slo(self, slo_id: int) -> bool:
        with self.transaction() as conn:
            return self._delete_slo_rows(conn, slo_id)

    @staticmethod
    def _delete_slo_rows(conn, slo_id: int) -> bool:
        deleted = conn.execute("DELETE FROM aiops_slos WHERE id = ?", (slo_id,)).rowcount
        for table in ("aiops_slo_latest", "aiops_burn_history", "aiops_slo_alerts"):
            conn.execute(f"DELETE FROM {table} WHERE slo_id = ?", (slo_id,))
        return bool(deleted)

    # -- burn snapshots ----------------------------------------------------------------------

    def save_snapshot(self, snapshot: dict, history_interval_s: float, conn: sqlite3.Connection) -> bool:
        """Keep ``snapshot`` as the SLO's latest, and in the history when the
        last stored one is at least ``history_interval_s`` old; True if stored there."""
        slo_id, at = snapshot["slo_id"], snapshot["at"]
        data = json.dumps(snapshot)
        conn.execute("INSERT INTO aiops_slo_latest VALUES (?, ?, ?, ?) ON CONFLICT(slo_id) DO UPDATE SET "
                     "service = excluded.service, at = excluded.at, data = excluded.data",
                     (slo_id, snapshot["service_name"], at, data))
        last = conn.execute("SELECT max(at) FROM aiops_burn_history WHERE slo_id = ?", (slo_id,)).fetchone()[0]
        if last is not None and at - last < history_interval_s and at >= last:
            return False
        slim = {k: v for k, v in snapshot.items() if k not in ("alerts", "error_budget")}
        conn.execute("INSERT INTO aiops_burn_history (slo_id, service, at, composite, remaining, risk, data) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (slo_id, snapshot["service_name"], at,
                                                      snapshot["composite_burn_rate"],
                                                      snapshot["error_budget_remaining"], snapshot["risk_level"],
                                                      json.dumps(slim)))
        return True

    def latest_snapshots(self, service: str | None = None) -> list[dict]:
        if service is None:
            cursor = self.conn.execute("SELECT slo_id, data FROM aiops_slo_latest ORDER BY service, slo_id")
        else:
            cursor = self.conn.execute("SELECT slo_id, data FROM aiops_slo_latest WHERE service = ? ORDER BY slo_id",
                                       (service,))
        return self.db.decode_rows("aiops_slo_latest", cursor, _snapshot)

    def burn_history(self, service: str, since_s: float, limit: int) -> list[dict]:
        """Snapshots of ``service`` since ``since_s``, newest first."""
        cursor = self.conn.execute("SELECT id, data FROM aiops_burn_history WHERE service = ? AND at >= ? "
                                   "ORDER BY at DESC LIMIT ?", (service, since_s, limit))
        return self.db.decode_rows("aiops_burn_history", cursor, _snapshot)

    def forecast_points(self, slo_id: int, since_s: float) -> list[tuple[float, float, float]]:
        return list(self.conn.execute("SELECT at, remaining, composite FROM aiops_burn_history "
                                      "WHERE slo_id = ? AND at >= ? ORDER BY at", (slo_id, since_s)))

    def heatmap_rows(self, since_s: float, until_s: float) -> list[tuple[str, float, float]]:
        return list(self.conn.execute("SELECT service, at, composite FROM aiops_burn_history "
                                      "WHERE at >= ? AND at < ?", (since_s, until_s)))

    # -- SLO alerts --------------------------------------------------------------------------

    def latest_alert(self, slo_id: int, conn=None) -> dict | None:
        row = (conn or self.conn).execute("SELECT id, data FROM aiops_slo_alerts WHERE slo_id = ? "
                                          "ORDER BY fired_at DESC LIMIT 1", (slo_id,)).fetchone()
        return self.db.decode_row("aiops_slo_alerts", row, _alert)

    def next_alert_id(self, now_s: float, conn) -> str:
        row = conn.execute("SELECT value FROM aiops_state WHERE name = 'slo_alert_seq'").fetchone()
        n = int(row[0]) + 1 if row else 1
        conn.execute("INSERT INTO aiops_state (name, value) VALUES ('slo_alert_seq', ?) "
                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(n),))
        return f"SLO-{int(now_s)}-{n}"

    def save_alert(self, alert: dict, conn) -> None:
        conn.execute("INSERT INTO aiops_slo_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                     "status = excluded.status, severity = excluded.severity, "
                     "last_evaluated = excluded.last_evaluated, data = excluded.data",
                     (alert["id"], alert["slo_id"], alert["service"], alert["status"], alert["severity"],
                      alert["fired_at"], alert["last_evaluated"], json.dumps(alert)))

    def alerts(self, status: str | None = None, service: str | None = None, limit: int = 100) -> list[dict]:
        """Newest first; ``status`` one of firing, acknowledged, suppressed, resolved, or None for all."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if service is not None:
            where.append("service = ?")
            params.append(service)
        sql = "SELECT id, data FROM aiops_slo_alerts" + (" WHERE " + " AND ".join(where) if where else "")
        return self.db.decode_rows("aiops_slo_alerts", self.conn.execute(sql + " ORDER BY fired_at DESC LIMIT ?",
                                                                         (*params, limit)), _alert)

    def alert(self, alert_id: str, conn=None) -> dict | None:
        row = (conn or self.conn).execute("SELECT id, data FROM aiops_slo_alerts WHERE id = ?",
                                          (alert_id,)).fetchone()
        return self.db.decode_row("aiops_slo_alerts", row, _alert)

    # -- release gate -------------------------------------------------------------------------

    def audit(self, service: str, kind: str, decision: str, data: dict, now_s: float) -> int:
        cursor = self.conn.execute("INSERT INTO aiops_release_audit (service, at, kind, decision, data) "
                                   "VALUES (?, ?, ?, ?, ?)", (service, now_s, kind, decision, json.dumps(data)))
        return cursor.lastrowid

    def last_audit(self, service: str, kind: str) -> dict | None:
        """The newest audit entry of ``kind`` for ``service`` (None when there is none)."""
        row = self.conn.execute("SELECT id, at, kind, decision, data FROM aiops_release_audit WHERE service = ? "
                                "AND kind = ? ORDER BY at DESC, id DESC LIMIT 1", (service, kind)).fetchone()
        return None if row is None else self._audit_entry(row)

    def audit_trail(self, service: str, limit: int) -> list[dict]:
        cursor = self.conn.execute("SELECT id, at, kind, decision, data FROM aiops_release_audit WHERE service = ? "
                                   "ORDER BY at DESC, id DESC LIMIT ?", (service, limit))
        return [self._audit_entry(r) for r in cursor]

    def _audit_entry(self, row) -> dict:
        """An audit entry; its ``data`` is ``{}`` when the stored JSON cannot be read (the entry stays)."""
        data = self.db.decode_row("aiops_release_audit", (row[0], row[4]), lambda d: json_object(d, what="audit"))
        return {"id": row[0], "at": row[1], "kind": row[2], "decision": row[3], "data": data or {}}

    def add_override(self, service: str, who: str, reason: str, expires_at: float, now_s: float, conn) -> int:
        return conn.execute("INSERT INTO aiops_release_overrides (service, created_at, expires_at, who, reason) "
                            "VALUES (?, ?, ?, ?, ?)", (service, now_s, expires_at, who, reason)).lastrowid

    def active_override(self, service: str, now_s: float) -> dict | None:
        row = self.conn.execute("SELECT id, created_at, expires_at, who, reason FROM aiops_release_overrides "
                                "WHERE service = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
                                (service, now_s)).fetchone()
        return dict(zip(("id", "created_at", "expires_at", "who", "reason"), row)) if row else None

    # -- per-process telemetry stats ------------------------------------------------------------

    def publish_process_stats(self, service: str, stats: dict, now_s: float) -> None:
        """This process's span-store counters, so any worker's /metrics can sum every worker's."""
        process = f"{socket.gethostname()}:{os.getpid()}:{int(_PROCESS_START)}"
        self.conn.execute("INSERT INTO aiops_process_stats VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(process) "
                          "DO UPDATE SET written = excluded.written, dropped = excluded.dropped, "
                          "write_errors = excluded.write_errors, queued = excluded.queued, "
                          "updated_at = excluded.updated_at",
                          (process, service, stats.get("written", 0), stats.get("dropped_spans", 0),
                           stats.get("write_errors", 0), stats.get("queued", 0), now_s))

    def fold_dead_processes(self, idle_before_s: float) -> int:
        """Fold the counters of processes silent since ``idle_before_s`` into one
        ``retired:<service>`` row per service, so the table stays bounded while
        the summed counters never go down. Returns how many rows were folded."""
        with self.transaction() as conn:
            dead = conn.execute("SELECT service, sum(written), sum(dropped), sum(write_errors), count(*) "
                                "FROM aiops_process_stats WHERE updated_at < ? AND process NOT LIKE 'retired:%' "
                                "GROUP BY service", (idle_before_s,)).fetchall()
            for service, written, dropped, errors, _ in dead:
                conn.execute("INSERT INTO aiops_process_stats VALUES (?, ?, ?, ?, ?, 0, 0) ON CONFLICT(process) "
                             "DO UPDATE SET written = written + excluded.written, "
                             "dropped = dropped + excluded.dropped, "
                             "write_errors = write_errors + excluded.write_errors",
                             (f"retired:{service}", service, written, dropped, errors))
            conn.execute("DELETE FROM aiops_process_stats WHERE updated_at < ? AND process NOT LIKE 'retired:%'",
                         (idle_before_s,))
        return sum(row[4] for row in dead)

    def process_stats(self, live_since_s: float) -> dict[str, dict]:
        """Per service: counters summed over every process ever seen (dropped,
        written, write errors) and the queue depth of processes seen since ``live_since_s``."""
        out: dict[str, dict] = {}
        for service, written, dropped, errors, queued, updated in self.conn.execute(
                "SELECT service, written, dropped, write_errors, queued, updated_at FROM aiops_process_stats"):
            s = out.setdefault(service, {"written": 0, "dropped": 0, "write_errors": 0, "queued": 0, "processes": 0})
            s["written"] += written
            s["dropped"] += dropped
            s["write_errors"] += errors
            if updated >= live_since_s:
                s["queued"] += queued
                s["processes"] += 1
        return out


_PROCESS_START = time.time()
#: The fields every reader of a stored SLO snapshot or SLO alert relies on (a row without them is skipped).
SNAPSHOT_FIELDS = ("slo_id", "service_name", "at")
ALERT_FIELDS = ("id", "slo_id", "slo_name", "service", "status", "severity", "rule", "long_burn_rate", "reason")


def _snapshot(data) -> dict:
    return json_object(data, *SNAPSHOT_FIELDS, what="SLO snapshot")


def _alert(data) -> dict:
    return json_object(data, *ALERT_FIELDS, what="SLO alert")
