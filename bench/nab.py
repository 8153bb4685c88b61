"""Score the online detector on NAB's realAWSCloudwatch series (standard profile).

Runs :func:`aiops.online.detect_series` with the default configuration over
every series listed in the windows file, writes the flagged timestamps to a
detections JSON, scores it with the shared ``nab_score.py`` and prints the
corpus score, per-file figures and the time taken.

    .venv/bin/python bench/nab.py [--data DIR] [--windows FILE] [--out FILE]
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops.online import DETECTOR_NAME, DetectorConfig, detect_series  # noqa: E402

SHARED = REPO / ".." / "shared"
DEFAULT_DATA = SHARED / "datasets" / "nab-aws"
DEFAULT_SCORER = SHARED / "tools" / "nab_score.py"
DEFAULT_OUT = REPO / "bench" / "out" / "nab_detections.json"


def read_series(path: Path) -> tuple[list[str], list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["timestamp"] for r in rows], [float(r["value"]) for r in rows]


def run(data: Path, windows: Path, config: DetectorConfig) -> tuple[dict[str, list[str]], float]:
    names = sorted(json.loads(windows.read_text()))
    detections: dict[str, list[str]] = {}
    started = time.perf_counter()
    for name in names:
        timestamps, values = read_series(data / name)
        verdicts = detect_series(timestamps, values, config)
        detections[name] = [t for t, v in zip(timestamps, verdicts) if v.is_anomaly]
    return detections, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of the NAB CSV files")
    parser.add_argument("--windows", type=Path, default=None, help="windows JSON (default: DATA/windows.json)")
    parser.add_argument("--scorer", type=Path, default=DEFAULT_SCORER, help="path to nab_score.py")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the detections JSON")
    args = parser.parse_args(argv)
    windows = args.windows or args.data / "windows.json"

    config = DetectorConfig()
    detections, elapsed = run(args.data, windows, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(detections, indent=1) + "\n")

    proc = subprocess.run(
        [sys.executable, str(args.scorer), str(args.data), str(windows), str(args.out)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr or proc.stdout)
        return proc.returncode or 1
    report = json.loads(proc.stdout)

    n_points = sum(len(read_series(args.data / name)[0]) for name in detections)
    print(f"detector: {DETECTOR_NAME} {json.dumps(config.to_dict())}")
    print(f"{'file':42s} {'raw':>7s} {'windows':>8s} {'fp':>4s} {'flags':>6s}")
    for name, r in report["per_file"].items():
        found = f"{r['detected_windows']}/{r['windows']}"
        print(f"{name:42s} {r['raw']:+7.3f} {found:>8s} {r['false_positives']:4d} {len(detections[name]):6d}")
    print(
        f"NAB standard score: {report['nab_standard_score']}  "
        f"detected windows: {report['detected_windows']}/{report['windows']}  "
        f"false positives: {report['false_positives']}"
    )
    print(f"time: {elapsed:.2f} s for {n_points} points ({1e6 * elapsed / n_points:.1f} us/point)")
    print(f"detections: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
