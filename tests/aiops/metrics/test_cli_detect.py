"""Tests of ``python -m aiops detect`` (run in a subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from aiops.metrics.online import DetectorConfig

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiops", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def write_csv(path: Path, n: int = 600, spike_at: int = 450, header: str = "timestamp,value") -> Path:
    rng = np.random.default_rng(0)
    values = 20.0 + rng.standard_normal(n)
    values[spike_at] += 15.0
    lines = [header] + [f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z,{v:.4f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_detect_happy_path(tmp_path):
    csv_path = write_csv(tmp_path / "series.csv")
    proc = run_cli("detect", "--csv", str(csv_path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"anomalies", "points", "detector"}
    assert out["points"] == 600
    assert out["detector"]["name"] == "tail-surprise"
    # one point a minute: the seasonal check's day is 1440 points, derived from the timestamps
    assert out["detector"]["parameters"] == DetectorConfig(season_points=1440).to_dict()
    assert out["detector"]["season_points_from"] == "timestamps"
    assert out["anomalies"], "the planted spike should be reported"
    first = out["anomalies"][0]
    assert {"timestamp", "value", "expected", "score"} <= set(first)
    assert first["timestamp"] == "2024-01-01T07:30:00Z"  # row 450, echoed verbatim
    assert first["value"] > 30 and abs(first["expected"] - 20) < 2 and first["score"] >= 3.0
    assert "  " in proc.stdout  # pretty-printed


def test_detect_other_columns_and_parameters(tmp_path):
    csv_path = write_csv(tmp_path / "s.csv", header="when,latency_ms")
    proc = run_cli("detect", "--csv", str(csv_path), "--column", "latency_ms", "--timestamp-column", "when",
                   "--threshold", "4.5")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["detector"]["parameters"]["threshold"] == 4.5
    assert [a["timestamp"] for a in out["anomalies"]] == ["2024-01-01T07:30:00Z"]


def test_detect_season_points_flag_and_unparsed_timestamps(tmp_path):
    csv_path = write_csv(tmp_path / "s.csv")
    proc = run_cli("detect", "--csv", str(csv_path), "--season-points", "0")
    assert proc.returncode == 0, proc.stderr
    detector = json.loads(proc.stdout)["detector"]
    assert detector["parameters"]["season_points"] == 0 and detector["season_points_from"] == "--season-points"
    opaque = tmp_path / "opaque.csv"
    opaque.write_text("timestamp,value\n" + "".join(f"row{i},{i % 7}\n" for i in range(50)))
    detector = json.loads(run_cli("detect", "--csv", str(opaque)).stdout)["detector"]
    assert detector["parameters"]["season_points"] == DetectorConfig().season_points
    assert detector["season_points_from"] == "default"
    bad = run_cli("detect", "--csv", str(csv_path), "--season-points", "4")
    assert bad.returncode == 2 and "season_points" in bad.stderr


def test_detect_missing_column(tmp_path):
    csv_path = write_csv(tmp_path / "s.csv")
    proc = run_cli("detect", "--csv", str(csv_path), "--column", "latency")
    assert proc.returncode == 2
    assert "latency" in proc.stderr and "timestamp, value" in proc.stderr
    assert proc.stdout == ""


def test_detect_non_numeric_value_reports_line(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("timestamp,value\nt0,1.5\nt1,2.5\nt2,oops\nt3,4\n")
    proc = run_cli("detect", "--csv", str(csv_path))
    assert proc.returncode == 2
    assert "line 4" in proc.stderr and "oops" in proc.stderr
    assert proc.stdout == ""


def test_detect_missing_file(tmp_path):
    proc = run_cli("detect", "--csv", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2
    assert "nope.csv" in proc.stderr and "Traceback" not in proc.stderr


def test_detect_needs_csv_argument():
    proc = run_cli("detect")
    assert proc.returncode == 2
    assert "--csv" in proc.stderr


def test_detect_reader_closing_the_pipe_is_not_an_error(tmp_path):
    """`python -m aiops detect ... | head -1`: no traceback when the reader stops early."""
    csv_path = write_csv(tmp_path / "s.csv", n=600)
    proc = subprocess.run(
        f"{sys.executable} -m aiops detect --csv {csv_path} --refractory-points 0 --threshold 0.1 | head -c 20",
        shell=True, cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.stdout.startswith("{") and len(proc.stdout) == 20
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
