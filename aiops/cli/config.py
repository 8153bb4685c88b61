"""``aiops config``: every configuration key of the product, from its one declaration.

The README's key tables are this command's output: each sits between
``<!-- config:GROUP -->`` and ``<!-- /config:GROUP -->``, and
``python -m aiops config --markdown --write README.md`` rewrites them in
place (``tests/test_docs.py`` fails when one differs). A group is one README
table; ``groups()`` lists them in the README's order.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from aiops.config import EXTENSION_CONFIG
from aiops.features import FEATURES
from aiops.notify import WEBHOOK_CONFIG
from aiops.terminal import UsageError
from llm import LLM_CONFIG
from simulation.api import SIMULATOR_CONFIG
from simulation.chaos import CHAOS_CONFIG
from telemetry.config import ConfigKey, describe
from telemetry.extension import TELEMETRY_CONFIG

#: The folder above the packages: a checkout of the project when it holds pyproject.toml and app.py.
_ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- config:(?P<name>[a-z0-9_-]+) -->\n(?P<body>.*?)<!-- /config:(?P=name) -->", re.S)
_HEADER = "| key | default | unit | meaning |\n|---|---|---|---|\n"


@dataclass(frozen=True)
class ConfigGroup:
    """One README table: ``name`` (its marker), ``title`` and its keys, in order."""

    name: str
    title: str
    keys: tuple[ConfigKey, ...]


def demo_keys() -> tuple[ConfigKey, ...]:
    """The demo shop's keys (``SERVE_CONFIG`` and ``DEMO_CONFIG``, re-exported by ``app.py`` from
    ``simulation.shop``), in a checkout of the project; () from an installed wheel (the README's
    tables are written from a checkout; aiops may not import simulation). Only the checkout's own
    ``app.py`` is loaded, by its path: never another ``app.py`` on ``sys.path`` (a user's app)."""
    path = _ROOT / "app.py"
    if not (path.is_file() and (_ROOT / "pyproject.toml").is_file()):
        return ()
    module = sys.modules.get("app")
    if module is None or Path(getattr(module, "__file__", "") or "").resolve() != path:
        spec = importlib.util.spec_from_file_location("app", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return (*module.SERVE_CONFIG, *module.DEMO_CONFIG)


def groups() -> list[ConfigGroup]:
    """Every key of the product, one group per README table, in the README's order. A feature
    no group names gets a group of its own (named after it), so a new feature's keys are listed."""
    feature = {f.name: f.config for f in FEATURES}
    named = [
        ConfigGroup("telemetry", "Telemetry (`telemetry.Telemetry`)", TELEMETRY_CONFIG),
        ConfigGroup("analysis", "Analysis (`aiops.AIOps`): the extension, the pass, notifications",
                    (*EXTENSION_CONFIG, *feature.pop("analysis"), *WEBHOOK_CONFIG)),
        ConfigGroup("chaos", "Chaos (`simulation.Chaos`)", CHAOS_CONFIG),
        ConfigGroup("demo", "Demo shop (`app.py`)", demo_keys()),
        ConfigGroup("llm", "LLM documents (`llm.LLM_CONFIG`, read by `AIOps`)", LLM_CONFIG),
        ConfigGroup("slo", "SLOs, error budgets and burn-rate alerts", feature.pop("slo")),
        ConfigGroup("metrics", "Pushed metrics", feature.pop("metrics")),
        ConfigGroup("simulator", "Incident simulator (`/api/v1/simulator`)", SIMULATOR_CONFIG),
        ConfigGroup("triage", "Alert triage and the advisors", (*feature.pop("triage"), *feature.pop("advisors"))),
        ConfigGroup("replay", "Resilience replay", feature.pop("replay")),
        ConfigGroup("dashboard", "Dashboard", feature.pop("dashboard")),
    ]
    others = [ConfigGroup(name, f"The {name} feature", keys) for name, keys in feature.items() if keys]
    return [group for group in named + others if group.keys]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(keys: tuple[ConfigKey, ...]) -> str:
    """The markdown table of ``keys``: key, default (as a user would write it), unit, meaning."""
    return _HEADER + "".join(f"| `{row['name']}` | {_cell(row['shown_default'])} | {_cell(row['unit'])} | "
                             f"{_cell(row['doc'])} |\n" for row in describe(keys))


def block(group: ConfigGroup) -> str:
    """The group's table between its markers, as the README holds it."""
    return f"<!-- config:{group.name} -->\n{table(group.keys)}<!-- /config:{group.name} -->"


def marked_blocks(text: str) -> list[tuple[str, str]]:
    """``(group name, body)`` of every marked block of a markdown ``text``, in order."""
    return [(m["name"], m["body"]) for m in _BLOCK.finditer(text)]


def rewrite(text: str, by_name: dict[str, ConfigGroup]) -> str:
    """``text`` with every marked block's body replaced by its group's table; ``UsageError``
    naming a block whose group does not exist."""
    def replace(match: re.Match) -> str:
        group = by_name.get(match["name"])
        if group is None:
            hint = (" (the demo shop's keys are read from app.py, beside the packages in a checkout)"
                    if match["name"] == "demo" else "")
            raise UsageError(f"no config group {match['name']!r}{hint}; valid: {', '.join(by_name)}")
        return block(group)
    return _BLOCK.sub(replace, text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="markdown tables, as in the README (the default)")
    form.add_argument("--json", action="store_true", help="JSON: every group with its keys")
    parser.add_argument("--write", metavar="FILE",
                        help="rewrite the tables between <!-- config:GROUP --> markers in FILE in place")


def run(args: argparse.Namespace) -> int:
    found = groups()
    if args.write:
        if args.json:
            raise UsageError("--write rewrites markdown tables; it does not take --json")
        return _write(Path(args.write), found)
    if args.json:
        print(json.dumps([{"group": g.name, "title": g.title, "keys": describe(g.keys)} for g in found],
                         indent=2, default=str))
        return 0
    print("\n\n".join(f"### {g.title}\n\n{block(g)}" for g in found))
    return 0


def _write(path: Path, found: list[ConfigGroup]) -> int:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    new = rewrite(text, {g.name: g for g in found})
    names = [name for name, _body in marked_blocks(text)]
    changed = sum(1 for (_n, old), (_m, now) in zip(marked_blocks(text), marked_blocks(new)) if old != now)
    if new != text:
        path.write_text(new, encoding="utf-8")
    print(f"{path}: {len(names)} config tables, {changed} rewritten")
    missing = [g.name for g in found if g.name not in names]
    if missing:
        print(f"note: no table for {', '.join(missing)} in {path}: add <!-- config:NAME --> and "
              f"<!-- /config:NAME --> lines where each belongs, then run this again", file=sys.stderr)
    return 0


COMMANDS = {"config": (add_arguments, run, "every configuration key (default, unit, meaning), as the README's tables")}
