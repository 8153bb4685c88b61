"""Versioned schemas: every component's tables have a version and ordered forward migrations.

A component (``spans``, ``aiops.analysis``, ``aiops.slo`` ...) declares its
``Migration``s, numbered 1, 2, 3 ... ``migrate`` brings a database to the last
one: it reads the component's version from ``schema_versions``, and when
migrations are pending applies them in order inside one exclusive
transaction, so two processes starting at once never both apply one, and a
failing migration leaves the database as it was (every pending migration
rolled back, the version unchanged). Migrations only go forward; a database
newer than the code is refused with a clear error.

The runner is backend-neutral: everything it says to the database that is
not a migration's own statement comes from a ``Backend``, or is portable SQL
(``SELECT ... WHERE``, ``INSERT ... ON CONFLICT (...) DO UPDATE``, which
SQLite and PostgreSQL both speak) with the backend's placeholder. A backend
provides:

* ``begin_exclusive``: the statements that open a transaction holding a lock
  every other migrating process waits for (SQLite: ``BEGIN IMMEDIATE``, the
  file's write lock; PostgreSQL would say ``BEGIN`` and take a transaction
  advisory lock), and ``commit`` / ``rollback``;
* transactional DDL: a rolled-back ``CREATE``/``ALTER`` leaves no trace
  (SQLite and PostgreSQL both have it);
* ``table_exists``: a query with one placeholder (a table name) that returns
  a row when the table exists;
* ``versions_table``: the DDL of ``schema_versions (component, version,
  updated_at)`` in its dialect;
* ``placeholder``: the DB-API parameter marker (``?``, ``%s``).

The connection is a DB-API connection in autocommit mode whose ``execute(sql,
params)`` returns a cursor (``sqlite3`` and psycopg 3 connections do).
A migration's statements are in the dialect of the backend it runs on: a
component with two backends declares one list of migrations per backend,
with the same numbers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Migration:
    """Version ``version`` of a component: ``statements`` run in order (one SQL statement each),
    then ``apply(conn)`` for a step SQL alone cannot express (a backfill computed in Python).
    ``apply`` runs inside the runner's transaction: it must not commit (no ``executescript``)."""

    version: int
    description: str
    statements: tuple[str, ...] = ()
    apply: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Backend:
    """How the runner talks to one kind of database (see the module docstring for what each field must do)."""

    name: str
    begin_exclusive: tuple[str, ...]
    table_exists: str
    commit: str = "COMMIT"
    rollback: str = "ROLLBACK"
    versions_table: str = ("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, "
                           "version INTEGER NOT NULL, updated_at REAL NOT NULL)")
    placeholder: str = "?"


#: SQLite in autocommit mode (``isolation_level=None``): BEGIN IMMEDIATE takes the write lock at once
#: (a second process waits for it up to the connection's busy timeout).
SQLITE = Backend("sqlite", ("BEGIN IMMEDIATE",),
                 table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")


class SchemaError(RuntimeError):
    """The database cannot be used by this code (newer than it, or a migration failed)."""


def current_version(conn, component: str, backend: Backend = SQLITE) -> int:
    """The version of ``component`` recorded in the database (0: none yet)."""
    if conn.execute(backend.table_exists, ("schema_versions",)).fetchone() is None:
        return 0
    row = conn.execute(f"SELECT version FROM schema_versions WHERE component = {backend.placeholder}",
                       (component,)).fetchone()
    return int(row[0]) if row else 0


def migrate(conn, component: str, migrations: Sequence[Migration], backend: Backend = SQLITE) -> int:
    """Apply the pending ``migrations`` of ``component``; returns its version.

    Cheap when nothing is pending (two indexed reads, no lock); raises
    ``SchemaError`` when the database is newer than ``migrations`` or a
    migration fails, ``ValueError`` when ``migrations`` are not numbered 1..n."""
    _check(component, migrations)
    latest = migrations[-1].version if migrations else 0
    version = current_version(conn, component, backend)
    if version == latest:
        return version
    _refuse_newer(component, version, latest)
    for statement in backend.begin_exclusive:
        conn.execute(statement)
    failing = None
    try:
        conn.execute(backend.versions_table)
        version = current_version(conn, component, backend)  # another process may have migrated meanwhile
        _refuse_newer(component, version, latest)
        if version < latest:
            for migration in migrations[version:]:
                failing = migration
                for statement in migration.statements:
                    conn.execute(statement)
                if migration.apply is not None:
                    migration.apply(conn)
            failing = None
            p = backend.placeholder
            conn.execute(f"INSERT INTO schema_versions (component, version, updated_at) VALUES ({p}, {p}, {p}) "
                         "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                         "updated_at = excluded.updated_at", (component, latest, time.time()))
        conn.execute(backend.commit)
    except BaseException as exc:
        try:
            conn.execute(backend.rollback)
        except Exception:  # the failure may have ended the transaction already
            pass
        if isinstance(exc, SchemaError) or not isinstance(exc, Exception):
            raise
        step = (f"migration to version {failing.version} ({failing.description})" if failing is not None
                else f"recording version {latest}")
        raise SchemaError(f"{component}: {step} failed, nothing was changed (still at version {version}): "
                          f"{type(exc).__name__}: {exc}") from exc
    return latest


def _refuse_newer(component: str, version: int, latest: int) -> None:
    if version > latest:
        raise SchemaError(f"{component}: the database is at schema version {version}, newer than this code "
                          f"knows ({latest}); upgrade the package, or use a database this version wrote")


def _check(component: str, migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{component}: migrations must be numbered 1, 2, 3 ... in order, got {versions}")
