"""Fixtures of the store tests: a copy of the round-one store, and a clock set to its time."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.aiops.store.round_one import FIXTURE, raw


@pytest.fixture
def copy(tmp_path) -> Path:
    """The round-one store copied to ``tmp_path`` (the checked-in file is never opened)."""
    target = tmp_path / "round_one.db"
    shutil.copyfile(FIXTURE, target)
    return target


@pytest.fixture
def fixture_clock(copy, monkeypatch) -> float:
    """``time.time`` runs from a minute after the fixture's last write (returned: that moment), so
    time-bounded reads (burn history, open alert groups, span retention) see it as they did then."""
    written = max(raw(copy, "SELECT max(at) FROM aiops_release_audit")[0][0],
                  raw(copy, "SELECT max(received_at) FROM aiops_alerts")[0][0],
                  raw(copy, "SELECT max(deployed_at) FROM aiops_deployments")[0][0])
    start = written + 60.0
    offset = time.time() - start
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - offset)
    return start
