"""Expected behaviour: a gradient-boosted forecaster with conformal prediction intervals.

For each metric, on a regular grid of ``step_s`` seconds, the model predicts
the value at time ``t`` from what was known at an anchor ``a`` before the
replay window (``h = t - a`` steps ahead):

* time of day (minutes, sine/cosine) and day of week;
* the target's own past up to the anchor: last value, 15- and 60-step
  rolling means, 60-step rolling standard deviation, and the same time one
  day and one week earlier (when those fall before the anchor);
* the horizon ``h`` itself;
* the driver metrics (request rates: names containing ``request``, ``rps``,
  ``throughput`` or ``traffic``) at time ``t``, as regressors: they are the
  load the system had to serve, so "what should have happened" is
  conditioned on the load that really came. Drivers are modelled without
  other regressors.

Training rows are drawn from history only, each with a random horizon in
``[1, H]`` (``H`` the replay window's length in steps): one model serves the
whole window (direct multi-horizon forecasting). Strictly positive metrics
are modelled in log space, so bands are multiplicative.

Why this model: ``HistGradientBoostingRegressor`` (squared error) captures
step-like relations such as pods = ceil(rate / capacity) that a linear model
cannot, and handles missing lags natively; one point model per metric plus
split-conformal residual quantiles costs two fits, where quantile regression
needs three fits per metric (lower, median, upper) and does not guarantee
coverage. The last ``backtest_ratio`` of history is held out: the model
trained before it is scored there (the backtest error users see), its
residuals give the band, and that same model replays the window, so the
reported error is the error of the model used (the held-out tail still
reaches it through the lags and the seasonal profile). One fit per metric.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from aiops.replay.data import InsufficientHistory
from telemetry.config import as_number, setting
from telemetry.extras import require

#: Substrings that mark a metric as a driver (exogenous load).
DEFAULT_DRIVERS = ("request", "rps", "throughput", "traffic")
_WARMUP_STEPS = 60
_SPREAD_COLUMN = 12  # index of the seasonal IQR in ``features`` (before the drivers)


def as_forecaster(raw) -> str:
    """Parser of ``AIOPS_REPLAY_METHOD``: a name of :data:`FORECASTERS`."""
    if not isinstance(raw, str) or raw.strip() not in FORECASTERS:
        raise ValueError(f"must be one of: {', '.join(FORECASTERS)}")
    return raw.strip()


@dataclass(frozen=True)
class ModelConfig:
    """Settings of the replay model. ``coverage``: nominal band coverage (0.95);
    ``backtest_ratio``: held-out tail of history (0.2); ``min_history_points``:
    grid steps of history a metric needs (180 = 3 h at 1-minute steps);
    ``max_iter``/``learning_rate``: boosting rounds; ``seed``: horizon draws; ``method``: a name of
    :data:`FORECASTERS` (``gradient_boosting``, or the ``seasonal_quantile`` peer baseline).
    ``coverage``, ``min_history_points`` and ``method`` are config keys (``REPLAY_CONFIG``)."""

    coverage: float = setting("AIOPS_REPLAY_COVERAGE", 0.95, as_number(0.5, 0.999), "ratio",
                              "Nominal coverage of the expected band (0.95: 95 % of normal values fall inside).")
    backtest_ratio: float = 0.2
    min_history_points: int = setting(
        "AIOPS_REPLAY_MIN_HISTORY_POINTS", 180, as_number(120, integer=True), "grid points",
        "History a metric needs before it is modelled (180 = 3 h at 60 s); fewer skips the metric, and a 422 "
        "when no metric qualifies.")
    max_iter: int = 60
    learning_rate: float = 0.15
    max_leaf_nodes: int = 15
    drivers: tuple[str, ...] = DEFAULT_DRIVERS
    seed: int = 0
    method: str = setting("AIOPS_REPLAY_METHOD", "gradient_boosting", as_forecaster, "name",
                          "Expected-behaviour model: `gradient_boosting`, or the `seasonal_quantile` baseline (an "
                          "unknown name is rejected with the valid ones).")

    def __post_init__(self):
        if self.method not in FORECASTERS:
            raise ValueError(f"unknown replay method {self.method!r}; valid: {', '.join(FORECASTERS)}")
        if not 0.5 <= self.coverage < 1.0:
            raise ValueError(f"coverage must be within [0.5, 1), got {self.coverage}")
        if not 0.05 <= self.backtest_ratio <= 0.5:
            raise ValueError(f"backtest_ratio must be within [0.05, 0.5], got {self.backtest_ratio}")
        if self.min_history_points < 2 * _WARMUP_STEPS:
            raise ValueError(f"min_history_points must be at least {2 * _WARMUP_STEPS}, got "
                             f"{self.min_history_points}")


def is_driver(metric: str, drivers: tuple[str, ...] = DEFAULT_DRIVERS) -> bool:
    name = metric.lower()
    return any(d in name for d in drivers)


@dataclass
class Backtest:
    """Held-out error of the model on the last part of history (original units).

    ``coverage_ratio``: share of held-out points inside a band calibrated on
    the other half of the held-out slice (an honest coverage, not by construction)."""

    points: int
    mae: float
    mape_ratio: float | None
    coverage_ratio: float
    nominal_coverage: float
    mean_band_width: float

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(v, 6)  # noqa: E731
        return {"points": self.points, "mae": r(self.mae), "mape_ratio": r(self.mape_ratio),
                "coverage_ratio": r(self.coverage_ratio), "nominal_coverage": self.nominal_coverage,
                "mean_band_width": r(self.mean_band_width), "trust": self.trust}

    @property
    def trust(self) -> str:
        """``high`` (error <= 10 % and coverage within 7 points of nominal), ``medium`` (<= 25 %, within
        15 points), else ``low``."""
        err = self.mape_ratio if self.mape_ratio is not None else math.inf
        gap = abs(self.coverage_ratio - self.nominal_coverage)
        if err <= 0.10 and gap <= 0.07:
            return "high"
        if err <= 0.25 and gap <= 0.15:
            return "medium"
        return "low"


@dataclass
class Forecast:
    """Expected value and band on the replay grid for one metric."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    backtest: Backtest
    transform: str
    regressors: list[str] = field(default_factory=list)
    fit_ms: float = 0.0


