"""The span of the request being handled, per execution context (a ``contextvars.ContextVar``).

The middleware sets it for the duration of a request; outgoing-call
propagation (``telemetry.propagation``) and ``inject_trace_headers`` read it.
"""
from __future__ import annotations

import contextvars
from typing import Any

#: The active span of this context (``telemetry.extension``'s per-request span), or None.
CURRENT_SPAN: contextvars.ContextVar[Any] = contextvars.ContextVar("telemetry_span", default=None)


def current_span():
    """The span of the request being handled in this context, if any."""
    return CURRENT_SPAN.get()


def inject_trace_headers(headers: dict | None = None) -> dict:
    """Add ``traceparent`` (and ``tracestate``) of the current request to
    ``headers`` (a new dict when None) and return it. Works whether or not
    automatic ``requests`` instrumentation is on. Outside a traced request
    nothing is added; headers already present (any case) are left alone."""
    headers = {} if headers is None else headers
    span = CURRENT_SPAN.get()
    if span is not None:
        present = {str(k).lower() for k in headers}
        if "traceparent" not in present:
            headers["traceparent"] = span.traceparent
            if span.tracestate and "tracestate" not in present:
                headers["tracestate"] = span.tracestate
    return headers
