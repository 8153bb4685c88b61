"""The round-one store (``tests/fixtures/round_one.db``, written by commit cda5ca0) and what the
store tests do with a copy of it: raw reads and edits, and today's app on it."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from flask import Flask

from aiops import AIOps
from telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "round_one.db"
#: Its incidents: the error spike on /payment (resolved) and the latency spike on /inventory (active).
RESOLVED_INCIDENT, ACTIVE_INCIDENT = "INC-1796347258-1", "INC-1796347438-2"


def raw(path, sql: str, params=()) -> list[tuple]:
    """Rows of ``sql`` on the file at ``path`` (its own connection, autocommit)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def edit_json(path, table: str, key_column: str, key, change) -> None:
    """Replace the JSON ``data`` of one row by ``change(data)`` (a dict)."""
    (text,) = raw(path, f"SELECT data FROM {table} WHERE {key_column} = ?", (key,))[0]
    raw(path, f"UPDATE {table} SET data = ? WHERE {key_column} = ?", (json.dumps(change(json.loads(text))), key))


def make_app(path) -> Flask:
    """Today's app on the store at ``path``: Telemetry and AIOps on one file, no scheduler, a /inventory route."""
    app = Flask("shop")
    app.config.update(AIOPS_DB_PATH=str(path), TELEMETRY_DB_PATH=str(path), AIOPS_SCHEDULER=False,
                      TELEMETRY_SERVICE_NAME="shop", TELEMETRY_FLUSH_INTERVAL_MS=10)
    Telemetry(app)
    AIOps(app)

    @app.get("/inventory")
    def inventory():
        return {"items": 3}

    return app
