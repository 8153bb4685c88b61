"""The Flask extension: one span per request, W3C trace context, no I/O on the request path.

The middleware wraps ``app.wsgi_app``. Per request it parses ``traceparent``,
wraps ``start_response`` (to learn the status and add ``X-Trace-Id``) and the
response iterable (so the duration ends when the body has been sent or
closed, streaming included), then hands one tuple to the span store's queue.
The URL rule is read from the request object Werkzeug leaves in the environ,
so no Flask hook runs per request. Exceptions are recorded by wrapping the
app's ``handle_user_exception``/``handle_exception``, which Flask calls for
every exception, handled by an errorhandler or not.

Anything that fails inside telemetry is counted in ``internal_errors`` and
logged at most once a minute; the request is served as if telemetry were
not there. The app's own exceptions are recorded and re-raised unchanged.
"""
from __future__ import annotations

import functools
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from telemetry.config import as_bool, as_number, as_regex_list, as_str, config_keys, from_settings, read_config, setting
from telemetry.context import CURRENT_SPAN
from telemetry.logs import RateLimitedLog, log
from telemetry.propagation import instrument_requests
from telemetry.store import SpanStore
from telemetry.tracecontext import (
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
    sampled_by_ratio,
)

#: ``http.route`` of a request that matched no URL rule (one low-cardinality value).
UNMATCHED_ROUTE = "<unmatched>"
_ENVIRON_KEY = "telemetry.span"
_MAX_EXCEPTION_MESSAGE_CHARS = 1024

_DEFAULT_EXCLUDE_PATHS = (r"^/aiops/", r"^/simulate/", r"^/api/v1/simulator/", r"^/metrics$", r"^/static/",
                          r"^/favicon\.ico$")


@dataclass
class TelemetryState:
    """Per-app state kept in ``app.extensions["telemetry"]``: the settings (each ``setting``
    field is its config key, so ``TELEMETRY_CONFIG`` and the README's table come from here),
    the span store, and the counters."""

    config: dict[str, Any] = field(default_factory=dict)
    store: SpanStore | None = None
    enabled: bool = setting("TELEMETRY_ENABLED", True, as_bool, "bool",
                            "Record spans. `False` installs nothing at all.")
    service: str = setting("TELEMETRY_SERVICE_NAME", lambda app: app.name, as_str(), "string",
                           "Service name stored on every span.",
                           shown_default="the Flask app's name (`shop` in the demo)")
    db_path: str = setting("TELEMETRY_DB_PATH", lambda app: os.path.join(app.instance_path, "telemetry.db"),
                           as_str(), "file path", "SQLite file of the span store.",
                           shown_default="`<instance folder>/telemetry.db`")
    exclude_paths: tuple[str, ...] = setting(
        "TELEMETRY_EXCLUDE_PATHS", _DEFAULT_EXCLUDE_PATHS, as_regex_list, "list of regexes",
        "Paths (matched with `re.search`) that are not recorded. From the environment: comma-separated.")
    sample_rate: float = setting(
        "TELEMETRY_SAMPLE_RATE", 1.0, as_number(0.0, 1.0), "ratio in [0, 1]",
        "Share of new traces recorded, decided on the trace id. Parent-based: an incoming `traceparent`'s "
        "sampled flag wins.")
    retention_hours: float = setting(
        "TELEMETRY_RETENTION_HOURS", 168.0, as_number(0.0, min_exclusive=True), "hours",
        "Spans older than this are deleted about once a minute, 5000 rows at a time.")
    propagate: bool = setting(
        "TELEMETRY_INSTRUMENT_REQUESTS", True, as_bool, "bool",
        "Add `traceparent`/`tracestate` to every `requests` call made while handling a request.")
    queue_size: int = setting(
        "TELEMETRY_QUEUE_SIZE", 10000, as_number(1, integer=True), "spans",
        "Bound of the in-memory queue; when full, spans are dropped and counted (`dropped_spans`).")
    batch_size: int = setting(
        "TELEMETRY_BATCH_SIZE", 10000, as_number(1, integer=True), "spans",
        "Most spans written in one transaction (the writer's connection also keeps a 32 MiB page cache for "
        "the trace-id index).")
    flush_interval_ms: float = setting(
        "TELEMETRY_FLUSH_INTERVAL_MS", 200.0, as_number(1.0), "milliseconds",
        "Longest time a span waits in the queue before the writer stores it.")
    max_path_chars: int = setting("TELEMETRY_MAX_PATH_CHARS", 512, as_number(16, integer=True), "characters",
                                  "Raw paths are cut to this length.")
    max_stack_chars: int = setting(
        "TELEMETRY_MAX_STACKTRACE_CHARS", 8192, as_number(0, integer=True), "characters",
        "Stack traces keep their last this-many characters (the innermost frames).")
    trace_header: str = setting("TELEMETRY_TRACE_HEADER", "X-Trace-Id", as_str(), "header name",
                                "Response header that carries the trace id.")
    exclude: re.Pattern | None = field(init=False, default=None)  #: ``exclude_paths`` as one pattern
    internal_errors: int = 0
    warn: RateLimitedLog = field(default_factory=RateLimitedLog)

    def __post_init__(self):
        patterns = self.exclude_paths
        self.exclude = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def internal_error(self, where: str) -> None:
        """Count and log (rate-limited) a failure inside telemetry."""
        self.internal_errors += 1
        self.warn.warning("internal:" + where, "telemetry: internal error in %s (the request is unaffected)",
                          where, exc_info=True)

    def stats(self) -> dict[str, int]:
        """Counters: spans written, dropped (queue full or write failed),
        failed batches, spans queued now, and internal errors."""
        s = self.store.stats() if self.store else None
        return {
            "written": s.written if s else 0,
            "dropped_spans": s.dropped_spans if s else 0,
            "write_errors": s.write_errors if s else 0,
            "queued": s.queued if s else 0,
            "internal_errors": self.internal_errors,
        }


