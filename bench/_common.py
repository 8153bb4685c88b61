"""Helpers shared by bench/overhead.py and bench/ingest.py (no timing assertions here)."""
from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
from importlib import metadata

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PACKAGES = (
    "flask", "werkzeug", "gunicorn", "opentelemetry-api", "opentelemetry-sdk",
    "opentelemetry-instrumentation-flask", "opentelemetry-instrumentation-wsgi",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_info() -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": load_average(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
    }


def print_machine_info(info: dict) -> None:
    print(f"machine : {info['cpu_model']} x {info['cpus']} CPU(s), load avg {info['load_average_1_5_15']}")
    print(f"python  : {info['implementation']} {info['python']} on {info['platform']}, SQLite {info['sqlite']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v))


def median(values) -> float:
    return statistics.median(values)


def count_rows(db_path: str, where: str = "1", params=()) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM spans WHERE {where}", tuple(params)).fetchone()[0]
    finally:
        conn.close()


def cpu_snapshot() -> dict:
    """Machine-wide busy and steal CPU seconds (/proc/stat) and this process's
    own CPU seconds including reaped children (os.times); diff two snapshots
    with ``cpu_delta`` to see how much CPU *other* processes used meanwhile."""
    busy = steal = float("nan")
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal_t = (fields + [0] * 8)[:8]
        busy = (user + nice + system + irq + softirq) / tick
        steal = steal_t / tick
    except (OSError, ValueError):
        pass
    t = os.times()
    return {"busy": busy, "steal": steal, "own": t.user + t.system + t.children_user + t.children_system}


def cpu_delta(before: dict, after: dict) -> dict:
    busy = after["busy"] - before["busy"]
    own = after["own"] - before["own"]
    return {"busy_cpu_s": busy, "own_cpu_s": own, "other_cpu_s": max(0.0, busy - own),
            "steal_cpu_s": after["steal"] - before["steal"]}
