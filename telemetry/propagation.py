"""Automatic W3C trace context on outgoing ``requests`` calls.

``requests.Session.send`` is wrapped once per process. The wrapper adds
headers only while a traced request of an app with
``TELEMETRY_INSTRUMENT_REQUESTS`` on is being handled in the calling
context; everywhere else it is a pass-through. Headers the caller set
explicitly win.
"""
from __future__ import annotations

import functools
import threading

from telemetry.context import CURRENT_SPAN

_lock = threading.Lock()
_original_send = None


def instrument_requests() -> bool:
    """Install the wrapper; False when ``requests`` is not importable."""
    global _original_send
    try:
        import requests  # at the call: only an app that turns propagation on loads it
    except ImportError:  # pragma: no cover - requests is a dependency
        return False
    with _lock:
        if _original_send is not None:
            return True
        original = requests.Session.send

        @functools.wraps(original)
        def send(self, request, **kwargs):
            span = CURRENT_SPAN.get()
            if span is not None and span.state.propagate:
                try:
                    headers = request.headers
                    if "traceparent" not in headers:
                        headers["traceparent"] = span.traceparent
                        if span.tracestate and "tracestate" not in headers:
                            headers["tracestate"] = span.tracestate
                except Exception:
                    span.state.internal_error("requests propagation")
            return original(self, request, **kwargs)

        _original_send = original
        requests.Session.send = send
        return True


def uninstrument_requests() -> None:
    """Put back the original ``requests.Session.send``."""
    global _original_send
    with _lock:
        if _original_send is not None:
            import requests  # loaded already: instrument_requests imported it
            requests.Session.send = _original_send
            _original_send = None
