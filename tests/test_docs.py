"""The README documents every config key, and CI runs the README's test command."""
import re
from pathlib import Path

import pytest

from aiops.config import ANALYSIS_CONFIG, EXTENSION_CONFIG
from aiops.dashboard import DASHBOARD_CONFIG
from aiops.notify import WEBHOOK_CONFIG
from app import DEMO_CONFIG
from simulation.chaos import CHAOS_CONFIG
from telemetry.extension import TELEMETRY_CONFIG

ALL_KEYS = sorted({k.name for k in (*TELEMETRY_CONFIG, *CHAOS_CONFIG, *DEMO_CONFIG, *ANALYSIS_CONFIG,
                                    *EXTENSION_CONFIG, *WEBHOOK_CONFIG, *DASHBOARD_CONFIG)})

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


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


def test_every_aiops_endpoint_has_a_curl_example():
    from aiops.api import ENDPOINTS
    curl_lines = [line for line in README.splitlines() if line.startswith("curl")]
    for endpoint in ENDPOINTS:
        method, path = endpoint.split()[:2]
        pattern = re.escape(path.split("?")[0]).replace(re.escape("<id>"), "[^/ ]+")
        pattern = pattern.replace(re.escape("<trace_id>"), "[0-9a-f]{32}")
        matching = [line for line in curl_lines if re.search(pattern + r"(\s|\?|\"|$)", line)
                    and (method == "GET" or "-X POST" in line)]
        assert matching, f"no curl example for {endpoint}"


def _dashboard_endpoints():
    from aiops.dashboard import ENDPOINTS
    return ENDPOINTS


@pytest.mark.parametrize("endpoint", _dashboard_endpoints())
def test_every_dashboard_endpoint_has_a_curl_example(endpoint):
    method, path = endpoint.split()[:2]
    pattern = re.escape(path.split("?")[0])
    matching = [line for line in README.splitlines() if line.startswith("curl")
                and re.search(pattern + r"(\s|\?|\"|$)", line) and (method == "GET" or "-X POST" in line)]
    assert matching, f"no curl example for {endpoint}"
