"""The one lifecycle helper for objects that own background threads.

Such an object must stop cleanly when the interpreter exits, and start afresh
in a forked child (gunicorn forks its workers after the app is built: the
child has none of the parent's threads, and must not reuse its locks,
queues or connections). ``keep_alive_hooks`` registers both for as long as
the object lives: it is held weakly, so a garbage-collected object costs
nothing at exit or fork.
"""
from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Callable, TypeVar

T = TypeVar("T")


def keep_alive_hooks(obj: T, at_exit: Callable[[T], None] | None = None,
                     after_fork: Callable[[T], None] | None = None,
                     before_executors: bool = False) -> Callable[[], None]:
    """Call ``at_exit(obj)`` at interpreter exit and ``after_fork(obj)`` in a
    forked child, while ``obj`` is alive; what they raise is ignored.

    ``before_executors``: run ``at_exit`` with threading's exit hooks, before
    ``concurrent.futures`` shuts its pools down (a scheduler must stop
    submitting first), instead of with ``atexit``. Returns ``cancel()``, which
    drops the exit hook (the fork hook stays)."""
    ref = weakref.ref(obj)
    cancelled = threading.Event()

    def on_exit() -> None:
        target = ref()
        if target is not None and at_exit is not None and not cancelled.is_set():
            try:
                at_exit(target)
            except Exception:  # the interpreter is going away: nothing to report to
                pass

    def on_fork() -> None:
        target = ref()
        if target is not None and after_fork is not None:
            after_fork(target)

    registered_atexit = False
    if at_exit is not None:
        register = getattr(threading, "_register_atexit", None) if before_executors else None
        try:
            if register is not None:
                register(on_exit)
            else:
                atexit.register(on_exit)
                registered_atexit = True
        except RuntimeError:  # already shutting down
            pass
    if after_fork is not None:
        os.register_at_fork(after_in_child=on_fork)

    def cancel() -> None:
        cancelled.set()
        if registered_atexit:
            atexit.unregister(on_exit)

    return cancel
