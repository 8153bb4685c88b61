"""The README documents every config key and endpoint, and CI runs the README's test command."""
import re
from pathlib import Path

import pytest

from aiops.extension import config_keys
from aiops.features import all_endpoints
from app import DEMO_CONFIG
from simulation.api import ENDPOINTS as SIMULATOR_ENDPOINTS
from simulation.api import SIMULATOR_CONFIG
from simulation.chaos import CHAOS_CONFIG
from telemetry.extension import TELEMETRY_CONFIG

ALL_KEYS = sorted({k.name for k in (*TELEMETRY_CONFIG, *CHAOS_CONFIG, *DEMO_CONFIG, *config_keys(),
                                    *SIMULATOR_CONFIG)})

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CURL_LINES = [line for line in README.splitlines() if line.startswith("curl")]


@pytest.mark.parametrize("key", ALL_KEYS)
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


@pytest.mark.parametrize("endpoint", all_endpoints() + SIMULATOR_ENDPOINTS)
def test_every_endpoint_has_a_curl_example(endpoint):
    method, path = endpoint.split()[:2]
    pattern = re.sub(r"<[a-z_]+>", "\x00", path.split("?")[0])
    pattern = re.escape(pattern).replace("\x00", "[^/ ?\"']+")
    matching = [line for line in CURL_LINES if re.search(pattern + r"(\s|\?|\"|'|$)", line)
                and ((method == "GET" and " -X " not in line) or f"-X {method}" in line)]
    assert matching, f"no curl example for {endpoint}"
