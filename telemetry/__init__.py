"""Embeddable request telemetry for Flask: ``Telemetry(app)``.

One span per request in SQLite, W3C trace context in and out, no database
I/O on the request path, never breaks the host app.
"""
from telemetry.context import current_span, inject_trace_headers
from telemetry.extension import TELEMETRY_CONFIG, Telemetry, TelemetryState, UNMATCHED_ROUTE
from telemetry.store import SPAN_COLUMNS, SpanStore


def flush(timeout: float = 5.0) -> bool:
    """Write every queued span of every store in this process."""
    return all(store.flush(timeout) for store in list(SpanStore._by_path.values()))


__all__ = [
    "Telemetry", "TelemetryState", "TELEMETRY_CONFIG", "UNMATCHED_ROUTE", "SPAN_COLUMNS", "SpanStore",
    "current_span", "flush", "inject_trace_headers",
]
