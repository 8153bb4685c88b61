"""Embeddable request telemetry for Flask: ``Telemetry(app)``.

One span per request in SQLite, W3C trace context in and out, no database
I/O on the request path, never breaks the host app.

The extension and the span store are imported on first use of their names
(``telemetry.Telemetry``, ``telemetry.SpanStore``, ...), so that the kernel
modules every package shares (``telemetry.config``, ``telemetry.timefmt``,
``telemetry.errors``, ...) load neither Flask nor sqlite3.
"""
from __future__ import annotations

from telemetry.context import current_span, inject_trace_headers

_FROM_EXTENSION = frozenset({"Telemetry", "TelemetryState", "TELEMETRY_CONFIG", "UNMATCHED_ROUTE"})
_FROM_STORE = frozenset({"SPAN_COLUMNS", "SpanStore", "flush"})


def __getattr__(name: str):
    if name in _FROM_EXTENSION:
        from telemetry import extension
        return getattr(extension, name)
    if name in _FROM_STORE:
        from telemetry import store
        return getattr(store, name)
    raise AttributeError(f"module 'telemetry' has no attribute {name!r}")


__all__ = [
    "Telemetry", "TelemetryState", "TELEMETRY_CONFIG", "UNMATCHED_ROUTE", "SPAN_COLUMNS", "SpanStore",
    "current_span", "flush", "inject_trace_headers",
]
