"""Every configuration key of the product as the README's tables: the aiops and telemetry groups
(``aiops.cli.config``) with the chaos endpoints', the simulator's and the demo shop's, in the
README's order. ``python -m simulation config --write README.md`` rewrites them all."""
from __future__ import annotations

from aiops.cli import config as aiops_config
from simulation.api import SIMULATOR_CONFIG
from simulation.chaos import CHAOS_CONFIG
from simulation.shop import DEMO_CONFIG, SERVE_CONFIG
from telemetry.configdoc import ConfigGroup

#: The simulation package's groups, and the aiops group each follows in the README.
_AFTER = {
    "analysis": [ConfigGroup("chaos", "Chaos (`simulation.Chaos`)", CHAOS_CONFIG),
                 ConfigGroup("demo", "Demo shop (`simulation.shop`, run by `app.py`)", (*SERVE_CONFIG, *DEMO_CONFIG))],
    "metrics": [ConfigGroup("simulator", "Incident simulator (`/api/v1/simulator`)", SIMULATOR_CONFIG)],
}


def groups() -> list[ConfigGroup]:
    """Every group of the product, in the README's order."""
    out = []
    for group in aiops_config.groups():
        out += [group, *_AFTER.get(group.name, [])]
    return out
