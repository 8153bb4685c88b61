"""The one background scheduler of a process (APScheduler), restarted in a forked child.

Each ``AIOps`` app adds one interval job (its analysis pass). A forked child
(a gunicorn worker) gets a fresh scheduler with the same jobs; at exit the
scheduler stops before ``concurrent.futures`` tears its pools down.
"""
from __future__ import annotations

import threading
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from telemetry.lifecycle import keep_alive_hooks


class ProcessScheduler:
    """Interval jobs by id: ``add``, ``remove``, ``running``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._jobs: dict[str, tuple[Callable[[], None], float]] = {}
        keep_alive_hooks(self, at_exit=ProcessScheduler._shutdown, after_fork=ProcessScheduler._after_fork,
                         before_executors=True)

    def add(self, job_id: str, func: Callable[[], None], interval_s: float) -> None:
        """Run ``func`` every ``interval_s`` seconds (one run at a time; missed runs coalesce)."""
        with self._lock:
            self._jobs[job_id] = (func, interval_s)
            if self._scheduler is None:
                self._scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
                self._scheduler.start()
            self._scheduler.add_job(func, "interval", seconds=interval_s, id=job_id, replace_existing=True,
                                    max_instances=1, coalesce=True, misfire_grace_time=None)

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            if self._scheduler is not None:
                try:
                    self._scheduler.remove_job(job_id)
                except Exception:  # already gone
                    pass

    def running(self, job_id: str) -> bool:
        return self._scheduler is not None and self._scheduler.running and job_id in self._jobs

    def _shutdown(self) -> None:
        """At exit: stop scheduling before the interpreter tears the executor down."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._scheduler = None
        jobs, self._jobs = self._jobs, {}
        for job_id, (func, interval_s) in jobs.items():
            self.add(job_id, func, interval_s)


def analysis_job_id(app) -> str:
    """The id of ``app``'s analysis job."""
    return f"aiops-analysis-{id(app)}"


#: This process's scheduler.
SCHEDULER = ProcessScheduler()
