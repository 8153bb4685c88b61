"""Replay plots with matplotlib (Agg canvas, no display, no pyplot): PNG bytes.

``metric_png``: one metric: expected band, expected line, actual line, shaded
deviation zones (red above the band, blue below) and the incident window.
``timeline_png``: every replayed metric, one row per service, as its
deviation from the expected value in band half-widths (clipped at +-10), the
zones as bars, the incident window, and the candidate cause marked.
"""
from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np

from aiops.replay.core import MetricReplay, ReplayResult
from aiops.replay.zones import deviation
from telemetry.extras import require

_ABOVE, _BELOW, _INCIDENT = "#d62728", "#1f77b4", "#7f7f7f"


def require_plots() -> None:
    """matplotlib is installed, else ``telemetry.extras.MissingExtra`` naming ``flask-aiops[replay]``."""
    require("matplotlib", "replay", "replay plotting")


def _figure(**kwargs):
    """A Figure on its own Agg canvas: no pyplot, so no global state shared between request threads."""
    # at the call: matplotlib is heavy, and only a replay's PNGs need it (MissingExtra without it)
    require_plots()
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig, mdates


def _dates(times_s: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(t, timezone.utc) for t in times_s]


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _axis_times(ax, mdates) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=timezone.utc))
    ax.grid(True, alpha=0.3)


def metric_png(result: ReplayResult, metric: MetricReplay) -> bytes:
    """One metric's replay as PNG bytes."""
    fig, mdates = _figure(figsize=(9, 3.2))
    ax = fig.subplots()
    x = _dates(metric.times_s)
    f = metric.forecast
    ax.fill_between(x, f.lower, f.upper, color="#2ca02c", alpha=0.2,
                    label=f"expected band ({f.backtest.nominal_coverage:.0%})")
    ax.plot(x, f.expected, color="#2ca02c", lw=1.2, ls="--", label="expected")
    ax.plot(x, metric.actual, color="black", lw=1.3, label="actual")
    inc = result.incident
    ax.axvspan(_dt(inc.start_s), _dt(inc.end_s), color=_INCIDENT, alpha=0.12, label="incident")
    for z in metric.zones:
        ax.axvspan(_dt(z.start_s), _dt(z.end_s), color=_ABOVE if z.direction == "above" else _BELOW, alpha=0.18)
    ax.set_title(f"{metric.service} {metric.metric}: expected vs actual ({len(metric.zones)} deviation zone"
                 f"{'s' if len(metric.zones) != 1 else ''})", fontsize=10)
    ax.set_xlabel("UTC")
    _axis_times(ax, mdates)
    ax.legend(fontsize=7, loc="upper left", ncol=4)
    return _png(fig)


def timeline_png(result: ReplayResult) -> bytes:
    """The combined timeline across services as PNG bytes."""
    import matplotlib  # at the call, as in _figure
    services = list(dict.fromkeys([c.service for c in result.cascade] + [m.service for m in result.metrics]))
    fig, mdates = _figure(figsize=(9, 1.9 * len(services) + 0.6))
    axes = fig.subplots(len(services), 1, sharex=True, squeeze=False)
    cause = result.cascade[0] if result.cascade else None
    inc = result.incident
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, service in zip(axes[:, 0], services):
        ax.axvspan(_dt(inc.start_s), _dt(inc.end_s), color=_INCIDENT, alpha=0.12)
        ax.axhspan(-1, 1, color="#2ca02c", alpha=0.12)
        for n, m in enumerate(x for x in result.metrics if x.service == service):
            f = m.forecast
            d = np.clip(deviation(m.actual, f.expected, f.lower, f.upper), -10, 10)
            color = colors[n % len(colors)]
            ax.plot(_dates(m.times_s), d, lw=1.1, color=color, label=m.metric + (" (load)" if m.driver else ""))
            for z in m.zones:
                y = (9.6 - 0.7 * n) * (1 if z.direction == "above" else -1)
                ax.plot([_dt(z.start_s), _dt(z.end_s)], [y, y], lw=3, color=color, solid_capstyle="butt")
        if cause is not None and cause.service == service:
            ax.axvline(_dt(cause.start_s), color=_ABOVE, lw=1.2, ls=":")
            ax.annotate(f"first deviation: {cause.metric} {cause.direction}", (_dt(cause.start_s), 5.5),
                        fontsize=7, color=_ABOVE, xytext=(4, 0), textcoords="offset points")
        step = next((c for c in result.cascade if c.service == service), None)
        suffix = "" if step is None else f" (cascade #{result.cascade.index(step) + 1}, +{step.lag_s / 60:g} min)"
        ax.set_title(service + suffix, fontsize=9, loc="left")
        ax.set_ylim(-10.5, 10.5)
        ax.set_ylabel("band widths", fontsize=7)
        ax.legend(fontsize=6, loc="lower left", ncol=3)
        _axis_times(ax, mdates)
    axes[-1, 0].set_xlabel("UTC (grey: incident; green: expected band; bars: deviation zones)")
    fig.suptitle(f"Resilience replay {inc.incident_id}", fontsize=10)
    return _png(fig)
