"""Config keys as documentation: markdown tables generated from the keys' one declaration.

A document (the README) holds each table between ``<!-- config:GROUP -->`` and
``<!-- /config:GROUP -->``; ``rewrite`` replaces the tables it has groups for
and leaves every other line alone, so a package documents its own keys and a
test can require the document to match.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from telemetry.config import ConfigKey, describe

_BLOCK = re.compile(r"<!-- config:(?P<name>[a-z0-9_-]+) -->\n(?P<body>.*?)<!-- /config:(?P=name) -->", re.S)
_HEADER = "| key | default | unit | meaning |\n|---|---|---|---|\n"


@dataclass(frozen=True)
class ConfigGroup:
    """One table: ``name`` (its marker), ``title`` and its keys, in order."""

    name: str
    title: str
    keys: tuple[ConfigKey, ...]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(keys: tuple[ConfigKey, ...]) -> str:
    """The markdown table of ``keys``: key, default (as a user would write it), unit, meaning."""
    return _HEADER + "".join(f"| `{row['name']}` | {_cell(row['shown_default'])} | {_cell(row['unit'])} | "
                             f"{_cell(row['doc'])} |\n" for row in describe(keys))


def block(group: ConfigGroup) -> str:
    """The group's table between its markers, as a document holds it."""
    return f"<!-- config:{group.name} -->\n{table(group.keys)}<!-- /config:{group.name} -->"


def marked_blocks(text: str) -> list[tuple[str, str]]:
    """``(group name, body)`` of every marked block of a markdown ``text``, in order."""
    return [(m["name"], m["body"]) for m in _BLOCK.finditer(text)]


def rewrite(text: str, groups: list[ConfigGroup]) -> tuple[str, int]:
    """``text`` with the body of every block one of ``groups`` names replaced by its table (others are
    left as they are), and how many bodies changed."""
    by_name = {g.name: g for g in groups}
    changed = 0

    def replace(match: re.Match) -> str:
        nonlocal changed
        group = by_name.get(match["name"])
        if group is None:
            return match.group(0)
        new = block(group)
        changed += new != match.group(0)
        return new

    return _BLOCK.sub(replace, text), changed