#: Every TELEMETRY_* key, in the order of ``TelemetryState``'s fields.
TELEMETRY_CONFIG = config_keys(TelemetryState)


class _ActiveSpan:
    """The span of one request in flight; also its response iterable."""

    __slots__ = ("state", "environ", "trace_id", "span_id", "parent_span_id", "sampled", "tracestate",
                 "start_time", "t0", "status", "rule", "exc", "stack", "iterable", "token", "_start_response",
                 "finished")

    def __init__(self, state: TelemetryState, environ: dict, start_response):
        self.state = state
        self.environ = environ
        self._start_response = start_response
        parent = parse_traceparent(environ.get("HTTP_TRACEPARENT"))
        if parent is None:
            self.trace_id = new_trace_id()
            self.parent_span_id = None
            self.sampled = sampled_by_ratio(self.trace_id, state.sample_rate)
            self.tracestate = None
        else:
            self.trace_id = parent.trace_id
            self.parent_span_id = parent.parent_span_id
            self.sampled = parent.sampled
            self.tracestate = parse_tracestate(environ.get("HTTP_TRACESTATE"))
        self.span_id = new_span_id()
        self.status = None
        self.rule = None
        self.exc = None
        self.stack = None
        self.iterable = None
        self.finished = False
        self.start_time = time.time()
        self.t0 = perf_counter()

    @property
    def traceparent(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, self.sampled)

    def start_response(self, status, headers, exc_info=None):
        # Flask calls this before it pops the request context, while the
        # request object (and its matched URL rule) is still in the environ.
        self.status = status
        environ_request = self.environ.get("werkzeug.request")
        if environ_request is not None:
            self.rule = environ_request.url_rule
        headers.append((self.state.trace_header, self.trace_id))
        return self._start_response(status, headers, exc_info)

    def record_exception(self, exc: BaseException) -> None:
        if self.exc is None:
            self.exc = exc
            limit = self.state.max_stack_chars
            if limit:
                self.stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-limit:]

    # WSGI response iterable protocol: the server iterates, then calls close().
    # The span ends when the body is exhausted or closed, whichever is first.
    def __iter__(self):
        try:
            yield from self.iterable
        except GeneratorExit:  # closed early (client went away): close() ends the span
            raise
        except BaseException as exc:  # a streaming body failed mid-way
            self.record_exception(exc)
            self.finish()
            raise
        self.finish()

    def close(self):
        try:
            close = getattr(self.iterable, "close", None)
            if close is not None:
                close()
        finally:
            self.finish()

    def finish(self) -> None:
        """Build the span tuple and queue it (once)."""
        if self.finished:
            return
        self.finished = True
        duration_ms = (perf_counter() - self.t0) * 1000.0
        _restore_context(self.token)
        environ = self.environ
        environ.pop(_ENVIRON_KEY, None)  # break the environ <-> span cycle: no GC work per request
        if not self.sampled:
            return
        state = self.state
        try:
            rule = self.rule
            status = int(self.status[:3]) if self.status else 500
            exc = self.exc
            if exc is not None:
                exc_type = type(exc)
                module = exc_type.__module__
                exc_name = exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
                exc_message = str(exc)[:_MAX_EXCEPTION_MESSAGE_CHARS]
            else:
                exc_name = exc_message = None
            state.store.enqueue((
                self.trace_id, self.span_id, self.parent_span_id, state.service,
                rule.rule if rule is not None else UNMATCHED_ROUTE,
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "")[:state.max_path_chars],
                status, self.start_time, duration_ms,
                1 if (status >= 500 or exc is not None) else 0,
                exc_name, exc_message, self.stack,
            ))
        except Exception:
            state.internal_error("span finish")


