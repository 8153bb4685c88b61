"""The installable distribution: light imports, package data in the wheel, console scripts, optional extras.

The wheel itself is built, installed in a fresh venv and exercised by
``.ci/smoke_wheel.sh`` (CI); these checks run in the normal suite.
"""
import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = ("telemetry", "aiops", "simulation", "llm")
#: Heavy packages of the extras ([llm] openai, [replay] scikit-learn with scipy, matplotlib).
HEAVY = ("openai", "sklearn", "scipy", "matplotlib")


def loaded_after(statement: str, *, block: tuple[str, ...] = ()) -> set[str]:
    """Module names in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    code = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block) + \
        f"{statement}\nimport json\nprint(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))"
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def top_level(names: set[str]) -> set[str]:
    return {n.partition(".")[0] for n in names} | names


def test_telemetry_import_stays_light():
    loaded = top_level(loaded_after("import telemetry"))
    assert not loaded & set(HEAVY)
    assert not {n for n in loaded if n.startswith(("aiops", "llm", "simulation"))}


def test_a_pure_analysis_module_loads_no_extension_engine_flask_or_sqlite():
    loaded = top_level(loaded_after("import aiops.analysis.series"))
    assert not loaded & {*HEAVY, "aiops.extension", "aiops.analysis.engine", "flask", "sqlite3"}


def test_the_extension_and_cli_load_no_extra():
    assert not top_level(loaded_after("from aiops import AIOps; import aiops.cli; import simulation.shop")) & set(HEAVY)


def test_every_module_imports_without_the_extras():
    """Every module of the four packages (namespace folders too) with openai, scikit-learn, scipy and
    matplotlib unimportable: a missing extra is named at the call, never at import."""
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                     if p.name != "__main__.py" and "__pycache__" not in p.parts)
    assert len(modules) > 100
    statement = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    assert not top_level(loaded_after(statement, block=HEAVY)) & set(HEAVY)


def test_package_data_covers_every_data_file():
    """Every non-Python file inside the packages is matched by a [tool.setuptools.package-data] glob."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    covered = set()
    for package, globs in patterns.items():
        folder = ROOT.joinpath(*package.split("."))
        assert folder.is_dir(), f"package-data names {package}, which is no folder"
        for pattern in globs:
            matched = {p for p in folder.glob(pattern) if p.is_file()}
            assert matched, f"{package}: {pattern} matches no file"
            covered |= matched
    data = {p for package in PACKAGES for p in (ROOT / package).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert {"index.html", "VENDOR.json", "LICENSE", "routing.json", "historical_baseline.csv.gz"} <= \
        {p.name for p in data}
    assert sorted(str(p.relative_to(ROOT)) for p in data - covered) == []


@pytest.mark.parametrize("name", sorted(PYPROJECT["project"]["scripts"]))
def test_console_scripts_name_a_callable(name):
    module, _, function = PYPROJECT["project"]["scripts"][name].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_extras_and_requirements_files():
    project = PYPROJECT["project"]
    core = {d.split(">")[0].split("<")[0].split("=")[0].lower() for d in project["dependencies"]}
    assert core == {"flask", "werkzeug", "requests", "numpy", "apscheduler", "prometheus_client", "rich", "pyyaml"}
    extras = project["optional-dependencies"]
    assert extras["llm"] == ["openai>=1.30"] and {d.split(">")[0] for d in extras["replay"]} == {"scikit-learn",
                                                                                                 "matplotlib"}
    assert extras["all"] == ["flask-aiops[llm,replay]"]
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines == ["-e .[all]"]
    dev_lines = [line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if not line.startswith("#")]
    assert dev_lines == ["-e .[all,dev]"]
