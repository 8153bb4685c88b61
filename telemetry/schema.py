"""Versioned schemas: every component's tables have a version and ordered forward migrations.

A component (``spans``, ``aiops.analysis``, ``aiops.slo`` ...) declares its
``Migration``s, numbered from 1. ``migrate`` brings a database to the last
one: it reads the component's version from ``schema_versions``, and when
migrations are pending applies them in order inside one exclusive
transaction, so two processes starting at once never both apply one, and a
failing migration leaves the database as it was. Migrations only go
forward; a database newer than the code is refused with a clear error.

The runner speaks to the database through a ``Backend`` (how to begin an
exclusive transaction, commit, roll back); ``SQLITE`` is the one backend
today, and a migration's statements are written for it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Migration:
    """Version ``version`` of a component: ``statements`` run in order (one SQL statement each),
    or ``apply(conn)`` for a step SQL alone cannot express."""

    version: int
    description: str
    statements: tuple[str, ...] = ()
    apply: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Backend:
    """How the runner talks to one kind of database (DB-API connections in autocommit mode)."""

    name: str
    begin_exclusive: str
    commit: str = "COMMIT"
    rollback: str = "ROLLBACK"
    versions_table: str = ("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, "
                           "version INTEGER NOT NULL, updated_at REAL NOT NULL)")
    placeholder: str = "?"


#: SQLite in autocommit mode (``isolation_level=None``): BEGIN IMMEDIATE takes the write lock at once.
SQLITE = Backend("sqlite", "BEGIN IMMEDIATE")


class SchemaError(RuntimeError):
    """The database cannot be used by this code (newer than it, or a migration failed)."""


def current_version(conn, component: str, backend: Backend = SQLITE) -> int:
    """The version of ``component`` recorded in the database (0: none yet)."""
    try:
        row = conn.execute(f"SELECT version FROM schema_versions WHERE component = {backend.placeholder}",
                           (component,)).fetchone()
    except Exception:  # no schema_versions table yet
        return 0
    return int(row[0]) if row else 0


def migrate(conn, component: str, migrations: Sequence[Migration], backend: Backend = SQLITE) -> int:
    """Apply the pending ``migrations`` of ``component``; returns its version.

    Cheap when nothing is pending (one indexed read); raises ``SchemaError``
    when the database is newer than ``migrations`` or a migration fails."""
    _check(component, migrations)
    latest = migrations[-1].version if migrations else 0
    version = current_version(conn, component, backend)
    if version == latest:
        return version
    if version > latest:
        raise SchemaError(f"{component}: the database is at schema version {version}, newer than this code "
                          f"knows ({latest}); upgrade the package")
    conn.execute(backend.begin_exclusive)
    try:
        conn.execute(backend.versions_table)
        version = current_version(conn, component, backend)  # another process may have migrated meanwhile
        for migration in migrations:
            if migration.version <= version:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            if migration.apply is not None:
                migration.apply(conn)
            version = migration.version
        p = backend.placeholder
        conn.execute(f"INSERT INTO schema_versions (component, version, updated_at) VALUES ({p}, {p}, {p}) "
                     "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                     "updated_at = excluded.updated_at", (component, version, time.time()))
        conn.execute(backend.commit)
    except Exception as exc:
        try:
            conn.execute(backend.rollback)
        except Exception:
            pass
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"{component}: migration to version {version + 1} failed: {exc}") from exc
    return version


def _check(component: str, migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{component}: migrations must be numbered 1, 2, 3 ... in order, got {versions}")