class _Target:
    """Rolling statistics of one grid series, for feature lookups at anchors."""

    def __init__(self, y: np.ndarray):
        self.y = y
        finite = np.isfinite(y)
        filled = np.where(finite, y, 0.0)
        self.csum = np.concatenate([[0.0], np.cumsum(filled)])
        self.csq = np.concatenate([[0.0], np.cumsum(filled * filled)])
        self.ccount = np.concatenate([[0], np.cumsum(finite)])
        idx = np.where(finite, np.arange(len(y)), -1)
        self.last_idx = np.maximum.accumulate(idx) if len(y) else idx

    def last(self, a: np.ndarray) -> np.ndarray:
        li = self.last_idx[a]
        return np.where(li >= 0, self.y[np.maximum(li, 0)], np.nan)

    def mean_std(self, a: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(a - w + 1, 0)
        n = self.ccount[a + 1] - self.ccount[lo]
        s = self.csum[a + 1] - self.csum[lo]
        q = self.csq[a + 1] - self.csq[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
            var = np.where(n > 1, (q - n * mean * mean) / np.maximum(n - 1, 1), np.nan)
        return mean, np.sqrt(np.maximum(var, 0.0))


def features(grid_s: np.ndarray, step_s: float, target: _Target, i: np.ndarray, a: np.ndarray,
             drivers: list[np.ndarray]) -> np.ndarray:
    """Feature matrix for rows at grid indices ``i`` with anchors ``a`` (``a < i``)."""
    t = grid_s[i]
    minute = (t % 86400.0) / 60.0
    dow = np.floor(t / 86400.0 + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    h = (i - a).astype(float)
    mean15, _ = target.mean_std(a, 15)
    mean60, std60 = target.mean_std(a, 60)
    cols = [minute, np.sin(2 * np.pi * minute / 1440), np.cos(2 * np.pi * minute / 1440), dow, h,
            target.last(a), mean15, mean60, std60]
    for period_s in (86400.0, 7 * 86400.0):
        k = int(round(period_s / step_s))
        j = i - k
        ok = (j >= 0) & (j <= a)
        cols.append(np.where(ok, target.y[np.maximum(j, 0)], np.nan))
    q25, q50, q75 = seasonal_band(grid_s, step_s, target.y, i, days=7, half_window_steps=2, anchor=a,
                                  quantiles=(0.25, 0.5, 0.75))
    cols += [q50, q75 - q25]
    for d in drivers:
        cols.append(d[i])
    return np.column_stack(cols)


def seasonal_spread(X: np.ndarray) -> np.ndarray:
    """The seasonal interquartile range column of a ``features`` matrix (NaN where no earlier day)."""
    return X[:, _SPREAD_COLUMN]


def require_model() -> None:
    """scikit-learn is installed, else ``telemetry.extras.MissingExtra`` naming ``flask-aiops[replay]``."""
    require("sklearn", "replay", "the resilience replay")


def _regressor(config: ModelConfig):
    # at the call: heavy, only a replay fits a model; without it MissingExtra names flask-aiops[replay]
    ensemble = require("sklearn.ensemble", "replay", "the resilience replay")
    return ensemble.HistGradientBoostingRegressor(max_iter=config.max_iter, learning_rate=config.learning_rate,
                                         max_bins=255, max_leaf_nodes=config.max_leaf_nodes, min_samples_leaf=20,
                                         early_stopping=False, random_state=config.seed)


def _fit(config: ModelConfig, X: np.ndarray, y: np.ndarray):
    from threadpoolctl import threadpool_limits  # comes with scikit-learn: at the call too
    # One thread: on a shared machine OpenMP's threads fight each other (10x slower measured on 2 cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        return _regressor(config).fit(X, y)


def _predict(model, X: np.ndarray) -> np.ndarray:
    from threadpoolctl import threadpool_limits  # as in _fit
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.predict(X)


def forecast(grid_s: np.ndarray, step_s: float, y: np.ndarray, cut_idx: int, drivers: list[np.ndarray],
             config: ModelConfig, driver_names: list[str] | None = None) -> Forecast:
    """Train on ``y[:cut_idx]`` (history) and predict ``y[cut_idx:]`` from anchor ``cut_idx - 1``.

    ``drivers`` are grid arrays of the regressor metrics (their actual values are used at every step).
    Raises :class:`~aiops.replay.data.InsufficientHistory` when the history has fewer than
    ``config.min_history_points`` finite points."""
    started = time.perf_counter()
    hist = y[:cut_idx]
    finite_hist = _check_history(hist, step_s, config)
    transform = "log" if np.all(hist[finite_hist] > 0) else "identity"
    fwd = np.log if transform == "log" else (lambda v: v)
    inv = np.exp if transform == "log" else (lambda v: v)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = fwd(y.astype(float))
    z[cut_idx:] = np.nan  # nothing from the replay window leaks into the target's own features
    target = _Target(z)
    rows, anchors = _training_rows(z, cut_idx, len(y) - cut_idx, config.seed)
    X = features(grid_s, step_s, target, rows, anchors, drivers)
    spread_all = seasonal_spread(X)
    # Constant or empty columns carry nothing (and trip the binning of some scikit-learn versions).
    split = int(len(rows) * (1 - config.backtest_ratio))
    with np.errstate(invalid="ignore"):
        informative = np.array([np.isfinite(c).any() and np.nanmax(c) > np.nanmin(c) for c in X[:split].T])
    X = X[:, informative]
    yz = z[rows]
    model = _fit(config, X[:split], yz[:split])
    held_pred = _predict(model, X[split:])
    held_true = yz[split:]
    # Locally adaptive conformal band: residuals are scaled by how much this time of day varied on
    # earlier days (the seasonal IQR, floored at its median), so the band widens over a daily ramp.
    floor = float(np.nanmedian(spread_all)) if np.isfinite(spread_all).any() else 0.0
    floor = floor if floor > 0 else float(np.std(yz[:split])) or 1e-9
    scale = lambda sp: np.sqrt(np.where(np.isfinite(sp), sp, floor) ** 2 + floor ** 2)  # noqa: E731
    held_scale = scale(spread_all[split:])
    residuals = (held_true - held_pred) / held_scale
    alpha = 1 - config.coverage
    lo_q, hi_q = np.quantile(residuals, [alpha / 2, 1 - alpha / 2])
    backtest = _score(inv(held_true), inv(held_pred), residuals, inv, held_pred, held_scale, config.coverage)
    idx = np.arange(cut_idx, len(y))
    Xr = features(grid_s, step_s, target, idx, np.full(len(idx), cut_idx - 1), drivers)
    sc = scale(seasonal_spread(Xr))
    pred = _predict(model, Xr[:, informative])
    return Forecast(expected=inv(pred), lower=inv(pred + lo_q * sc), upper=inv(pred + hi_q * sc), backtest=backtest,
                    transform=transform, regressors=list(driver_names or []),
                    fit_ms=(time.perf_counter() - started) * 1000)


def _check_history(hist: np.ndarray, step_s: float, config: ModelConfig) -> np.ndarray:
    finite = np.isfinite(hist)
    n_hist = int(finite.sum())
    if n_hist < config.min_history_points:
        raise InsufficientHistory(
            f"{n_hist} points of history before the replay window; the model needs at least "
            f"{config.min_history_points} ({config.min_history_points * step_s / 3600:g} h at {step_s:g} s steps)",
            config.min_history_points, n_hist, step_s)
    return finite


def _training_rows(z: np.ndarray, cut_idx: int, horizon: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """History rows with a finite target after the warm-up, each with an anchor 1..``horizon`` steps
    before it (seeded draws): the same rows and anchors for every method, so backtests compare."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(np.isfinite(z[:cut_idx]))
    rows = rows[rows >= min(_WARMUP_STEPS, cut_idx // 4) + 1]
    h = rng.integers(1, max(2, horizon + 1), size=len(rows))
    h = np.minimum(h, rows)  # anchors stay >= 0
    return rows, rows - h


def seasonal_forecast(grid_s: np.ndarray, step_s: float, y: np.ndarray, cut_idx: int, drivers: list[np.ndarray],
                      config: ModelConfig, driver_names: list[str] | None = None) -> Forecast:
    """The peer baseline: a seasonal-naive rolling-quantile band (:func:`seasonal_band`: the same
    minute +-15 steps on the 7 previous days, known at the anchor), scored on the same held-out rows
    and anchors as the gradient-boosting model. No regressors, no training."""
    started = time.perf_counter()
    _check_history(y[:cut_idx], step_s, config)
    z = y.astype(float).copy()
    z[cut_idx:] = np.nan
    rows, anchors = _training_rows(z, cut_idx, len(y) - cut_idx, config.seed)
    split = int(len(rows) * (1 - config.backtest_ratio))
    med, lo, hi = seasonal_band(grid_s, step_s, z, rows[split:], config.coverage, anchor=anchors[split:])
    true = z[rows[split:]]
    ok = np.isfinite(med)
    err = np.abs(true[ok] - med[ok])
    nz = np.abs(true[ok]) > 1e-9
    backtest = Backtest(points=int(ok.sum()), mae=float(err.mean()) if ok.any() else float("nan"),
                        mape_ratio=float(np.mean(err[nz] / np.abs(true[ok][nz]))) if nz.any() else None,
                        coverage_ratio=float(np.mean((true[ok] >= lo[ok]) & (true[ok] <= hi[ok]))) if ok.any()
                        else float("nan"), nominal_coverage=config.coverage,
                        mean_band_width=float(np.mean(hi[ok] - lo[ok])) if ok.any() else float("nan"))
    idx = np.arange(cut_idx, len(y))
    e, lo_r, hi_r = seasonal_band(grid_s, step_s, z, idx, config.coverage, anchor=np.full(len(idx), cut_idx - 1))
    return Forecast(expected=e, lower=lo_r, upper=hi_r, backtest=backtest, transform="identity",
                    regressors=[], fit_ms=(time.perf_counter() - started) * 1000)


def _score(true: np.ndarray, pred: np.ndarray, residuals: np.ndarray, inv, pred_z: np.ndarray,
           scale: np.ndarray, coverage: float) -> Backtest:
    """Backtest figures; coverage from a band calibrated on even held-out points, judged on odd ones."""
    err = np.abs(true - pred)
    nz = np.abs(true) > 1e-9
    mape = float(np.mean(err[nz] / np.abs(true[nz]))) if nz.any() else None
    alpha = 1 - coverage
    calib, judge = residuals[0::2], residuals[1::2]
    lo, hi = np.quantile(calib, [alpha / 2, 1 - alpha / 2])
    covered = float(np.mean((judge >= lo) & (judge <= hi))) if len(judge) else float("nan")
    lo_all, hi_all = np.quantile(residuals, [alpha / 2, 1 - alpha / 2])
    width = float(np.mean(inv(pred_z + hi_all * scale) - inv(pred_z + lo_all * scale)))
    return Backtest(points=len(true), mae=float(np.mean(err)), mape_ratio=mape, coverage_ratio=covered,
                    nominal_coverage=coverage, mean_band_width=width)


def seasonal_band(grid_s: np.ndarray, step_s: float, y: np.ndarray, idx: np.ndarray, coverage: float = 0.95,
                  days: int = 7, half_window_steps: int = 15, anchor: np.ndarray | None = None,
                  quantiles: tuple[float, ...] | None = None) -> tuple[np.ndarray, ...]:
    """The peer baseline: seasonal-naive rolling-quantile band. For each index, the values at the same
    time of day on each of the ``days`` previous days (+-``half_window_steps``) that are at or before its
    anchor; expected = their median, band = their (1-coverage)/2 quantiles. Returns (expected, lower, upper),
    or the requested ``quantiles``."""
    day = int(round(86400.0 / step_s))
    anchor = np.full(len(idx), len(y) - 1) if anchor is None else anchor
    offsets = np.array([k * day + j for k in range(1, days + 1)
                        for j in range(-half_window_steps, half_window_steps + 1)])
    cols = idx[:, None] - offsets[None, :]
    ok = (cols >= 0) & (cols <= anchor[:, None])
    vals = np.where(ok, y[np.clip(cols, 0, len(y) - 1)], np.nan)
    alpha = 1 - coverage
    wanted = quantiles or (0.5, alpha / 2, 1 - alpha / 2)
    return tuple(_row_quantiles(vals, wanted))


def _row_quantiles(vals: np.ndarray, qs) -> list[np.ndarray]:
    """Linear-interpolated quantiles of each row ignoring NaN (NaN for an all-NaN row); vectorised
    (``np.nanquantile`` along rows is ~50x slower)."""
    srt = np.sort(vals, axis=1)  # NaN sort last
    n = np.isfinite(srt).sum(axis=1)
    rows = np.arange(len(srt))
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        v = srt[rows, lo] * (1 - frac) + srt[rows, hi] * frac
        out.append(np.where(n > 0, v, np.nan))
    return out


#: Expected-behaviour methods by name (``ModelConfig.method``).
FORECASTERS = {"gradient_boosting": forecast, "seasonal_quantile": seasonal_forecast}
