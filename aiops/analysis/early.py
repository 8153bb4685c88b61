"""Early passes: analyse as soon as freshly written spans look anomalous.

The background pass runs every ``AIOPS_ANALYSIS_INTERVAL_S`` (10 s), so a
fault that starts just after a pass, or just before one (too young to show),
waits up to a whole interval more to be judged.  :class:`EarlyPassTrigger`
listens to the span writer (``SpanStore.add_listener``): after each committed
batch it counts, per route with a ready baseline, the batch's requests,
errors and slow requests, and when a route's batch looks anomalous (at
least two errors above 3x the baseline's ratio plus 5 points, the rule that
also keeps such a batch out of the baselines; or at least two requests, and
more than half of them, beyond the baseline's slow threshold) it runs one
ordinary pass at once, on its own thread.  The pass itself decides what is
an anomaly; the trigger only decides *when* to look.

Bounded cost: a listener call is one loop over the batch with two dict
lookups a span (the writer thread, never the request path); at most one
early pass runs at a time, none starts within ``min_gap_s`` of the start of
the previous pass, routes the latest pass already judged anomalous do not
trigger one, and failures are the pass's own (``background_pass`` never
raises).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Collection, Mapping, Sequence

from aiops.analysis.baseline import Baseline, errors_look_anomalous, slow_threshold_ms
from aiops.analysis.config import EARLY_PASS_MIN_GAP_S, AnalysisConfig
from aiops.signals import SeriesKey
from telemetry.lifecycle import keep_alive_hooks
from telemetry.store import SPAN_COLUMNS

_SERVICE, _ROUTE, _DURATION_MS, _ERROR = (SPAN_COLUMNS.index(c) for c in ("service", "route", "duration_ms", "error"))


class EarlyPassTrigger:
    """Runs ``run_pass()`` soon after the writer commits spans that look anomalous.

    ``last_pass_started`` returns the ``clock()`` time the latest pass (any
    pass) started, or None; ``min_gap_s`` (seconds, default 2) is the least
    time from then to an early pass.  Call :meth:`learn` after every pass with
    the baselines it left, and :meth:`on_spans` with each committed batch.
    """

    def __init__(self, run_pass: Callable[[], None], last_pass_started: Callable[[], float | None],
                 min_gap_s: float = EARLY_PASS_MIN_GAP_S.default, clock: Callable[[], float] = time.monotonic):
        self.run_pass = run_pass
        self.last_pass_started = last_pass_started
        self.min_gap_s = float(min_gap_s)
        self.clock = clock
        self.fired = 0
        self._limits: dict[SeriesKey, tuple[float, Baseline]] = {}
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        keep_alive_hooks(self, after_fork=_after_fork)

    def learn(self, baselines: Mapping[SeriesKey, Baseline], now_s: float, config: AnalysisConfig,
              anomalous: Collection[SeriesKey] = ()) -> None:
        """Take the slow threshold (ms) and error ratio of every ready baseline.

        Routes in ``anomalous`` (what the latest pass judged anomalous) are
        left out: the regular passes already follow their incident, and an
        early pass every ``min_gap_s`` for the length of a fault buys nothing."""
        self._limits = {key: (slow_threshold_ms(b, now_s, config), b)
                        for key, b in baselines.items() if b.ready(config) and key not in anomalous}

    def suspects(self, batch: Sequence[tuple]) -> list[SeriesKey]:
        """Routes whose spans in ``batch`` look anomalous against their baselines."""
        limits = self._limits
        counts: dict[SeriesKey, list[int]] = {}
        for span in batch:
            key = (span[_SERVICE], span[_ROUTE])
            limit = limits.get(key)
            if limit is None:
                continue
            c = counts.get(key)
            if c is None:
                c = counts[key] = [0, 0, 0]
            c[0] += 1
            c[1] += 1 if span[_ERROR] else 0
            c[2] += 1 if span[_DURATION_MS] > limit[0] else 0
        return [key for key, (count, errors, slow) in counts.items()
                if errors_look_anomalous(limits[key][1], errors, count) or (slow >= 2 and 2 * slow > count)]

    def on_spans(self, batch: Sequence[tuple]) -> None:
        """The span-store listener: start an early pass when the batch has a suspect."""
        if not self._limits:
            return
        started = self.last_pass_started()
        if started is not None and self.clock() - started < self.min_gap_s:
            return
        if self._busy.locked() or not self.suspects(batch) or not self._busy.acquire(blocking=False):
            return
        self.fired += 1
        self._thread = threading.Thread(target=self._run, name="aiops-early-pass", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.run_pass()
        finally:
            self._busy.release()

    def wait(self, timeout_s: float = 5.0) -> None:
        """Wait for a running early pass to end (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)


def _after_fork(trigger: EarlyPassTrigger) -> None:
    """A child starts with no early pass running (the parent's thread is not copied)."""
    trigger._busy, trigger._thread = threading.Lock(), None
