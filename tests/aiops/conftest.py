"""The small shops the aiops tests run AIOps on, each built with ``make_app`` (tests/conftest.py) and shut
down after the test. Plain helpers (``drive``, ``call``, ``write_spans``, ``Receiver``, ``Run``) are in
tests/aiops/helpers.py."""
from __future__ import annotations

import time

import pytest


class Broken(Exception):
    pass


@pytest.fixture
def pay_app(make_app):
    """``pay_app(**config)``: service "shop" with GET /pay, a 503 while ``app.failing``; the scheduler runs
    unless ``config`` says otherwise (test_extension, analysis/test_early)."""

    def make(**config):
        app = make_app("shop", **{"AIOPS_SCHEDULER": None, **config})
        app.failing = False

        @app.get("/pay")
        def pay():
            if app.failing:
                return {"error": "down"}, 503
            return "ok"

        return app

    return make


@pytest.fixture
def svc_app(make_app):
    """``svc_app(**config)``: service "svc" with GET /ok and GET /pay, which raises "card processor down"
    (a 500 through an errorhandler) while ``app.state["fail"]`` (see ``helpers.drive``)."""

    def make(**config):
        app = make_app("svc", **config)
        state = {"fail": False}

        @app.get("/ok")
        def ok():
            return "ok"

        @app.get("/pay")
        def pay():
            if state["fail"]:
                raise Broken("card processor down")
            return "paid"

        @app.errorhandler(Broken)
        def broken(exc):
            return {"error": str(exc)}, 500

        app.state = state
        return app

    return make


@pytest.fixture
def orders_app(make_app):
    """``orders_app(name="shop", **config)``: service ``name`` with GET /orders/<int:order_id> (a 503 from
    order 500 on) and GET /slow (30 ms) (slo/test_slo_api, test_connections)."""

    def make(name="shop", **config):
        app = make_app(name, **{"TELEMETRY_SERVICE_NAME": name, **config})

        @app.get("/orders/<int:order_id>")
        def order(order_id):
            if order_id >= 500:
                return {"error": "backend down"}, 503
            return {"order": order_id}

        @app.get("/slow")
        def slow():
            time.sleep(0.03)
            return "slow"

        return app

    return make
