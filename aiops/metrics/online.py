"""Online, univariate anomaly detection for operational metrics.

The detector asks one question of every new point: *how rare is what I see
now, compared with everything I have seen recently?*  It answers it for three
views of the series at once, each judged against its own sliding history of
``history_points`` past values:

``value``
    the raw value (spikes, dips, a jump to a level never seen before);
``mean``
    the mean of the last ``smooth_points`` values (level shifts and sustained
    drifts that hide inside the noise of single points);
``residual``
    the value minus the mean of the ``baseline_points`` values before it
    (sudden moves relative to the local level, even when the value itself is
    common over the longer history).

An optional fourth view, ``level`` (the mean of the last ``level_points``
values, off by default), watches slower level shifts; it gets the same
overlap correction as ``mean`` and the Bonferroni factor becomes 4.

For each view, the two-sided tail probability of the current feature value is
read off the empirical distribution of its history; beyond the largest (or
smallest) value ever seen it is extrapolated with an exponential tail fitted
to the extreme ``tail_fraction`` of the history (a peaks-over-threshold
estimate), so *how far* past the record a value lands matters.  The score is
the surprise of the rarest view, ``-log10(p)``, less ``log10(3)`` to pay for
looking three times (Bonferroni); the ``mean`` view's probability is first
multiplied by ``smooth_points``, because overlapping windows give that many
times fewer independent samples.  A score of 3 means "about one in a
thousand".

Operational metrics repeat themselves daily (backups, cron jobs, batch
loads), and a spike that comes back at the same time every day is a
schedule, not an incident.  So a view that would flag is *excused* (its
surprise counts as 0) when a comparable excursion -- on the same side of the
view's median and 0.5 to 2 times as far from it -- happened at the same phase
(``season_points`` back, give or take ``season_tolerance_points``) in each of
the previous ``season_repeats`` seasons.  One earlier match could be chance;
two in a row is a pattern.  The check reads the views' own histories, so it
adds no state and is active once the history reaches back that far.

A point is flagged when its score reaches ``threshold``; after a
flag the detector stays quiet for ``refractory_points`` points, so one
incident gives one early alert rather than a storm.

Everything is causal: the verdict on a point uses only the points before it
and the point itself.  The state is a few bounded FIFOs of floats, exported by
:meth:`OnlineDetector.to_dict` and restored by :meth:`OnlineDetector.from_dict`
with identical subsequent verdicts.

No I/O, no Flask, no database: pure computation.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

__all__ = [
    "DETECTOR_NAME",
    "DetectorConfig",
    "Verdict",
    "OnlineDetector",
    "detect_series",
    "tail_surprise",
    "season_points_for",
    "with_season_from",
]

DETECTOR_NAME = "tail-surprise"
STATE_VERSION = 1
FEATURES = ("value", "mean", "residual")
_MIN_P = 1e-300  # caps the surprise of a single view at 300
DAY_S = 86400.0
#: a past excursion is "comparable" to the current one at this share of its distance from the median
_REPEAT_BAND = (0.5, 2.0)


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of :class:`OnlineDetector`; the defaults are the scored configuration."""

    history_points: int = 2000
    """Sliding reference window, in points, for each view's distribution. Default 2000."""
    min_history_points: int = 300
    """Warm-up: no score (0) until a view has this many points of history. Default 300."""
    smooth_points: int = 22
    """Window, in points, of the rolling-mean view. Default 22."""
    baseline_points: int = 8
    """Window, in points, of the local level subtracted by the residual view. Default 8."""
    tail_fraction: float = 0.05
    """Fraction of the history whose extremes fit each exponential tail. Default 0.05."""
    tail_scale_floor: float = 0.05
    """Smallest tail scale, as a fraction of the history's interquartile range. Default 0.05."""
    threshold: float = 3.0
    """Flag when score (-log10 of the corrected tail probability) reaches this. Default 3.0."""
    refractory_points: int = 50
    """After a flag, the next this-many points are never flagged. Default 50."""
    level_points: int = 0
    """Window, in points, of an optional long rolling-mean ``level`` view (0 = off). Default 0."""
    season_points: int = 288
    """Points in one season: a day at 5-minute steps (0 = no seasonal excuse). Default 288.
    ``python -m aiops detect`` derives it from the CSV's timestamps (:func:`season_points_for`)."""
    season_tolerance_points: int = 3
    """How far, in points, from the same phase a repeat may fall. Default 3."""
    season_repeats: int = 2
    """Previous seasons that must each show a comparable excursion to excuse a flag. Default 2."""

    def __post_init__(self) -> None:
        ints = {
            "history_points": 10,
            "min_history_points": 2,
            "smooth_points": 1,
            "baseline_points": 1,
            "refractory_points": 0,
            "level_points": 0,
            "season_points": 0,
            "season_tolerance_points": 0,
            "season_repeats": 1,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.min_history_points > self.history_points:
            raise ValueError("min_history_points must not exceed history_points")
        if self.season_points and self.season_points <= 2 * self.season_tolerance_points:
            raise ValueError("season_points must exceed twice season_tolerance_points (or be 0 to turn the check off)")
        if not 0.0 < self.tail_fraction < 0.5:
            raise ValueError(f"tail_fraction must be in (0, 0.5), got {self.tail_fraction!r}")
        if not self.tail_scale_floor >= 0.0:
            raise ValueError(f"tail_scale_floor must be >= 0, got {self.tail_scale_floor!r}")
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise ValueError(f"threshold must be a positive number, got {self.threshold!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectorConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DetectorConfig fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Verdict:
    """The detector's opinion on one point.

    ``score`` is the surprise in decimal digits: ``-log10`` of the
    Bonferroni-corrected tail probability of the rarest view (0 = ordinary,
    3 = about one in a thousand, capped at 300; 0 during warm-up).
    ``expected`` is the local level the point was compared with (the mean of
    the ``baseline_points`` values before it).  ``feature`` names the view that
    gave the score (``value``, ``mean``, ``residual`` or, if enabled,
    ``level``; ``""`` while warming up).
    ``is_anomaly`` is ``score >= threshold`` outside the refractory period.
    """

    is_anomaly: bool
    expected: float
    score: float
    feature: str = ""


def tail_surprise(sorted_history: Sequence[float], x: float, tail_fraction: float, scale_floor: float) -> float:
    """``-log10`` of the two-sided tail probability of ``x`` under a sorted sample.

    Inside the sample's range the probability is the empirical one,
    ``(count at least as extreme + 1) / (n + 1)``.  Past the sample's maximum
    (minimum) it is ``exp(-distance / beta) / (n + 1)``, with ``beta`` the mean
    excess of the top (bottom) ``tail_fraction`` of the sample over its
    threshold, at least ``scale_floor`` times the interquartile range.
    """
    hs = sorted_history
    n = len(hs)
    if n == 0:
        return 0.0
    m = min(max(int(tail_fraction * n), 5), n - 1) if n > 1 else 1
    floor = max((hs[(3 * n) // 4] - hs[n // 4]) * scale_floor, 1e-12)
    above = n - bisect_left(hs, x)
    if above > 0:
        p_hi = (above + 1) / (n + 1)
    else:
        u = hs[n - m - 1] if n > m else hs[0]
        beta = max(math.fsum(hs[n - m:]) / m - u, floor)
        p_hi = math.exp(-(x - hs[-1]) / beta) / (n + 1)
    below = bisect_right(hs, x)
    if below > 0:
        p_lo = (below + 1) / (n + 1)
    else:
        u = hs[m] if n > m else hs[-1]
        beta = max(u - math.fsum(hs[:m]) / m, floor)
        p_lo = math.exp(-(hs[0] - x) / beta) / (n + 1)
    return -math.log10(max(min(p_hi, p_lo, 1.0), _MIN_P))


def season_points_for(timestamps: Sequence[Any], season_s: float = DAY_S) -> int | None:
    """Points in ``season_s`` seconds (default a day) at the series' median sampling step.

    Timestamps may be epoch seconds or ISO-8601 text (``2014-02-14 14:30:00``,
    ``...T...Z``).  None when any of them does not parse, when there are fewer
    than two, or when the median step is not positive.
    """
    seconds: list[float] = []
    for ts in timestamps:
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            seconds.append(float(ts))
            continue
        text = str(ts).strip()
        try:
            seconds.append(float(text))
            continue
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        seconds.append((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp())
    steps = sorted(b - a for a, b in zip(seconds, seconds[1:]))
    if not steps:
        return None
    median_step = steps[len(steps) // 2]
    if not (median_step > 0 and math.isfinite(median_step)):
        return None
    return max(int(round(season_s / median_step)), 1)


def with_season_from(config: DetectorConfig, timestamps: Sequence[Any]) -> tuple[DetectorConfig, str]:
    """``config`` with ``season_points`` set to a day of ``timestamps``, and where that came from.

    A day of fewer than ``2 * season_tolerance_points + 1`` points turns the
    seasonal check off (0); timestamps that do not parse keep
    ``config.season_points`` (``"default"``).
    """
    derived = season_points_for(timestamps)
    if derived is None:
        return config, "default"
    if derived <= 2 * config.season_tolerance_points:
        derived = 0
    return replace(config, season_points=derived), "timestamps"


class _History:
    """A FIFO of the last ``size`` feature values, with a sorted mirror.

    ``lag`` values are held back before entering the history, so that a
    windowed feature is never compared with windows overlapping its own.
    """

    __slots__ = ("size", "lag", "pending", "fifo", "sorted")

    def __init__(self, size: int, lag: int, pending: Iterable[float] = (), fifo: Iterable[float] = ()):
        self.size, self.lag = size, lag
        self.pending: deque[float] = deque(pending)
        self.fifo: deque[float] = deque(fifo)
        self.sorted: list[float] = sorted(self.fifo)

    def back(self, lag: int) -> float:
        """The value pushed ``lag`` pushes ago (1 = the latest), whether still pending or in the history."""
        pending = len(self.pending)
        return self.pending[-lag] if lag <= pending else self.fifo[pending - lag]

    def depth(self) -> int:
        """How many pushes back :meth:`back` can reach."""
        return len(self.pending) + len(self.fifo)

    def push(self, value: float) -> None:
        self.pending.append(value)
        if len(self.pending) <= self.lag:
            return
        value = self.pending.popleft()
        self.fifo.append(value)
        insort(self.sorted, value)
        if len(self.fifo) > self.size:
            old = self.fifo.popleft()
            del self.sorted[bisect_left(self.sorted, old)]


class OnlineDetector:
    """Incremental detector: feed points in time order with :meth:`update`."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        c = self.config
        self._recent: deque[float] = deque(maxlen=max(c.smooth_points, c.baseline_points + 1, c.level_points))
        self._histories = {
            "value": _History(c.history_points, 0),
            "mean": _History(c.history_points, c.smooth_points - 1),
            "residual": _History(c.history_points, 0),
        }
        if c.level_points:
            self._histories["level"] = _History(c.history_points, c.level_points - 1)
        # windowed views: overlapping windows give ~width times fewer independent samples
        self._overlap = {"mean": c.smooth_points, "level": c.level_points}
        self._seen = 0
        self._last_flag: int | None = None

    @property
    def points_seen(self) -> int:
        return self._seen

    def update(self, timestamp: Any, value: float) -> Verdict:
        """Score one point (``timestamp`` is opaque: only the order of calls matters)."""
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"value must be a finite number, got {value!r} at {timestamp!r}")
        c = self.config
        recent = self._recent
        prior = list(recent)[-c.baseline_points:]
        expected = math.fsum(prior) / len(prior) if prior else x
        recent.append(x)
        window = list(recent)[-c.smooth_points:]
        feats = {"value": x, "mean": math.fsum(window) / len(window), "residual": x - expected}
        if c.level_points:
            long_window = list(recent)[-c.level_points:]
            feats["level"] = math.fsum(long_window) / len(long_window)

        best, best_feature = 0.0, ""
        bonferroni = math.log10(len(self._histories))
        for name, hist in self._histories.items():
            if len(hist.fifo) >= c.min_history_points:
                s = tail_surprise(hist.sorted, feats[name], c.tail_fraction, c.tail_scale_floor)
                if name in self._overlap:
                    # Overlapping windows: ~width times fewer independent samples.
                    s = max(s - math.log10(self._overlap[name]), 0.0)
                if s - bonferroni >= c.threshold and self._repeats_seasonally(hist, feats[name]):
                    s = 0.0
                if s > best:
                    best, best_feature = s, name
            hist.push(feats[name])
        score = max(best - bonferroni, 0.0)

        index = self._seen
        self._seen += 1
        quiet = self._last_flag is not None and index - self._last_flag <= c.refractory_points
        flagged = score >= c.threshold and not quiet
        if flagged:
            self._last_flag = index
        return Verdict(flagged, expected, score, best_feature)

    def _repeats_seasonally(self, hist: _History, x: float) -> bool:
        """Whether ``x`` repeats a comparable excursion at the same phase of each previous season."""
        c = self.config
        if not c.season_points or hist.depth() < c.season_repeats * c.season_points + c.season_tolerance_points:
            return False
        median = hist.sorted[len(hist.sorted) // 2]
        distance = x - median
        if distance == 0.0:
            return False
        low, high = _REPEAT_BAND
        for season in range(1, c.season_repeats + 1):
            centre = season * c.season_points
            lags = range(centre - c.season_tolerance_points, centre + c.season_tolerance_points + 1)
            if not any(low <= (hist.back(lag) - median) / distance <= high for lag in lags):
                return False
        return True

    # -- persistence ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (config included); bounded by ~3 x ``history_points`` floats."""
        return {
            "version": STATE_VERSION,
            "detector": DETECTOR_NAME,
            "config": self.config.to_dict(),
            "seen": self._seen,
            "last_flag": self._last_flag,
            "recent": list(self._recent),
            "histories": {
                name: {"pending": list(h.pending), "fifo": list(h.fifo)} for name, h in self._histories.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OnlineDetector":
        if data.get("version") != STATE_VERSION or data.get("detector") != DETECTOR_NAME:
            raise ValueError("not a tail-surprise detector state of a supported version")
        det = cls(DetectorConfig.from_dict(data["config"]))
        det._seen = int(data["seen"])
        det._last_flag = None if data["last_flag"] is None else int(data["last_flag"])
        det._recent.extend(float(v) for v in data["recent"])
        for name, h in det._histories.items():
            saved = data["histories"][name]
            det._histories[name] = _History(
                h.size, h.lag, (float(v) for v in saved["pending"]), (float(v) for v in saved["fifo"])
            )
        return det


def detect_series(
    timestamps: Sequence[Any], values: Sequence[float], config: DetectorConfig | None = None
) -> list[Verdict]:
    """Run a fresh :class:`OnlineDetector` over a whole series, point by point."""
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    det = OnlineDetector(config)
    return [det.update(t, v) for t, v in zip(timestamps, values)]
