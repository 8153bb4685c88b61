"""Import time: ``telemetry``, the ``aiops`` extension, a pure analysis module, and the ``aiops`` CLI.

Each figure is the median over ``--runs`` fresh interpreters (subprocesses of
this one, so the same Python and packages), run in rotated order:

* an import statement (and, for the whole start-up cost of an embedding
  app, the imports plus ``Telemetry(app)`` and ``AIOps(app)`` on a fresh
  Flask app with the scheduler off), timed inside the fresh interpreter with
  ``time.perf_counter`` around the statement (interpreter start-up excluded),
  with the number of modules it loaded and whether an extra's package
  (openai, sklearn, scipy, matplotlib) was among them;
* ``aiops --help`` (``python -m aiops --help`` from a checkout): wall time of
  the whole process, start-up included, with the interpreter's bare start-up
  (``python -c pass``) alongside for reference.

``--compare DIR`` measures another checkout (say ``git worktree add
/tmp/old cda5ca0``) side by side in the same run, with the statements of its
layout (``--compare-series aiops.series``)::

    .venv/bin/python bench/imports.py [--runs 15] [--compare /tmp/old] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("openai", "sklearn", "scipy", "matplotlib")
PROBE = """
import sys, time, json
started = time.perf_counter()
{statement}
elapsed_ms = (time.perf_counter() - started) * 1000
modules, heavy = len(sys.modules), [m for m in {heavy!r} if m in sys.modules]
import aiops
print(json.dumps({{"ms": elapsed_ms, "modules": modules, "aiops": aiops.__file__, "heavy": heavy}}))
"""


#: Imports plus set-up of a working app: what an embedding developer pays at start-up (the old layout
#: imported its features inside ``init_app``, so its import alone is not the whole cost).
APP = ("import tempfile; from flask import Flask; from telemetry import Telemetry; from aiops import AIOps; "
       "app = Flask('bench'); app.config.update(TELEMETRY_DB_PATH=tempfile.mkdtemp() + '/t.db', "
       "AIOPS_SCHEDULER=False); Telemetry(app); AIOps(app)")


def statements(series: str) -> dict[str, str]:
    return {"import telemetry": "import telemetry",
            "from aiops import AIOps": "from aiops import AIOps",
            f"import {series}": f"import {series}",
            "Telemetry(app) + AIOps(app)": APP}


def env_for(root: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = root  # before the venv's site-packages (and its editable finder)
    return env


def probe(root: str, statement: str) -> dict:
    # importing aiops after the count only reports where the package came from
    code = PROBE.format(statement=statement, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env_for(root), capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out)


def wall_ms(root: str, argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=root, env=env_for(root), capture_output=True, check=True, timeout=120)
    return (time.perf_counter() - started) * 1000


def cli_argv() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "aiops")
    return [script, "--help"] if os.path.exists(script) else [sys.executable, "-m", "aiops", "--help"]


def measure(root: str, series: str, runs: int, cli: list[str]) -> dict:
    cases = statements(series)
    samples: dict[str, list] = {name: [] for name in cases}
    samples["aiops --help"] = []
    samples["python -c pass"] = []
    names = list(samples)
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotate the order every run
            if name == "aiops --help":
                samples[name].append(wall_ms(root, cli))
            elif name == "python -c pass":
                samples[name].append(wall_ms(root, [sys.executable, "-c", "pass"]))
            else:
                samples[name].append(probe(root, cases[name]))
    out = {}
    for name, values in samples.items():
        if values and isinstance(values[0], dict):
            out[name] = {"median_ms": statistics.median(v["ms"] for v in values),
                         "min_ms": min(v["ms"] for v in values), "modules": values[0]["modules"],
                         "heavy": values[0]["heavy"], "from": os.path.dirname(values[0]["aiops"])}
        else:
            out[name] = {"median_ms": statistics.median(values), "min_ms": min(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--series", default="aiops.analysis.series", help="the pure module of this checkout")
    parser.add_argument("--compare", metavar="DIR", help="another checkout, measured in the same run")
    parser.add_argument("--compare-series", default="aiops.series", help="the pure module of --compare")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"this checkout": measure(REPO, args.series, args.runs, cli_argv())}
    if args.compare:
        results[f"{args.compare}"] = measure(os.path.abspath(args.compare), args.compare_series, args.runs,
                                              [sys.executable, "-m", "aiops", "--help"])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{sys.executable} (Python {sys.version.split()[0]}), median of {args.runs} fresh interpreters, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    for where, rows in results.items():
        print(where)
        for name, r in rows.items():
            extra = ""
            if "modules" in r:
                heavy = ", ".join(r["heavy"]) if r["heavy"] else "none"
                extra = f"  {r['modules']:>4} modules in sys.modules, extras' packages loaded: {heavy}"
            kind = ("wall, start-up included" if name in ("aiops --help", "python -c pass")
                    else "import + set-up" if name == "Telemetry(app) + AIOps(app)" else "import")
            print(f"  {name:<30} {r['median_ms']:7.1f} ms (min {r['min_ms']:6.1f}; {kind}){extra}")
        print()


if __name__ == "__main__":
    main()