def _restore_context(token) -> None:
    if token is None:
        return
    try:
        CURRENT_SPAN.reset(token)
    except ValueError:  # finished in another context (unusual servers): just clear
        CURRENT_SPAN.set(None)


class TelemetryMiddleware:
    """WSGI middleware around ``app.wsgi_app``; see the module docstring."""

    def __init__(self, wsgi_app, state: TelemetryState):
        self.wsgi_app = wsgi_app
        self.state = state

    def __call__(self, environ, start_response):
        state = self.state
        exclude = state.exclude
        if exclude is not None and exclude.search(environ.get("PATH_INFO", "")):
            return self.wsgi_app(environ, start_response)
        try:
            span = _ActiveSpan(state, environ, start_response)
            environ[_ENVIRON_KEY] = span
            span.token = CURRENT_SPAN.set(span)
        except Exception:
            state.internal_error("span start")
            return self.wsgi_app(environ, start_response)
        try:
            result = self.wsgi_app(environ, span.start_response)
        except BaseException as exc:
            try:
                span.record_exception(exc)
                span.finish()
            except Exception:
                state.internal_error("exception record")
            raise
        # The span stops being "current" when the app returns, not when the body
        # is closed: a caller that never closes the body (a test client) must not
        # leave it current in its thread. (Outgoing calls made while a streaming
        # body is produced therefore need inject_trace_headers().)
        _restore_context(span.token)
        span.token = None
        if not span.sampled:
            span.finish()
            return result
        span.iterable = result
        return span


def _wrap_exception_handler(app, name: str, state: TelemetryState) -> None:
    """Record non-HTTP exceptions on the request's span, then let Flask go on."""
    original = getattr(app, name)

    @functools.wraps(original)
    def handler(e):
        if not isinstance(e, HTTPException):
            try:
                span = request.environ.get(_ENVIRON_KEY)
                if span is not None:
                    span.record_exception(e)
            except Exception:
                state.internal_error("exception record")
        return original(e)

    setattr(app, name, handler)


class Telemetry:
    """Flask extension: ``Telemetry(app)`` or ``ext = Telemetry(); ext.init_app(app)``.

    Reads the ``TELEMETRY_*`` keys once (see ``TELEMETRY_CONFIG``), opens
    the span store and installs the middleware. State lives in
    ``app.extensions["telemetry"]``.
    """

    def __init__(self, app=None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app) -> None:
        if "telemetry" in app.extensions:
            raise RuntimeError("Telemetry is already initialised on this app")
        config = read_config(app, TELEMETRY_CONFIG)
        state = from_settings(TelemetryState, config, config=config)
        if not state.enabled:
            app.extensions["telemetry"] = state
            return
        state.store = store = SpanStore.for_path(
            state.db_path,
            max_queue=state.queue_size,
            batch_size=state.batch_size,
            flush_interval_s=state.flush_interval_ms / 1000.0,
            retention_s=state.retention_hours * 3600.0,
        )
        app.extensions["telemetry"] = state
        app.wsgi_app = TelemetryMiddleware(app.wsgi_app, state)
        _wrap_exception_handler(app, "handle_user_exception", state)
        _wrap_exception_handler(app, "handle_exception", state)
        if state.propagate:
            instrument_requests()
        log.debug("telemetry: recording %s into %s", state.service, store.path)

    @staticmethod
    def state(app=None) -> TelemetryState:
        """The ``TelemetryState`` of ``app`` (default: the current app)."""
        if app is None:
            app = current_app._get_current_object()
        return app.extensions["telemetry"]

    @classmethod
    def flush(cls, app=None, timeout: float = 5.0) -> bool:
        """Write every queued span of ``app`` now; True if done within ``timeout`` s."""
        state = cls.state(app)
        return state.store.flush(timeout) if state.store else True

    @classmethod
    def stats(cls, app=None) -> dict[str, int]:
        return cls.state(app).stats()
