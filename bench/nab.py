"""Score the online detector on NAB's realAWSCloudwatch series (standard profile).

Runs :func:`aiops.online.detect_series` with the default configuration (its
``season_points`` derived from each file's timestamps, as ``python -m aiops
detect`` does) over
every series listed in the windows file, writes the flagged timestamps to a
detections JSON, scores it with the shared ``nab_score.py`` and prints the
corpus score, per-file figures and the time taken.

With ``--landscape`` it scores every cell of the declared grid
``LANDSCAPE_GRID`` (rolling-mean width x residual baseline width) and prints
the full-corpus table, each interior cell's 3x3 neighbourhood mean, the cell
the selection rule picks (the best neighbourhood mean: high ground that stays
high when a parameter moves one step, not a lone peak) and a 2-fold check of
that rule (choose on one half of the files, score the other half).

With ``--cv`` it instead runs a 2-fold cross-validation: the series, in sorted
order, are split alternately into fold A (even positions) and fold B (odd
positions); for each fold the best of the small grid ``CV_GRID`` (declared
below, default configuration first, so it wins ties) is chosen on the *other*
fold's files only, and that choice and the default configuration are scored
on the held-out fold (NAB normalisation over the held-out windows only).

    .venv/bin/python bench/nab.py [--data DIR] [--windows FILE] [--out FILE] [--cv | --landscape]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiops.metrics.online import DETECTOR_NAME, DetectorConfig, detect_series, with_season_from  # noqa: E402

SHARED = REPO / ".." / "shared"
DEFAULT_DATA = SHARED / "datasets" / "nab-aws"
DEFAULT_SCORER = SHARED / "tools" / "nab_score.py"
DEFAULT_OUT = REPO / "bench" / "out" / "nab_detections.json"


# Candidate settings for --cv, declared up front (12 combinations): an extra
# long-mean level view (off / 32 / 64 points), a shorter-memory history
# (1000 vs 2000 points) and a shorter warm-up (150 vs 300 points).  The first
# entry is the default configuration.
CV_GRID: list[dict] = [
    {"level_points": lv, "history_points": hp, "min_history_points": mh}
    for hp, mh, lv in itertools.product((2000, 1000), (300, 150), (0, 32, 64))
]


# The --landscape grid, declared up front: rolling-mean view width
# (smooth_points) x residual baseline width (baseline_points), 9 x 8 cells.
LANDSCAPE_SMOOTH = tuple(range(12, 30, 2))
LANDSCAPE_BASELINE = tuple(range(5, 13))


def read_series(path: Path) -> tuple[list[str], list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["timestamp"] for r in rows], [float(r["value"]) for r in rows]


def flagged_timestamps(timestamps: list[str], values: list[float], config: DetectorConfig) -> list[str]:
    """What ``python -m aiops detect`` flags with ``config``: the season derived from the timestamps."""
    config, _ = with_season_from(config, timestamps)
    return [t for t, v in zip(timestamps, detect_series(timestamps, values, config)) if v.is_anomaly]


def run(data: Path, windows: Path, config: DetectorConfig) -> tuple[dict[str, list[str]], float]:
    names = sorted(json.loads(windows.read_text()))
    detections: dict[str, list[str]] = {}
    started = time.perf_counter()
    for name in names:
        timestamps, values = read_series(data / name)
        detections[name] = flagged_timestamps(timestamps, values, config)
    return detections, time.perf_counter() - started


def _load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("nab_score", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def cross_validate(data: Path, windows_path: Path, scorer_path: Path) -> int:
    """2-fold CV over the series (alternate files in sorted order); prints held-out scores."""
    scorer = _load_scorer(scorer_path)
    windows = json.loads(windows_path.read_text())
    names = sorted(windows)
    folds = {"A": names[0::2], "B": names[1::2]}
    default = DetectorConfig().to_dict()
    grid = [DetectorConfig(**{**default, **g}) for g in CV_GRID]
    if grid[0] != DetectorConfig():
        raise SystemExit("CV_GRID must start with the default configuration")
    series = {name: read_series(data / name) for name in names}
    started = time.perf_counter()
    detections = []  # per grid entry: file name -> flagged timestamps
    for config in grid:
        det = {}
        for name in names:
            timestamps, values = series[name]
            det[name] = flagged_timestamps(timestamps, values, config)
        detections.append(det)

    def score(k: int, subset: list[str]) -> float:
        return scorer.score_corpus(data, {n: windows[n] for n in subset}, detections[k])["nab_standard_score"]

    def label(k: int) -> str:
        return json.dumps(CV_GRID[k], sort_keys=True)

    print(f"2-fold CV over {len(names)} series, grid of {len(grid)} settings (first = default)")
    for k in range(len(grid)):
        print(f"  [{k:2d}] {label(k)}  full corpus {score(k, names):5.1f}  "
              f"A {score(k, folds['A']):5.1f}  B {score(k, folds['B']):5.1f}")
    held_default, held_chosen = [], []
    for test_fold, train_fold in (("A", "B"), ("B", "A")):
        train_scores = [score(k, folds[train_fold]) for k in range(len(grid))]
        best = max(range(len(grid)), key=lambda k: (train_scores[k], -k))  # ties: earliest (default first)
        d, c = score(0, folds[test_fold]), score(best, folds[test_fold])
        held_default.append(d)
        held_chosen.append(c)
        print(f"held-out fold {test_fold} ({len(folds[test_fold])} series): chose [{best}] {label(best)} "
              f"(train {train_scores[best]:.1f} vs default {train_scores[0]:.1f}); "
              f"held-out chosen {c:.1f}  default {d:.1f}")
    print(f"mean held-out score: chosen {sum(held_chosen) / 2:.1f}  default {sum(held_default) / 2:.1f}")
    print(f"default, full corpus: {score(0, names):.1f}")
    print(f"time: {time.perf_counter() - started:.1f} s")
    return 0


def _fold_scores(scorer, data: Path, windows: dict, series: dict, config: DetectorConfig) -> tuple[float, ...]:
    """Unrounded NAB scores of ``config`` on (all files, fold A, fold B)."""
    names = sorted(windows)
    raw, n_windows = {}, {}
    for name in names:
        timestamps, values = series[name]
        flagged = set(flagged_timestamps(timestamps, values, config))
        r = scorer.score_series(timestamps, windows[name], flagged)
        raw[name], n_windows[name] = r["raw"], r["windows"]

    def normalised(subset: list[str]) -> float:  # nab_score.score_corpus's normalisation, unrounded
        k = sum(n_windows[n] for n in subset)
        return 100.0 * (sum(raw[n] for n in subset) + k) / (2.0 * k)

    return normalised(names), normalised(names[0::2]), normalised(names[1::2])


def landscape(data: Path, windows_path: Path, scorer_path: Path) -> int:
    """Score the LANDSCAPE grid; print the table, neighbourhood means, the rule's pick and its 2-fold check."""
    scorer = _load_scorer(scorer_path)
    windows = json.loads(windows_path.read_text())
    series = {name: read_series(data / name) for name in sorted(windows)}
    default = DetectorConfig()
    started = time.perf_counter()
    cells = {
        (s, b): _fold_scores(scorer, data, windows, series,
                             DetectorConfig(**{**default.to_dict(), "smooth_points": s, "baseline_points": b}))
        for s, b in itertools.product(LANDSCAPE_SMOOTH, LANDSCAPE_BASELINE)
    }
    interior = [(s, b) for s in LANDSCAPE_SMOOTH[1:-1] for b in LANDSCAPE_BASELINE[1:-1]]

    def around(cell: tuple[int, int]) -> list[tuple[int, int]]:  # the cell and its 8 neighbours
        si, bi = LANDSCAPE_SMOOTH.index(cell[0]), LANDSCAPE_BASELINE.index(cell[1])
        return [(LANDSCAPE_SMOOTH[si + i], LANDSCAPE_BASELINE[bi + j]) for i in (-1, 0, 1) for j in (-1, 0, 1)]

    def neighbourhood(cell: tuple[int, int], k: int) -> float:
        return sum(cells[c][k] for c in around(cell)) / 9.0

    def pick(k: int) -> tuple[int, int]:  # best neighbourhood mean; ties: the earlier cell
        return max(interior, key=lambda c: (round(neighbourhood(c, k), 9), -interior.index(c)))

    header = " ".join(f"{b:>6d}" for b in LANDSCAPE_BASELINE)
    print(f"full-corpus NAB score; rows smooth_points, columns baseline_points\n{'':>4s} {header}")
    for s in LANDSCAPE_SMOOTH:
        print(f"{s:4d} " + " ".join(f"{cells[(s, b)][0]:6.2f}" for b in LANDSCAPE_BASELINE))
    print(f"\n3x3 neighbourhood mean (interior cells)\n{'':>4s} "
          + " ".join(f"{b:>6d}" for b in LANDSCAPE_BASELINE[1:-1]))
    for s in LANDSCAPE_SMOOTH[1:-1]:
        print(f"{s:4d} " + " ".join(f"{neighbourhood((s, b), 0):6.2f}" for b in LANDSCAPE_BASELINE[1:-1]))
    chosen = pick(0)
    current = (default.smooth_points, default.baseline_points)
    print(f"\nrule's pick on all files: smooth_points={chosen[0]} baseline_points={chosen[1]} "
          f"(score {cells[chosen][0]:.2f}, neighbourhood mean {neighbourhood(chosen, 0):.2f}, "
          f"lowest of the nine {min(cells[c][0] for c in around(chosen)):.2f})")
    print(f"configured default: smooth_points={current[0]} baseline_points={current[1]}"
          + (f" (score {cells[current][0]:.2f})" if current in cells else " (outside the grid)"))
    held_rule, held_default = [], []
    for test, train, label in ((1, 2, "A"), (2, 1, "B")):
        c = pick(train)
        held_rule.append(cells[c][test])
        held_default.append(cells[current][test] if current in cells else float("nan"))
        print(f"held-out fold {label}: rule picks {c} on the other fold; held-out {cells[c][test]:.2f}, "
              f"configured default {held_default[-1]:.2f}")
    print(f"mean held-out: rule {sum(held_rule) / 2:.2f}  configured default {sum(held_default) / 2:.2f}")
    print(f"time: {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of the NAB CSV files")
    parser.add_argument("--windows", type=Path, default=None, help="windows JSON (default: DATA/windows.json)")
    parser.add_argument("--scorer", type=Path, default=DEFAULT_SCORER, help="path to nab_score.py")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the detections JSON")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cv", action="store_true", help="2-fold cross-validation over a small grid (see CV_GRID)")
    mode.add_argument("--landscape", action="store_true",
                      help="score the smooth_points x baseline_points grid and apply the neighbourhood rule")
    args = parser.parse_args(argv)
    windows = args.windows or args.data / "windows.json"
    if args.cv:
        return cross_validate(args.data, windows, args.scorer)
    if args.landscape:
        return landscape(args.data, windows, args.scorer)

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
