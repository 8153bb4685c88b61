"""The dashboard's one read of the span store (SQL lives in store modules only).

Only the five columns the RED series needs, as tuples: reading whole span rows as dicts
(``AnalysisStore.window_spans``) costs several times more over a day of spans.
"""
from __future__ import annotations

from aiops.store import AnalysisStore

_RED_SELECT = ("SELECT service, route, start_time, duration_ms, error FROM spans "
               "WHERE start_time >= ? AND start_time < ?")


def red_rows(store: AnalysisStore, start_s: float, end_s: float) -> list[tuple]:
    """``(service, route, start_time, duration_ms, error)`` of every span that started in
    [start_s, end_s) (epoch seconds; uses the span store's time index)."""
    return store.conn.execute(_RED_SELECT, (start_s, end_s)).fetchall()
