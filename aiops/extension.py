"""The Flask extension: ``AIOps(app)`` registers /aiops/* and analyses in the background.

One APScheduler ``BackgroundScheduler`` per process runs a job per app every
``AIOPS_ANALYSIS_INTERVAL_S``; each pass takes a lease in the database, so
when several gunicorn workers share a store only one of them analyses at a
time. A failing pass is logged and never reaches the host app.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from aiops.config import ANALYSIS_CONFIG, EXTENSION_CONFIG, AnalysisConfig, analysis_config
from aiops.engine import Analyzer, PassResult
from aiops.store import AnalysisStore
from telemetry.config import read_config

log = logging.getLogger("aiops")
EXTENSION_KEY = "aiops"


@dataclass
class AIOpsState:
    """Per-app state in ``app.extensions["aiops"]``."""

    settings: dict
    config: AnalysisConfig
    store: AnalysisStore
    analyzer: Analyzer
    notifier: object | None
    api_key: str | None
    app_ref: object = None
    llm: object = None  # llm.LLMWriter: documents from a model, or the deterministic writer
    pass_lock: threading.Lock = field(default_factory=threading.Lock)
    last_result: PassResult | None = None
    last_error: str | None = None
    passes: int = 0
    failed_passes: int = 0
    pass_hooks: list = field(default_factory=list)  #: called with each PassResult (SLO evaluation)
    last_pass_started: float | None = None  #: time.monotonic() when the latest pass started
    early: object = None  #: aiops.early.EarlyPassTrigger when early passes are on

    def run_pass(self, now_s: float | None = None, flush: bool = True) -> PassResult:
        """Flush buffered spans (when telemetry writes this store), then run one pass."""
        app = self.app_ref
        telemetry = app.extensions.get("telemetry") if app is not None else None
        if flush and telemetry is not None and telemetry.store is not None:
            telemetry.store.flush(5.0)
        with self.pass_lock:
            self.last_pass_started = time.monotonic()
            result = self.analyzer.run_pass(now_s)
            for hook in self.pass_hooks:
                try:
                    hook(result)
                except Exception:  # a failing hook never breaks the pass
                    log.warning("aiops: post-pass hook %r failed", hook, exc_info=True)
            self.passes += 1  # under the lock: early passes run on threads of their own
            self.last_result = result
        return result

    def background_pass(self) -> None:
        """The scheduler's job: never raises."""
        try:
            self.run_pass()
            self.last_error = None
        except Exception as exc:  # a broken pass must not kill the scheduler or the app
            self.failed_passes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("aiops: analysis pass failed", exc_info=True)


class _ProcessScheduler:
    """The one APScheduler of this process, restarted in a forked child."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scheduler = None
        self._jobs: dict[str, tuple] = {}
        os.register_at_fork(after_in_child=self._after_fork)

    def add(self, job_id: str, func, interval_s: float) -> None:
        with self._lock:
            self._jobs[job_id] = (func, interval_s)
            self._ensure_started()
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

    def _ensure_started(self) -> None:
        if self._scheduler is None:
            from apscheduler.schedulers.background import BackgroundScheduler
            self._scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
            self._scheduler.start()
            # Stop scheduling before concurrent.futures shuts its pools down at
            # interpreter exit (it registers with threading's exit hooks, which
            # run before atexit's); otherwise a due job logs an error at exit.
            register = getattr(threading, "_register_atexit", atexit.register)
            try:
                register(self._shutdown)
            except RuntimeError:  # already shutting down
                pass

    def _shutdown(self) -> None:
        """At exit: stop scheduling before the interpreter tears the executor down."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            try:
                scheduler.shutdown(wait=False)
            except Exception:
                pass

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._scheduler = None
        jobs, self._jobs = self._jobs, {}
        for job_id, (func, interval_s) in jobs.items():
            self.add(job_id, func, interval_s)


SCHEDULER = _ProcessScheduler()


def _connect_features(app, state: AIOpsState) -> None:
    """Join the features ``init_app`` registered: SLO burn-rate alerts enter
    alert triage, and a configured model refines alert classifications (never
    lowering a rules P1) and writes alert-group briefs."""
    from aiops.alerts_api import EXTENSION_KEY as ALERTS_KEY
    from aiops.slo_api import SLO_EXTENSION_KEY
    alerts = app.extensions.get(ALERTS_KEY)
    slo = app.extensions.get(SLO_EXTENSION_KEY)
    if alerts is None:
        return
    if slo is not None:
        from aiops.notify import chain_notify
        slo.notify = chain_notify(slo.notify, alerts.on_slo_alert)
    if state.llm is not None and state.llm.enabled:
        from aiops.alert_enrich import write_brief
        from aiops.triage import CLASSIFICATION_SCHEMA
        from llm.features import classification_refiner, write_feature
        alerts.refine = classification_refiner(state.llm, CLASSIFICATION_SCHEMA)
        alerts.brief_writer = lambda facts: write_feature(state.llm, "alert_brief", facts, write_brief)


