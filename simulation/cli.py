"""``python -m simulation``: list, run, validate, record and play incident scenarios, with rich output.

    python -m simulation --list [--severity S] [--difficulty D] [--tag T]
    python -m simulation memory_leak_gradual [--narrative] [--record FILE] [--seed N] [--json]
    python -m simulation memory_leak_gradual --url http://127.0.0.1:5000 [--api-key KEY] [--via-api]
    python -m simulation --interactive
    python -m simulation validate [--seed N] [--json]
    python -m simulation play FILE [--url URL]

Without ``--url`` the demo shop runs in this process on a free loopback port
(its own temporary SQLite file, or ``--db``), so request-level scenarios
still send real HTTP traffic. Exit status: 0 ok, 1 a run failed or a
validation missed, 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.prompt import Prompt
from rich.table import Table

from aiops.cli import config as aiops_config
from aiops.terminal import UsageError
from simulation import configdoc
from simulation.local import LocalDemo
from simulation.runner import (
    HttpTarget,
    Run,
    SimulationRecord,
    load_recording,
    new_simulation_id,
    save_recording,
    shifted,
)
from simulation.scenarios import (
    DIFFICULTIES,
    SEVERITIES,
    TAGS,
    ScenarioError,
    UnknownScenario,
    get_scenario,
    list_scenarios,
)
from simulation.validate import validate_all
from simulation.writers import narrative_facts, narrative_text

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "green"}
_RISK_STYLE = {"high": "red", "medium": "yellow", "low": "green"}


def _console() -> Console:
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "140"))
    return Console(width=width, highlight=False)


# -- rendering --------------------------------------------------------------------------


def scenarios_table(scenarios) -> Table:
    table = Table(title="Incident scenarios", show_lines=False)
    table.add_column("id", no_wrap=True)
    for col in ("name", "service", "severity", "difficulty", "tags", "duration", "metrics", "kind"):
        table.add_column(col)
    for s in scenarios:
        table.add_row(s.scenario_id, s.name, s.service, f"[{_SEVERITY_STYLE[s.severity]}]{s.severity}[/]",
                      s.difficulty, ", ".join(s.tags), f"{s.duration_seconds:g} s",
                      str(len({m.name for m in s.metrics})),
                      ("request-level" if s.request_level else "metrics") + (f", {len(s.phases)} phases"
                                                                              if len(s.phases) > 1 else ""))
    return table


def scenario_panel(s) -> Panel:
    table = Table(box=None, pad_edge=False)
    for col in ("phase", "metric", "baseline", "value", "σ", "pattern", "unit"):
        table.add_column(col)
    for phase in s.phases:
        for m in phase.metrics:
            table.add_row(phase.name, m.name, f"{m.baseline:g}", f"{m.value:g}", f"{m.deviation_sigma:g}", m.pattern,
                          m.unit)
    lines = [f"[bold]{s.name}[/] ({s.scenario_id}) - {s.description}",
             f"service [bold]{s.service}[/], severity [{_SEVERITY_STYLE[s.severity]}]{s.severity}[/], "
             f"{s.difficulty}, {s.duration_seconds:g} s after {s.baseline_s:g} s of healthy baseline"]
    for d in s.deployments:
        lines.append(f"deployment {d.version}, {d.minutes_before:g} min before: {d.change}")
    if s.traffic:
        faults = ", ".join(f"{f.fault} on {f.endpoint}" for f in s.traffic.faults)
        lines.append(f"traffic: {s.traffic.requests} x {s.traffic.method} {s.traffic.path} with {faults}")
    lines.append(f"expected: root cause [bold]{s.expected_root_cause}[/], actions "
                 f"{', '.join(s.expected_action_types)}")
    return Panel(Group("\n".join(lines), table), title="Scenario")


def hypotheses_table(record: dict) -> Table:
    table = Table(title="Hypotheses")
    for col in ("#", "hypothesis", "confidence", "evidence"):
        table.add_column(col)
    for h in record["hypotheses"]:
        evidence = "\n".join(f"{e['detail']} (+{e['contribution']:.2f})" for e in h["evidence"][:3])
        table.add_row(str(h["rank"]), h["title"], f"{h['confidence']:.0%}", evidence)
    return table


def actions_table(record: dict) -> Table:
    table = Table(title="Recommended actions")
    for col in ("#", "action", "score", "risk", "blast radius", "approval", "recovers in", "because"):
        table.add_column(col)
    for a in record["actions"]:
        table.add_row(str(a["rank"]), a["title"], f"{a['score']:.2f}", f"[{_RISK_STYLE[a['risk_level']]}]"
                      f"{a['risk_level']}[/]", a["blast_radius"], "required" if a["requires_approval"] else "no",
                      f"{a['time_to_recover_s']:g} s", a["because"])
    return table


def what_if_table(record: dict) -> Table:
    table = Table(title="What if: the actions side by side")
    for col in ("action", "metric", "now", "expected after", "recovers in", "resolves"):
        table.add_column(col)
    for w in record["what_if"]:
        first = True
        for m in w["metrics"] or [{"metric": "-", "now": "", "expected_after": ""}]:
            table.add_row(w["title"] if first else "", m["metric"], f"{m['now']:.4g}" if m["now"] != "" else "",
                          f"{m['expected_after']:.4g}" if m["expected_after"] != "" else "",
                          f"{w['time_to_recover_s']:g} s" if first else "",
                          f"{w['resolves_ratio']:.0%}" if first else "")
            first = False
        if w["caveat"]:
            table.add_row("", f"[italic]{w['caveat']}[/]", "", "", "", "")
    return table


def detection_table(record: dict) -> Table:
    table = Table(title="Detection against the ground truth")
    for col in ("metric", "pattern", "detected", "delay after onset"):
        table.add_column(col)
    for row in record["detection"].get("metrics", []):
        table.add_row(row["metric"], row["pattern"], "yes" if row["detected"] else "[red]no[/]",
                      "-" if row["delay_s"] is None else f"{row['delay_s']:g} s")
    return table


def show_outcome(console: Console, record: dict) -> None:
    if record.get("traffic"):
        t = record["traffic"]
        if t.get("driven"):
            console.print(f"traffic: {t['requests']} x {t['method']} {t['path']} with {', '.join(t['faults'])}: "
                          f"{t['failed']} failed, median {t['median_ms']:.0f} ms, statuses {t['statuses']}")
        else:
            console.print(f"traffic: not driven ({t['reason']})")
    if record["detection"]:
        console.print(detection_table(record))
        live = record["detection"].get("live")
        if live:
            console.print(f"live: the analysis first reported the incident {live['detected_after_onset_s']:g} s "
                          f"after its onset ({live['first_anomaly_at']})")
    if record["hypotheses"]:
        console.print(hypotheses_table(record))
    if record["actions"]:
        console.print(actions_table(record))
        console.print(what_if_table(record))
    v = record.get("validation")
    if v:
        style = "green" if v["passed"] else "red"
        console.print(f"[{style}]score {v['score']:.2f} ({'pass' if v['passed'] else 'fail'})[/]: root cause "
                      f"expected {v['root_cause']['expected']}, got {v['root_cause']['got']}; actions expected "
                      f"{', '.join(v['actions']['expected'])}, top three {', '.join(v['actions']['top_three'])}")
    if record.get("incident_url"):
        console.print(f"incident: [bold]{record['incident_id']}[/] {record['incident_url']}")
    elif record.get("incident_source") == "local":
        console.print("incident: none stored (the runner judged the series itself)")
    if record.get("error"):
        console.print(f"[red]failed: {record['error']}[/]")


class LiveSteps:
    """Progress callback: a spinner for the running step, a line per finished one."""

    _MARK = {"done": "[green]✓[/]", "skipped": "[yellow]-[/]", "error": "[red]✗[/]"}

    def __init__(self, console: Console):
        self.console = console
        self.status = None

    def __call__(self, step: str, status: str, detail: str) -> None:
        if status == "running":
            text = f"{step}: {detail}"
            if self.status is None:
                self.status = self.console.status(text)
                self.status.start()
            else:
                self.status.update(text)
            return
        self.stop()
        self.console.print(f"{self._MARK.get(status, '?')} {step}: {detail}")

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


# -- commands -----------------------------------------------------------------------------


def run_one(console: Console, scenario_id: str, args) -> int:
    try:
        scenario = get_scenario(scenario_id)
    except UnknownScenario as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    console.print(scenario_panel(scenario))
    if args.via_api:
        if not args.url:
            console.print("[red]--via-api needs --url (the server runs the simulation)[/]")
            return 2
        record = _run_via_api(console, args, scenario_id)
    else:
        record = _run_here(console, scenario, args, points=None, truth=None)
    if record is None:
        return 1
    show_outcome(console, record)
    if args.narrative:
        console.print(Markdown(narrative_text(narrative_facts(scenario.to_dict(), record))))
    if args.json:
        print(json.dumps(record, indent=2))
    return 0 if record["status"] == "completed" else 1


def _run_here(console: Console, scenario, args, points, truth, recording_path: str | None = None) -> dict | None:
    live = LiveSteps(console)
    mode = "realtime" if getattr(args, "realtime", False) else "demo"
    record = SimulationRecord(new_simulation_id(), scenario.scenario_id, mode, not args.no_analyze, args.seed)

    def go(target) -> Run:
        run = Run(scenario, target, record, progress=live, points=points, truth=truth)
        try:
            run.execute()
        finally:
            live.stop()
        return run

    if args.url:
        run = go(HttpTarget(args.url, args.api_key))
    else:
        with LocalDemo(db_path=args.db) as demo:
            console.print(f"in-process demo at {demo.url} (span store {demo.db_path}); it stops when this "
                          "command ends")
            run = go(HttpTarget(demo.url))
    if args.record and recording_path is None:
        save_recording(args.record, scenario, run)
        console.print(f"recorded to {args.record}")
    return record.to_dict()


def _run_via_api(console: Console, args, scenario_id: str) -> dict | None:
    """Start the simulation on the server (background mode) and follow its steps."""
    http = requests.Session()
    if args.api_key:
        http.headers["X-API-Key"] = args.api_key
    base = args.url.rstrip("/") + "/api/v1/simulator"
    response = http.post(f"{base}/scenarios/{scenario_id}/start", timeout=30,
                         json={"auto_analyze": not args.no_analyze, "seed": args.seed,
                               "execution_mode": "realtime" if args.realtime else "background"})
    if response.status_code >= 400:
        answer = response.json()
        console.print(f"[red]{response.status_code}: {answer.get('error')}: {answer.get('detail')}[/]")
        return None
    sim_id = response.json()["simulation_id"]
    live, seen = LiveSteps(console), {}
    while True:
        record = http.get(f"{base}/simulations/{sim_id}", timeout=30).json()
        for step in record["steps"]:
            key = (step["step"], step["status"], step["detail"])
            if seen.get(step["step"]) != key:
                seen[step["step"]] = key
                live(*key)
        if record["status"] not in ("pending", "running"):
            live.stop()
            return record
        time.sleep(0.3)


def cmd_validate(console: Console, args) -> int:
    live = LiveSteps(console)
    records = validate_all(args.seed, args.scenarios or None,
                           progress=lambda sid, step, status, detail: live(f"{sid} {step}", status, detail)
                           if status != "done" else live(f"{sid} {step}", "running", detail))
    live.stop()
    table = Table(title=f"Scenario validation (seed {args.seed})")
    for col in ("scenario", "root cause expected", "got", "actions expected", "top three", "detected", "score",
                "result"):
        table.add_column(col)
    rows = []
    for r in records:
        d = r.to_dict()
        v = d["validation"] or {"score": 0.0, "passed": False, "root_cause": {"expected": "-", "got": None},
                                "actions": {"expected": [], "top_three": []}, "detection": {"detected": 0, "total": 0}}
        rows.append({"scenario": r.scenario_id, "status": r.status, "error": r.error, **v})
        table.add_row(r.scenario_id, v["root_cause"]["expected"], str(v["root_cause"]["got"]),
                      ", ".join(v["actions"]["expected"]), ", ".join(v["actions"]["top_three"]),
                      f"{v['detection']['detected']}/{v['detection']['total']}", f"{v['score']:.2f}",
                      "[green]pass[/]" if v["passed"] else f"[red]fail[/] {r.error or ''}")
    console.print(table)
    passed = sum(1 for row in rows if row["passed"])
    console.print(f"{passed}/{len(rows)} scenarios passed; mean score "
                  f"{sum(row['score'] for row in rows) / max(len(rows), 1):.2f}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if passed == len(rows) else 1


def cmd_play(console: Console, args) -> int:
    try:
        recording = load_recording(args.file)
        scenario = get_scenario(recording["scenario_id"])
    except (OSError, ValueError, UnknownScenario) as exc:
        console.print(f"[red]cannot play {args.file}: {exc}[/]")
        return 2
    recorded = recording["outcome"]
    console.print(Panel(f"recording of [bold]{scenario.scenario_id}[/] made {recording['recorded_at']}, seed "
                        f"{recording['seed']}, {len(recording['points'])} points; recorded outcome: "
                        f"{recorded['status']}, top hypothesis "
                        f"{recorded['hypotheses'][0]['title'] if recorded['hypotheses'] else 'none'}",
                        title="Playback"))
    points, truth = shifted(recording, time.time())
    args.seed = recording["seed"]
    record = _run_here(console, scenario, args, points, truth, recording_path=args.file)
    show_outcome(console, record)
    same_root = [h["category"] for h in record["hypotheses"][:1]] == [h["category"] for h in recorded["hypotheses"][:1]]
    same_actions = [a["action_type"] for a in record["actions"]] == [a["action_type"] for a in recorded["actions"]]
    console.print(f"replayed outcome {'matches' if same_root and same_actions else 'differs from'} the recording "
                  f"(top hypothesis {'same' if same_root else 'different'}, actions "
                  f"{'same' if same_actions else 'different'})")
    return 0 if record["status"] == "completed" else 1


def interactive(console: Console, args) -> int:
    scenarios = list_scenarios()
    while True:
        console.print(scenarios_table(scenarios))
        choices = [str(i) for i in range(1, len(scenarios) + 1)]
        for i, s in enumerate(scenarios, 1):
            console.print(f"  {i}. {s.name} ({s.scenario_id})")
        answer = Prompt.ask("Run which scenario? (q quits)", choices=choices + ["q"], default="q",
                            console=console)
        if answer == "q":
            return 0
        args.narrative = Prompt.ask("Narrative mode?", choices=["y", "n"], default="n", console=console) == "y"
        run_one(console, scenarios[int(answer) - 1].scenario_id, args)


def build_parser() -> argparse.ArgumentParser:
    prog = "aiops-simulate" if os.path.basename(sys.argv[0]) == "aiops-simulate" else "python -m simulation"
    parser = argparse.ArgumentParser(prog=prog, description="Incident scenario simulator.",
                                     epilog="targets: a scenario id, 'validate', 'play FILE', or 'config' (every "
                                            "configuration key of the product; --json, or --write README.md)")
    parser.add_argument("target", nargs="?", help="scenario id, validate, play or config")
    parser.add_argument("file", nargs="?", help="recording to play (with 'play')")
    parser.add_argument("--list", action="store_true", help="list the scenarios")
    parser.add_argument("--severity", choices=SEVERITIES)
    parser.add_argument("--difficulty", choices=DIFFICULTIES)
    parser.add_argument("--tag", choices=TAGS)
    parser.add_argument("--interactive", action="store_true", help="menu of scenarios")
    parser.add_argument("--narrative", action="store_true", help="tell the story after the run")
    parser.add_argument("--url", help="a running server (default: the demo shop in this process)")
    parser.add_argument("--api-key", default=os.environ.get("AIOPS_API_KEY"), help="X-API-Key (env AIOPS_API_KEY)")
    parser.add_argument("--via-api", action="store_true",
                        help="with --url: let the server run it (POST /api/v1/simulator/.../start) and follow it")
    parser.add_argument("--db", help="in-process: SQLite file to use (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--no-analyze", action="store_true", help="inject and detect only")
    parser.add_argument("--realtime", action="store_true",
                        help="push each incident point when its time comes (takes the scenario's duration) "
                             "and report when the analysis first noticed")
    parser.add_argument("--record", metavar="FILE", help="record the injected data and outcome to FILE")
    parser.add_argument("--scenarios", nargs="*", help="validate: only these scenario ids")
    parser.add_argument("--json", action="store_true", help="also print the outcome as JSON")
    parser.add_argument("--write", metavar="FILE", help="config: rewrite the README tables between "
                                                      "<!-- config:GROUP --> markers in FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = _console()
    if args.list:
        try:
            console.print(scenarios_table(list_scenarios(args.severity, args.difficulty, args.tag)))
        except ScenarioError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
        return 0
    if args.interactive:
        return interactive(console, args)
    if args.target == "validate":
        return cmd_validate(console, args)
    if args.target == "config":
        try:
            return aiops_config.run(args, configdoc.groups())
        except UsageError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
    if args.target == "play":
        if not args.file:
            console.print("[red]play needs a recording file: python -m simulation play FILE[/]")
            return 2
        return cmd_play(console, args)
    if not args.target:
        build_parser().print_usage()
        console.print("give a scenario id (see --list), validate, play FILE, or --interactive")
        return 2
    return run_one(console, args.target, args)
