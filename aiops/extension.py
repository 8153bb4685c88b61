"""The Flask extension: ``AIOps(app)`` builds every registered feature and analyses in the background.

``init_app`` reads the extension's keys and every feature's (once), opens the
store, and walks ``aiops.features.FEATURES``: each feature builds its state
on the shared ``Context`` and registers its routes. One scheduler per process
(``aiops.scheduler``) runs the app's analysis pass every
``AIOPS_ANALYSIS_INTERVAL_S``; each pass takes a lease in the database, so
when several gunicorn workers share a store only one of them analyses at a
time. A failing pass is logged and never reaches the host app.
"""
from __future__ import annotations

from flask import Blueprint, current_app

from aiops.config import EXTENSION_CONFIG
from aiops.features import FEATURES, all_endpoints, enabled
from aiops.notify import WEBHOOK_CONFIG, WebhookNotifier
from aiops.registry import Context
from aiops.scheduler import SCHEDULER, analysis_job_id
from aiops.store.database import Database
from llm import LLM_CONFIG, LLMWriter
from telemetry.config import ConfigKey, read_config, read_environment
from telemetry.web import json_error

EXTENSION_KEY = "aiops"
#: Topics the webhook notifier sends (see ``aiops.registry``).
NOTIFIED_TOPICS = ("incident", "incident.manual", "slo_alert")


def config_keys() -> tuple[ConfigKey, ...]:
    """Every key ``AIOps`` reads: its own, its services' (webhooks, the model) and every feature's."""
    return EXTENSION_CONFIG + WEBHOOK_CONFIG + LLM_CONFIG + tuple(k for f in FEATURES for k in f.config)


def _keys(settings_of) -> dict:
    """Every key of ``config_keys()``, read once by ``settings_of``."""
    return settings_of(config_keys())


def build_context(settings: dict, db: Database, app=None, notifier=None) -> Context:
    """A context with every enabled feature built on it (no routes)."""
    ctx = Context(settings=settings, db=db, api_key=settings["AIOPS_API_KEY"], llm=LLMWriter.from_settings(settings),
                  app=app, notifier=notifier)
    if notifier is not None:
        for topic in NOTIFIED_TOPICS:
            ctx.events.subscribe(topic, notifier.notify)
    for feature in enabled(settings):
        ctx.features[feature.name] = feature.build(ctx)
    return ctx


def headless_context(db: Database) -> Context:
    """The context the command line works on: settings from the environment, no app, no
    notifications, no background threads."""
    return build_context(_keys(read_environment), db)


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
        settings = _keys(lambda keys: read_config(app, keys))
        if not settings["AIOPS_ENABLED"]:
            app.extensions[EXTENSION_KEY] = None
            return
        db_path = settings["AIOPS_DB_PATH"]
        if not db_path:
            raise ValueError("AIOPS_DB_PATH must name the span store's SQLite file: initialise Telemetry(app) "
                             "before AIOps(app), or set AIOPS_DB_PATH")
        notifier = WebhookNotifier.from_config(settings) if settings["AIOPS_WEBHOOK_URLS"] else None
        ctx = build_context(settings, Database(db_path), app, notifier)
        app.extensions[EXTENSION_KEY] = ctx
        for feature in enabled(settings):
            if feature.init_app is not None:
                feature.init_app(app, ctx, ctx.features[feature.name])
        app.register_blueprint(_not_found_blueprint())
        if settings["AIOPS_SCHEDULER"] and ctx.pass_runner is not None:
            SCHEDULER.add(self.job_id(app), ctx.background_pass, settings["AIOPS_ANALYSIS_INTERVAL_S"])

    @staticmethod
    def job_id(app) -> str:
        return analysis_job_id(app)

    @staticmethod
    def state(app=None) -> Context:
        """The app's ``Context`` (default: the current app)."""
        if app is None:
            app = current_app._get_current_object()
        state = app.extensions.get(EXTENSION_KEY)
        if state is None:
            raise RuntimeError("AIOps is not initialised (or AIOPS_ENABLED is false) on this app")
        return state

    @classmethod
    def feature(cls, app=None, name: str = "analysis"):
        """The state of the feature ``name`` on the app (``KeyError`` naming the valid ones)."""
        features = cls.state(app).features
        if name not in features:
            raise KeyError(f"no feature {name!r} on this app; built: {', '.join(features)}")
        return features[name]

    @classmethod
    def analyze(cls, app=None, now_s: float | None = None):
        """Flush spans and run one pass now."""
        return cls.state(app).run_pass(now_s)

    @classmethod
    def shutdown(cls, app) -> None:
        """Stop this app's background job, its features' threads and the notifier (tests, embedding code)."""
        SCHEDULER.remove(cls.job_id(app))
        ctx = app.extensions.get(EXTENSION_KEY)
        if ctx is None:
            return
        for feature in reversed(FEATURES):
            state = ctx.features.get(feature.name)
            if state is not None and feature.close is not None:
                feature.close(state)
        if ctx.notifier is not None:
            ctx.notifier.close(5.0)
        if ctx.llm is not None:
            ctx.llm.close()
        ctx.db.close()


def _not_found_blueprint() -> Blueprint:
    """A JSON 404 for any other path under /aiops, listing the valid endpoints."""
    bp = Blueprint("aiops_not_found", __name__, url_prefix="/aiops")

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def not_found(unknown: str):
        return json_error(404, f"no such endpoint /aiops/{unknown}", "valid endpoints: " + "; ".join(all_endpoints()))

    return bp