def _listen_for_early_passes(app, state: AIOpsState, min_gap_s: float) -> None:
    """Run a pass as soon as this app's span writer commits spans that look
    anomalous (aiops.early), when the app's telemetry writes the analysed store."""
    from aiops.early import EarlyPassTrigger

    telemetry = app.extensions.get("telemetry")
    span_store = telemetry.store if telemetry is not None else None
    if span_store is None or os.path.abspath(span_store.path) != os.path.abspath(state.store.path):
        return
    early = state.early = EarlyPassTrigger(state.background_pass, lambda: state.last_pass_started, min_gap_s)
    early.learn(state.store.load_baselines(), time.time(), state.config)  # a restart knows its routes at once
    # after every pass: the slow thresholds and error ratios it left, less what it judged anomalous
    state.pass_hooks.append(lambda result: early.learn(state.store.load_baselines(), result.at, state.config,
                                                       {a.key for a in result.anomalies}))
    span_store.add_listener(early.on_spans)


class AIOps:
    """Flask extension: ``AIOps(app)`` or ``ext = AIOps(); ext.init_app(app)``.

    Needs a span store: ``Telemetry(app)`` first, or ``AIOPS_DB_PATH``.
    """

    def __init__(self, app=None):
        if app is not None:
            self.init_app(app)

    def init_app(self, app) -> None:
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("AIOps is already initialised on this app")
        from aiops.dashboard import DASHBOARD_CONFIG, make_dashboard_blueprint
        from aiops.metrics_api import METRICS_CONFIG, make_metrics_blueprint, metric_detection_config
        from aiops.notify import WEBHOOK_CONFIG, WebhookNotifier
        from aiops.replay.config import REPLAY_CONFIG
        from llm import LLM_CONFIG, LLMWriter

        settings = read_config(app, EXTENSION_CONFIG + ANALYSIS_CONFIG + WEBHOOK_CONFIG + LLM_CONFIG + METRICS_CONFIG
                               + REPLAY_CONFIG + DASHBOARD_CONFIG)
        if not settings["AIOPS_ENABLED"]:
            app.extensions[EXTENSION_KEY] = None
            return
        db_path = settings["AIOPS_DB_PATH"]
        if not db_path:
            raise ValueError("AIOPS_DB_PATH must name the span store's SQLite file: initialise Telemetry(app) "
                             "before AIOps(app), or set AIOPS_DB_PATH")
        config = analysis_config(settings)
        store = AnalysisStore(db_path)
        notifier = WebhookNotifier.from_config(settings) if settings["AIOPS_WEBHOOK_URLS"] else None
        analyzer = Analyzer(store, config, notify=notifier.notify if notifier else None,
                            metric_detection=metric_detection_config(settings))
        state = AIOpsState(settings=settings, config=config, store=store, analyzer=analyzer, notifier=notifier,
                           api_key=settings["AIOPS_API_KEY"], app_ref=app)
        app.extensions[EXTENSION_KEY] = state
        from aiops.api import make_blueprint
        app.register_blueprint(make_blueprint())
        from llm.api import make_blueprint as make_llm_blueprint
        state.llm = LLMWriter.from_settings(settings)
        app.register_blueprint(make_llm_blueprint())
        from aiops.slo_api import init_slo
        init_slo(app, state)
        app.register_blueprint(make_metrics_blueprint(settings["AIOPS_METRICS_MAX_BATCH"]))
        from aiops.replay_api import make_replay_blueprint
        app.register_blueprint(make_replay_blueprint())
        from aiops.alerts_api import register as register_alerts
        register_alerts(app, state)  # alert triage: own keys, routes and the engine's incidents as alerts
        _connect_features(app, state)
        if settings["AIOPS_DASHBOARD_ENABLED"]:
            app.register_blueprint(make_dashboard_blueprint(settings))
        if settings["AIOPS_SCHEDULER"]:
            SCHEDULER.add(self.job_id(app), state.background_pass, config.interval_s)
            if settings["AIOPS_EARLY_PASS"]:
                _listen_for_early_passes(app, state, settings["AIOPS_EARLY_PASS_MIN_GAP_S"])

    @staticmethod
    def job_id(app) -> str:
        return f"aiops-analysis-{id(app)}"

    @staticmethod
    def state(app=None) -> AIOpsState:
        if app is None:
            from flask import current_app
            app = current_app._get_current_object()
        state = app.extensions.get(EXTENSION_KEY)
        if state is None:
            raise RuntimeError("AIOps is not initialised (or AIOPS_ENABLED is false) on this app")
        return state

    @classmethod
    def analyze(cls, app=None, now_s: float | None = None) -> PassResult:
        """Flush spans and run one pass now."""
        return cls.state(app).run_pass(now_s)

    @classmethod
    def shutdown(cls, app) -> None:
        """Stop this app's background job and notifier (tests, embedding code)."""
        SCHEDULER.remove(cls.job_id(app))
        state = app.extensions.get(EXTENSION_KEY)
        if state is not None:
            if state.early is not None:
                telemetry = app.extensions.get("telemetry")
                if telemetry is not None and telemetry.store is not None:
                    telemetry.store.remove_listener(state.early.on_spans)
                state.early.wait()
            if state.notifier is not None:
                state.notifier.close(5.0)
            if state.llm is not None:
                state.llm.close()
            state.store.close()

