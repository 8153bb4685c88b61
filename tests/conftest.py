"""Fixtures every test package shares: live servers on loopback, app factories, the chat-completions server.

Each fixture cleans up after its test: servers stop, apps are shut down (``AIOps.shutdown``), span stores
close, writers close. Plain helpers (``LiveServer``, ``spans_in``, ``wait_for_spans``, ``wait_until``) are in
tests/helpers.py; the scripted chat server (``ChatServer``, ``reply``, ``status``, ...) in tests/chat_server.py.
The product's modules are imported inside the fixtures that need them, so a test that runs alone loads only
what it uses.
"""
from __future__ import annotations

import pytest
from flask import Flask

from telemetry import Telemetry
from telemetry.store import SpanStore
from tests.chat_server import ChatServer
from tests.helpers import LiveServer

LLM_ENV = ("AIOPS_LLM_ENABLED", "AIOPS_LLM_BASE_URL", "AIOPS_LLM_API_KEY", "AIOPS_LLM_MODEL", "OPENAI_BASE_URL",
           "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@pytest.fixture(autouse=True)
def _close_span_stores():
    yield
    SpanStore.close_all(timeout=5.0)


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    """Tests configure the endpoint explicitly; a developer's OPENAI_* must not leak in."""
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def live_server():
    """``live_server(app) -> LiveServer``; every server is stopped after the test."""
    servers = []

    def start(app):
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _settings(defaults: dict, config: dict) -> dict:
    """``defaults`` overridden by ``config``; a key given as None is left out (its default or the environment
    applies)."""
    return {key: value for key, value in {**defaults, **config}.items() if value is not None}


@pytest.fixture
def make_app(tmp_path, live_server):
    """``make_app(name="svc", telemetry=True, aiops=True, **config) -> Flask``: an app named ``name`` with
    Telemetry (spans in ``tmp_path / "t.db"``, flushed every 10 ms) and AIOps (scheduler off). ``config``
    overrides any setting; ``AIOPS_SCHEDULER=None`` leaves it to its default (on) or the environment. The test
    adds its own routes (``@app.get``). Every app is shut down after the test, before its live servers stop
    (hence the dependency on ``live_server``)."""
    from aiops import AIOps
    apps = []

    def make(name: str = "svc", *, telemetry: bool = True, aiops: bool = True, **config) -> Flask:
        defaults = {}
        if telemetry:
            defaults.update(TELEMETRY_DB_PATH=str(tmp_path / "t.db"), TELEMETRY_FLUSH_INTERVAL_MS=10)
        if aiops:
            defaults.update(AIOPS_SCHEDULER=False)
        app = Flask(name)
        app.config.update(_settings(defaults, config))
        if telemetry:
            Telemetry(app)
        if aiops:
            apps.append(app)
            AIOps(app)
        return app

    yield make
    for app in apps:
        AIOps.shutdown(app)


@pytest.fixture
def demo_app(tmp_path, live_server):
    """``demo_app(**config) -> Flask``: the demo shop (``app.create_app``) on ``tmp_path / "demo.db"``, scheduler
    off, no added latency or errors (``DEMO_LATENCY_SCALE`` 0, ``DEMO_ERROR_RATE`` 0), spans flushed every
    20 ms; ``config`` overrides any of it (None leaves a setting to its default). Shut down after the test."""
    from aiops import AIOps
    from app import create_app
    apps = []

    def make(**config) -> Flask:
        app = create_app(_settings({"TELEMETRY_DB_PATH": str(tmp_path / "demo.db"), "AIOPS_SCHEDULER": False,
                                    "DEMO_LATENCY_SCALE": 0.0, "DEMO_ERROR_RATE": 0.0,
                                    "TELEMETRY_FLUSH_INTERVAL_MS": 20}, config))
        apps.append(app)
        return app

    yield make
    for app in apps:
        AIOps.shutdown(app)


@pytest.fixture
def chat_server():
    """A scripted chat-completions server on loopback (tests/chat_server.py), stopped after the test."""
    server = ChatServer()
    yield server
    server.stop()


@pytest.fixture
def make_writer(chat_server):
    """``make_writer(**options) -> LLMWriter`` pointed at the chat server; closed after the test."""
    from llm import LLMWriter
    writers = []

    def make(**options):
        options = {"base_url": chat_server.url, "api_key": "sk-test-0123456789abcdef", "model": "fake-model",
                   "timeout_s": 5.0, "retries": 0, **options}
        writer = LLMWriter(**options)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()


@pytest.fixture(scope="session")
def scenario_runs(tmp_path_factory):
    """Real incidents from the analysis engine over seeded traffic with known faults, by scenario name
    (used by tests/llm and tests/aiops/documents; one run per scenario and session)."""
    from aiops.testing.synthetic import shop_routes
    from tests.aiops.helpers import SHOP_RATES, Run, fault
    cache: dict = {}

    def get(name: str) -> Run:
        if name not in cache:
            faults = {
                "payment_errors": [fault(("shop", "/payment"), "error", 600, 720, 1.0)],
                "payment_latency": [fault(("shop", "/payment"), "latency", 600, 720, 2000)],
                "inventory_timeout": [fault(("shop", "/inventory"), "timeout", 600, 720, 8000)],
            }[name]
            run = Run(tmp_path_factory.mktemp(name) / "t.db", shop_routes(), SHOP_RATES, 900, faults)
            run.store.release_lock(run.analyzer.owner)
            cache[name] = run
        return cache[name]

    yield get
    for run in cache.values():
        run.store.close()
