"""The README documents every config key, and CI runs the README's test command."""
import re
from pathlib import Path

import pytest

from app import DEMO_CONFIG
from simulation.chaos import CHAOS_CONFIG
from telemetry.extension import TELEMETRY_CONFIG

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("key", [k.name for k in (*TELEMETRY_CONFIG, *CHAOS_CONFIG, *DEMO_CONFIG)])
def test_every_config_key_is_documented_with_default_and_unit(key):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"{key} needs exactly one row in a README config table"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 4 and all(cells), f"{key}: default, unit and meaning must all be filled in"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    assert len(commands) >= 2
    demo_command, test_command = commands[0], commands[1]
    assert demo_command.endswith("python app.py")
    assert test_command in (ROOT / ".ci" / "run").read_text()
