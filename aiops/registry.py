"""The feature registry: what a feature is, and the one context the features of an app share.

A feature is a folder of ``aiops`` (``analysis``, ``slo``, ``triage`` ...)
with a ``feature.py`` that declares one ``Feature``: its config keys, how it
builds its state, its routes, its endpoints and its ``aiops`` subcommands.
``AIOps.init_app`` walks the list in ``aiops.features`` and knows nothing of
any one of them.

Features never import each other. They meet here, through plain data:

* **events** (``ctx.events``): ``publish(topic, event, payload)`` and
  ``subscribe(topic, handler)``. Topics: ``incident`` (the analysis pass
  opened, escalated or resolved an incident: payload is its JSON),
  ``incident.manual`` (acknowledged or resolved through the API),
  ``slo_alert`` (an SLO burn-rate alert changed). A failing handler is
  logged and never reaches the publisher or the other handlers.
* **providers** (``ctx.provide(name, fn)``, ``ctx.ask(name, *args)``):
  questions one feature answers for the others, with plain data (see
  ``PROVIDERS``). Asking for a name nobody provides returns ``default``.
* **the analysis pass**: ``ctx.after_pass(hook)`` runs ``hook(result)`` after
  every pass (``result.at``, ``result.skipped``, ``result.anomalies``), and
  ``ctx.signal_sources`` are judged inside it (``aiops.signals``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from aiops.store.database import Database
from telemetry.config import ConfigKey

log = logging.getLogger("aiops")

#: ``aiops`` subcommand: (add_arguments(parser), run(args) -> exit status, help text).
Command = tuple[Callable[[Any], None], Callable[[Any], int], str]

#: Every provider name a feature may answer, with what it takes and returns (plain data only).
PROVIDERS = {
    "incident_json": "analysis: (incident_id) -> the incident as GET /aiops/incidents/<id> shows it, or None",
    "incident_record": "analysis: (incident_id) -> the stored incident (epoch-second times), or None",
    "incident_summaries": "analysis: (resolved_since_s=None) -> open incidents, plus those resolved since then: "
                          "[{id, severity, status, title, services, first_s, last_s}]",
    "service_edges": "analysis: () -> {(caller service, callee service)} of the trace dependency graph",
    "route_baselines": "analysis: () -> {(service, route): {p50_ms, p95_ms, log_mean, log_std, error_ratio, "
                       "rate_per_s, requests, ready}}",
    "error_budget_remaining": "slo: (service) -> the smallest error-budget ratio left of its SLOs, or None",
    "deploys": "triage: (since_s, service=None) -> recorded deployments, newest first",
    "open_alert_groups": "triage: (service) -> [{id, priority}] of its open alert groups",
    "metric_points": "metrics: (services, start_s, end_s) -> {(service, name): [(epoch s, value), ...]}",
}


@dataclass(frozen=True)
class Feature:
    """One feature of ``aiops``, as its ``feature.py`` declares it.

    ``build(ctx) -> state``: the feature's state from ``ctx.settings`` (its
    stores, engines, providers, event subscriptions and pass hooks); no Flask.
    ``init_app(app, ctx, state)``: what needs the app: blueprints, span
    listeners (with an app only; the command line builds without one).
    ``close(state)``: what ``AIOps.shutdown`` stops. ``enabled_key``: a bool
    key that, when false, leaves the feature out entirely."""

    name: str
    build: Callable[["Context"], Any]
    init_app: Callable[[Any, "Context", Any], None] | None = None
    config: tuple[ConfigKey, ...] = ()
    endpoints: tuple[str, ...] = ()
    commands: Mapping[str, Command] = field(default_factory=dict)
    close: Callable[[Any], None] | None = None
    enabled_key: str | None = None


class Events:
    """Topic -> handlers; ``publish`` calls each handler in order, isolating failures."""

    def __init__(self):
        self._handlers: dict[str, list[Callable[[str, dict], None]]] = {}

    def subscribe(self, topic: str, handler: Callable[[str, dict], None]) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def publish(self, topic: str, event: str, payload: dict) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(event, payload)
            except Exception:  # one broken subscriber never stops the others or the publisher
                log.warning("aiops: %s handler %r failed on %s", topic, handler, event, exc_info=True)


@dataclass
class Context:
    """What the features of one app share; ``app.extensions["aiops"]``.

    ``app`` is None on the command line (a headless context: no routes, no
    background threads). ``run_pass`` runs the analysis pass the ``analysis``
    feature installed in ``pass_runner``, then every ``after_pass`` hook."""

    settings: dict
    db: Database
    api_key: str | None = None
    llm: Any = None                      #: llm.LLMWriter: documents from a model, or the deterministic writer
    app: Any = None
    events: Events = field(default_factory=Events)
    signal_sources: list = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)  #: feature name -> its state
    notifier: Any = None                 #: aiops.notify.WebhookNotifier when AIOPS_WEBHOOK_URLS is set
    pass_runner: Callable[[float | None], Any] | None = None
    pass_hooks: list[Callable[[Any], None]] = field(default_factory=list)
    pass_lock: threading.Lock = field(default_factory=threading.Lock)
    last_result: Any = None
    last_error: str | None = None
    passes: int = 0
    failed_passes: int = 0
    last_pass_started: float | None = None  #: time.monotonic() when the latest pass started
    _providers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    # -- providers ----------------------------------------------------------------

    def provide(self, name: str, fn: Callable[..., Any]) -> None:
        """Answer ``name`` (a key of ``PROVIDERS``) with ``fn`` for every feature."""
        if name not in PROVIDERS:
            raise ValueError(f"unknown provider {name!r}; valid: {', '.join(sorted(PROVIDERS))}")
        self._providers[name] = fn

    def ask(self, name: str, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        """What the provider of ``name`` answers, or ``default`` when no feature provides it."""
        fn = self._providers.get(name)
        return default if fn is None else fn(*args, **kwargs)

    # -- the analysis pass ------------------------------------------------------------

    def after_pass(self, hook: Callable[[Any], None]) -> None:
        """Run ``hook(result)`` after every analysis pass (failures are logged)."""
        self.pass_hooks.append(hook)

    def run_pass(self, now_s: float | None = None, flush: bool = True) -> Any:
        """Flush buffered spans (when this app records telemetry), then run one pass and its hooks."""
        if self.pass_runner is None:
            raise RuntimeError("no analysis pass is installed (the analysis feature is not registered)")
        telemetry = self.app.extensions.get("telemetry") if self.app is not None else None
        if flush and telemetry is not None and telemetry.store is not None:
            telemetry.store.flush(5.0)
        with self.pass_lock:
            self.last_pass_started = time.monotonic()
            result = self.pass_runner(now_s)
            for hook in self.pass_hooks:
                try:
                    hook(result)
                except Exception:  # a failing hook never breaks the pass
                    log.warning("aiops: post-pass hook %r failed", hook, exc_info=True)
            self.passes += 1  # under the lock: early passes run on threads of their own
            self.last_result = result
        return result

    def background_pass(self) -> None:
        """The scheduler's job (and an early pass): never raises."""
        try:
            self.run_pass()
            self.last_error = None
        except Exception as exc:  # a broken pass must not kill the scheduler or the app
            self.failed_passes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("aiops: analysis pass failed", exc_info=True)
