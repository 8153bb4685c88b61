"""The README documents every config key (its tables are generated from the declarations) and every endpoint,
and CI runs the README's test command."""
import re
from pathlib import Path

import pytest

from aiops.extension import config_keys
from aiops.features import all_endpoints
from app import DEMO_CONFIG, SERVE_CONFIG
from simulation.api import ENDPOINTS as SIMULATOR_ENDPOINTS, SIMULATOR_CONFIG
from simulation.chaos import CHAOS_CONFIG
from simulation.configdoc import groups
from telemetry.configdoc import block, marked_blocks
from telemetry.extension import TELEMETRY_CONFIG

ALL_KEYS = sorted({k.name for k in (*TELEMETRY_CONFIG, *CHAOS_CONFIG, *SERVE_CONFIG, *DEMO_CONFIG, *config_keys(),
                                    *SIMULATOR_CONFIG)})
GROUPS = {group.name: group for group in groups()}
REGENERATE = "run `python -m simulation config --write README.md`"

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CURL_LINES = [line for line in README.splitlines() if line.startswith("curl")]


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_config_key_is_documented_with_default_and_unit(key):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"{key} needs exactly one row in a README config table"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 4 and all(cells), f"{key}: default, unit and meaning must all be filled in"


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_every_config_group_has_one_table_in_the_readme(name):
    names = [found for found, _body in marked_blocks(README)]
    assert names.count(name) == 1, (f"README.md needs exactly one <!-- config:{name} --> ... <!-- /config:{name} --> "
                                    f"block where the table belongs (it has {names.count(name)}); then {REGENERATE}")


@pytest.mark.parametrize("name, body", marked_blocks(README), ids=[name for name, _ in marked_blocks(README)])
def test_readme_config_tables_are_the_generated_ones(name, body):
    assert name in GROUPS, f"README.md has a block config:{name}, but no such group exists: {', '.join(GROUPS)}"
    expected = block(GROUPS[name])
    assert f"<!-- config:{name} -->\n{body}<!-- /config:{name} -->" == expected, \
        f"README.md's config:{name} table differs from the declarations in the code: {REGENERATE}"


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
