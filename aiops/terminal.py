"""What every ``aiops`` subcommand shares: bad-usage errors, the ``--db`` option,
opening a span store file, and the rich console.

A subcommand raises ``UsageError`` for bad input; ``aiops.cli`` prints it as
``error: ...`` on stderr and exits with status 2. Settings come from the
environment (``telemetry.config.read_environment``), as for the extension.
"""
from __future__ import annotations

import argparse
import os

from aiops.store.database import Database, open_span_store


class UsageError(Exception):
    """Bad input: printed as ``error: ...`` on stderr, exit status 2."""


def default_db() -> str:
    """``$AIOPS_DB_PATH``, else ``$TELEMETRY_DB_PATH``, else ``instance/telemetry.db``."""
    return os.environ.get("AIOPS_DB_PATH") or os.environ.get("TELEMETRY_DB_PATH") or \
        os.path.join("instance", "telemetry.db")


def add_db_arguments(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """``--db FILE`` (and ``--json`` unless ``json_flag`` is False)."""
    parser.add_argument("--db", default=None, metavar="FILE",
                        help="span store (default: $AIOPS_DB_PATH, $TELEMETRY_DB_PATH, instance/telemetry.db)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def open_store_file(path: str | None) -> Database:
    """The span store at ``path`` (default ``default_db()``); ``UsageError`` when it is
    missing, not SQLite, or has no spans table (not a ``TELEMETRY_DB_PATH``)."""
    try:
        return open_span_store(path or default_db())
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def wide_console():
    """A rich console at least 160 columns wide (tables do not wrap mid-word)."""
    from rich.console import Console  # at the call: AIOps(app) registers the command without loading rich
    return Console(soft_wrap=False, width=max(160, Console().width))
