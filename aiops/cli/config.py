"""``aiops config``: every key ``Telemetry`` and ``AIOps`` read, from its one declaration.

As markdown tables (``telemetry.configdoc``: the README's tables are this
output, between ``<!-- config:GROUP -->`` markers), as JSON, or rewritten in
place in a document (``--write README.md``: only the tables of these groups).
The chaos, simulator and demo-shop keys are the ``simulation`` package's:
``python -m simulation config`` lists every key of the product and rewrites
all the README's tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiops.config import EXTENSION_CONFIG
from aiops.features import FEATURES
from aiops.notify import WEBHOOK_CONFIG
from aiops.terminal import UsageError
from llm import LLM_CONFIG
from telemetry.config import describe
from telemetry.configdoc import ConfigGroup, block, marked_blocks, rewrite
from telemetry.extension import TELEMETRY_CONFIG


def groups() -> list[ConfigGroup]:
    """The keys of telemetry and of every aiops feature, one group per README table, in the README's
    order. A feature no group names gets a group of its own, so a new feature's keys are listed."""
    feature = {f.name: f.config for f in FEATURES}
    named = [
        ConfigGroup("telemetry", "Telemetry (`telemetry.Telemetry`)", TELEMETRY_CONFIG),
        ConfigGroup("analysis", "Analysis (`aiops.AIOps`): the extension, the pass, notifications",
                    (*EXTENSION_CONFIG, *feature.pop("analysis"), *WEBHOOK_CONFIG)),
        ConfigGroup("llm", "LLM documents (`llm.LLM_CONFIG`, read by `AIOps`)", LLM_CONFIG),
        ConfigGroup("slo", "SLOs, error budgets and burn-rate alerts", feature.pop("slo")),
        ConfigGroup("metrics", "Pushed metrics", feature.pop("metrics")),
        ConfigGroup("triage", "Alert triage and the advisors", (*feature.pop("triage"), *feature.pop("advisors"))),
        ConfigGroup("replay", "Resilience replay", feature.pop("replay")),
        ConfigGroup("dashboard", "Dashboard", feature.pop("dashboard")),
    ]
    others = [ConfigGroup(name, f"The {name} feature", keys) for name, keys in feature.items() if keys]
    return [group for group in named + others if group.keys]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="markdown tables, as in the README (the default)")
    form.add_argument("--json", action="store_true", help="JSON: every group with its keys")
    parser.add_argument("--write", metavar="FILE",
                        help="rewrite the tables between <!-- config:GROUP --> markers in FILE in place")


def run(args: argparse.Namespace, found: list[ConfigGroup] | None = None) -> int:
    """Print (or ``--write``) ``found`` (default: ``groups()``)."""
    found = groups() if found is None else found
    if args.write:
        if args.json:
            raise UsageError("--write rewrites markdown tables; it does not take --json")
        return write(Path(args.write), found)
    if args.json:
        print(json.dumps([{"group": g.name, "title": g.title, "keys": describe(g.keys)} for g in found],
                         indent=2, default=str))
        return 0
    print("\n\n".join(f"### {g.title}\n\n{block(g)}" for g in found))
    return 0


def write(path: Path, found: list[ConfigGroup]) -> int:
    """Rewrite the tables of ``found`` in the document at ``path``; say what changed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    new, changed = rewrite(text, found)
    names = [name for name, _body in marked_blocks(text)]
    if new != text:
        path.write_text(new, encoding="utf-8")
    ours = [g.name for g in found]
    print(f"{path}: {sum(1 for n in names if n in ours)} config tables, {changed} rewritten")
    missing = [name for name in ours if name not in names]
    if missing:
        print(f"note: no table for {', '.join(missing)} in {path}: add <!-- config:NAME --> and "
              f"<!-- /config:NAME --> lines where each belongs, then run this again", file=sys.stderr)
    return 0


COMMANDS = {"config": (add_arguments, run, "every configuration key (default, unit, meaning), as the README's tables")}
