"""SQL of alert triage: deduplicated alerts, groups, deployments (tables ``aiops_alert*``, ``aiops_deployments``).

Over one ``Database``'s per-thread connection and ``BEGIN IMMEDIATE``
transactions, so a batch of alerts is stored whole or not at all.
"""
from __future__ import annotations

import json

from aiops.records import json_object
from aiops.store.database import Database, open_database
from aiops.triage.records import AlertGroup, AlertRecord
from telemetry.schema import Migration

_V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS aiops_alerts (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, group_id TEXT, service TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, received_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_alerts_by_status ON aiops_alerts (status, last_seen);
CREATE INDEX IF NOT EXISTS aiops_alerts_by_group ON aiops_alerts (group_id);
CREATE TABLE IF NOT EXISTS aiops_alert_groups (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, priority TEXT NOT NULL,
    first_at REAL NOT NULL, last_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_alert_groups_by_status ON aiops_alert_groups (status, last_at);
CREATE TABLE IF NOT EXISTS aiops_deployments (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, deployed_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aiops_deployments_by_time ON aiops_deployments (deployed_at);
"""
MIGRATIONS = (
    Migration(1, "alerts, alert groups and deployments",
              tuple(statement.strip() for statement in _V1_SCHEMA.split(";") if statement.strip())),
)



class TriageStore:
    """Alert triage tables of one ``Database`` (or the file at a path)."""

    def __init__(self, db: Database | str):
        self.db = open_database(db)
        self.db.migrate("aiops.triage", MIGRATIONS)

    @property
    def conn(self):
        return self.db.conn

    def transaction(self):
        return self.db.transaction()

    def next_id(self, kind: str) -> str:
        """ALR-n, GRP-n, DEP-n counting up in this store (call inside a transaction)."""
        prefix = {"alert": "ALR", "group": "GRP", "deploy": "DEP"}[kind]
        return f"{prefix}-{self.db.next_sequence(f'{kind}_seq')}"

    # -- alerts and groups ---------------------------------------------------------------

    def open_state(self, since_s: float = 0.0) -> tuple[list[AlertRecord], list[AlertGroup]]:
        """Firing alerts and open groups seen since ``since_s``, and every alert of those groups."""
        groups = self.db.decode_rows("aiops_alert_groups", self.conn.execute(
            "SELECT id, data FROM aiops_alert_groups WHERE status = 'open' AND last_at >= ?", (since_s,)),
            AlertGroup.from_dict)
        rows = {i: d for i, d in self.conn.execute(
            "SELECT id, data FROM aiops_alerts WHERE status = 'firing' AND last_seen >= ?", (since_s,))}
        ids = [g.id for g in groups]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows.update(self.conn.execute(f"SELECT id, data FROM aiops_alerts WHERE group_id IN "
                                          f"({', '.join('?' * len(chunk))})", chunk))
        return self.db.decode_rows("aiops_alerts", rows.items(), AlertRecord.from_dict), groups

    def save(self, records, groups) -> None:
        self.conn.executemany(
            "INSERT INTO aiops_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, group_id = excluded.group_id, last_seen = excluded.last_seen, "
            "data = excluded.data",
            [(r.id, r.status, r.group_id, r.service, r.first_seen, r.last_seen, r.received_at,
              json.dumps(r.to_dict())) for r in records])
        self.conn.executemany(
            "INSERT INTO aiops_alert_groups VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, priority = excluded.priority, first_at = excluded.first_at, "
            "last_at = excluded.last_at, data = excluded.data",
            [(g.id, g.status, g.priority, g.first_at, g.last_at, json.dumps(g.to_dict())) for g in groups])

    def alerts(self, status: str | None = None, group_id: str | None = None, limit: int = 100) -> list[AlertRecord]:
        """Newest first."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if group_id is not None:
            where.append("group_id = ?")
            params.append(group_id)
        sql = "SELECT id, data FROM aiops_alerts" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self.conn.execute(sql + " ORDER BY last_seen DESC, id DESC LIMIT ?", (*params, limit))
        return self.db.decode_rows("aiops_alerts", rows, AlertRecord.from_dict)

    def groups(self, status: str | None = None, limit: int = 100) -> list[AlertGroup]:
        """Newest first."""
        if status is None:
            rows = self.conn.execute("SELECT id, data FROM aiops_alert_groups ORDER BY last_at DESC LIMIT ?",
                                     (limit,))
        else:
            rows = self.conn.execute("SELECT id, data FROM aiops_alert_groups WHERE status = ? "
                                     "ORDER BY last_at DESC LIMIT ?", (status, limit))
        return self.db.decode_rows("aiops_alert_groups", rows, AlertGroup.from_dict)

    def group(self, group_id: str) -> AlertGroup | None:
        row = self.conn.execute("SELECT id, data FROM aiops_alert_groups WHERE id = ?", (group_id,)).fetchone()
        return self.db.decode_row("aiops_alert_groups", row, AlertGroup.from_dict)

    def open_groups_of(self, service: str) -> list[AlertGroup]:
        return [g for g in self.groups("open", 1000) if service in g.services]

    def stats(self, since_s: float) -> dict:
        """Counts over alerts received since ``since_s``: notifications, records, groups, triage times
        (a stored alert whose JSON is unreadable is left out of the figures read from it)."""
        readable = "received_at >= ? AND json_valid(data)"
        received, records = self.conn.execute(
            "SELECT coalesce(sum(json_extract(data, '$.count')), 0), count(*) FROM aiops_alerts "
            f"WHERE {readable}", (since_s,)).fetchone()
        groups = self.conn.execute("SELECT count(DISTINCT group_id) FROM aiops_alerts WHERE received_at >= ? "
                                   "AND group_id IS NOT NULL", (since_s,)).fetchone()[0]
        by_priority = dict(self.conn.execute(
            "SELECT g.priority, count(*) FROM aiops_alert_groups g WHERE g.id IN "
            "(SELECT DISTINCT group_id FROM aiops_alerts WHERE received_at >= ?) GROUP BY g.priority", (since_s,)))
        triage_ms = sorted(r[0] for r in self.conn.execute(
            f"SELECT json_extract(data, '$.triage_ms') FROM aiops_alerts WHERE {readable} "
            "AND json_extract(data, '$.triage_ms') IS NOT NULL", (since_s,)))
        sources = dict(self.conn.execute(
            "SELECT json_extract(data, '$.source'), sum(json_extract(data, '$.count')) FROM aiops_alerts "
            f"WHERE {readable} GROUP BY 1", (since_s,)))
        return {"received": int(received), "records": records, "groups": groups, "by_priority": by_priority,
                "triage_ms": triage_ms, "sources": sources}

    # -- deployments -------------------------------------------------------------------

    def add_deploy(self, deploy: dict) -> dict:
        with self.transaction():
            deploy = {"id": self.next_id("deploy"), **deploy}
            self.conn.execute("INSERT INTO aiops_deployments VALUES (?, ?, ?, ?)",
                              (deploy["id"], deploy["service"], deploy["deployed_at"], json.dumps(deploy)))
        return deploy

    def deploys(self, since_s: float, service: str | None = None, limit: int = 1000) -> list[dict]:
        """Newest first."""
        if service is None:
            rows = self.conn.execute("SELECT id, data FROM aiops_deployments WHERE deployed_at >= ? "
                                     "ORDER BY deployed_at DESC LIMIT ?", (since_s, limit))
        else:
            rows = self.conn.execute("SELECT id, data FROM aiops_deployments WHERE deployed_at >= ? AND service = ? "
                                     "ORDER BY deployed_at DESC LIMIT ?", (since_s, service, limit))
        return self.db.decode_rows("aiops_deployments", rows, _deploy)


def _deploy(data) -> dict:
    return json_object(data, "id", "service", "deployed_at", what="deployment")
