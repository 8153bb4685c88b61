"""The ``aiops`` command (also ``python -m aiops``): every registered feature's subcommands.

Each feature declares its subcommands in its ``feature.py``
(``aiops.features.all_commands``); ``config`` (``aiops.cli.config``) lists
every key of the product. This module only builds the parser and runs one.
A subcommand that needs the other features (the documents of an incident, a
replay from the store) calls ``args.open_context()``: the
features built headless over ``--db``, with settings from the environment.
Bad input prints ``error: ...`` on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys

from aiops.cli import config
from aiops.extension import headless_context
from aiops.features import all_commands
from aiops.terminal import UsageError, open_store_file


def commands() -> dict:
    """Every subcommand: the features' (``aiops.features.all_commands``) and ``config``."""
    found = all_commands()
    for name in config.COMMANDS:
        if name in found:
            raise ValueError(f"a feature defines the command {name!r}, which aiops.cli has")
    return {**found, **config.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiops", description="AIOps toolkit for Flask applications.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, _run, help_text) in commands().items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _open_context(args: argparse.Namespace):
    db = open_store_file(getattr(args, "db", None))
    try:
        return headless_context(db)
    except ValueError as exc:  # a bad AIOPS_* value in the environment
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _add, run, _help = commands()[args.command]
    args.open_context = lambda: _open_context(args)
    try:
        return run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
