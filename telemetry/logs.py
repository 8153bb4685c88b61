"""The product's rate-limited warning log: one warning per key and interval, then a count of the rest.

No I/O but logging, no database: the span store, the webhook notifier and the
LLM writer all warn through it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Hashable

log = logging.getLogger("telemetry")


class RateLimitedLog:
    """Logs a warning per key at most once per ``interval_s`` (default 60 s)
    on ``logger`` (default: ``telemetry``), then says how many similar
    messages were suppressed in between. Never raises."""

    def __init__(self, interval_s: float = 60.0, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.logger = logger or log
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: Hashable, message: str, *args, exc_info: bool = False) -> None:
        now = self.clock()
        with self._lock:
            if now - self._last.get(key, -1e18) < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d similar message(s) suppressed)"
            args += (suppressed,)
        try:
            self.logger.warning(message, *args, exc_info=exc_info)
        except Exception:  # a broken log handler must not break the caller
            pass

    def after_fork(self) -> None:
        """A forked child (gunicorn) gets a fresh lock: the parent's may be held by a thread it does not have."""
        self._lock = threading.Lock()
