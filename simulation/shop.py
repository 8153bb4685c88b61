"""The demo shop: a small Flask app with realistic latency, wired to the toolkit.

``python app.py`` in a checkout, or the ``aiops-demo`` console script of an
installed package, serves it on http://127.0.0.1:5000 (``PORT`` and ``HOST``
override; the span store is ``instance/telemetry.db`` under the current
directory unless ``TELEMETRY_DB_PATH`` says otherwise).
``create_app(config=None)`` is the factory; ``config`` wins over environment
variables of the same name, which win over the defaults.

/checkout calls /payment and /inventory over HTTP with ``requests``, so one
trace spans three requests; the trace context travels automatically.
"""
from __future__ import annotations

import math
import os
import random
import time

import requests
from flask import Flask, jsonify, request

from aiops import AIOps
from aiops.features import all_endpoints
from simulation.api import ENDPOINTS
from simulation.chaos import Chaos
from telemetry import Telemetry
from telemetry.config import ConfigKey, as_number, as_optional_str, as_str, read_config, read_environment
from telemetry.web import json_error

#: How ``python app.py`` / ``aiops-demo`` serves the shop (environment only: read by ``main``, not by
#: ``create_app``).
SERVE_CONFIG = (
    ConfigKey("PORT", 5000, as_number(0, 65535, integer=True), "TCP port",
              "Port of `python app.py` (environment only)."),
    ConfigKey("HOST", "127.0.0.1", as_str(nonempty=False), "address",
              "Interface of `python app.py` (environment only)."),
)

DEMO_CONFIG = (
    ConfigKey("DEMO_UPSTREAM_URL", None, as_optional_str, "URL",
              "Where `/checkout` calls `/payment` and `/inventory`; unset: the address the request came in on."),
    ConfigKey("DEMO_UPSTREAM_TIMEOUT_S", 5.0, as_number(0.0, min_exclusive=True), "seconds",
              "Timeout of `/checkout`'s calls to `/payment` and `/inventory`; past it `/checkout` answers 504."),
    ConfigKey("DEMO_LATENCY_SCALE", 1.0, as_number(0.0), "multiplier",
              "Scales every handler's simulated work (0: answer at once)."),
    ConfigKey("DEMO_ERROR_RATE", 0.001, as_number(0.0, 1.0), "ratio in [0, 1]",
              "Background share of `/inventory` and `/payment` requests that fail with a 500."),
    ConfigKey("DEMO_SEED", None, lambda v: None if v in (None, "") else as_number(integer=True)(v), "integer",
              "Seed of the latency and error generator, for repeatable runs; unset: random."),
)

#: Median latency (ms) and log-normal spread of each handler's own work.
HANDLER_LATENCY_MS = {"health": (2.0, 0.2), "inventory": (15.0, 0.3), "payment": (40.0, 0.3), "checkout": (5.0, 0.2)}


class DemoFailure(Exception):
    """A failure of the shop itself; answered as JSON with ``status``."""

    status = 500


class UpstreamFailure(DemoFailure):
    """/checkout could not complete because a service it calls failed."""

    status = 502


class UpstreamTimeout(DemoFailure):
    status = 504


class Shop:
    """Simulated work of the handlers: latency and background errors."""

    def __init__(self, latency_scale: float, error_rate: float, seed: int | None):
        self.latency_scale = latency_scale
        self.error_rate = error_rate
        self.rng = random.Random(seed)

    def work(self, handler: str) -> float:
        """Sleep a log-normal time around the handler's median; return it in ms."""
        median_ms, sigma = HANDLER_LATENCY_MS[handler]
        duration_ms = median_ms * math.exp(self.rng.gauss(0.0, sigma)) * self.latency_scale
        time.sleep(duration_ms / 1000.0)
        return duration_ms

    def maybe_fail(self, what: str) -> None:
        if self.rng.random() < self.error_rate:
            raise DemoFailure(f"{what} failed: transient backend error")


def create_app(config: dict | None = None) -> Flask:
    """The demo shop with telemetry, analysis and chaos endpoints."""
    # The instance folder (span store) under the current directory, where `aiops incidents` looks by default,
    # wherever the package is installed.
    app = Flask(__name__, instance_path=os.path.abspath("instance"))
    if config:
        app.config.update(config)
    if "TELEMETRY_SERVICE_NAME" not in os.environ:
        app.config.setdefault("TELEMETRY_SERVICE_NAME", "shop")
    settings = read_config(app, DEMO_CONFIG)
    Telemetry(app)
    AIOps(app)
    Chaos(app)
    shop = Shop(settings["DEMO_LATENCY_SCALE"], settings["DEMO_ERROR_RATE"], settings["DEMO_SEED"])
    upstream_timeout_s = settings["DEMO_UPSTREAM_TIMEOUT_S"]
    http = requests.Session()

    @app.errorhandler(DemoFailure)
    def demo_failure(exc: DemoFailure):
        return json_error(exc.status, type(exc).__name__, str(exc))

    @app.get("/health")
    def health():
        shop.work("health")
        return jsonify(status="ok", service=app.config["TELEMETRY_SERVICE_NAME"])

    @app.get("/inventory")
    def inventory():
        shop.work("inventory")
        shop.maybe_fail("inventory lookup")
        return jsonify(items=[{"sku": "SKU-1", "name": "widget", "in_stock": 42},
                              {"sku": "SKU-2", "name": "gadget", "in_stock": 7}])

    @app.post("/payment")
    def payment():
        shop.work("payment")
        shop.maybe_fail("payment authorisation")
        amount = (request.get_json(silent=True) or {}).get("amount", 19.99)
        return jsonify(status="authorised", amount=amount, payment_id=f"pay-{shop.rng.getrandbits(32):08x}")

    @app.post("/checkout")
    def checkout():
        base = (settings["DEMO_UPSTREAM_URL"] or request.host_url).rstrip("/")
        shop.work("checkout")
        stock = _call(http, "GET", f"{base}/inventory", upstream_timeout_s)
        paid = _call(http, "POST", f"{base}/payment", upstream_timeout_s, json={"amount": 19.99})
        return jsonify(status="ordered", items=len(stock["items"]), payment_id=paid["payment_id"])

    return app


def _call(http: requests.Session, method: str, url: str, timeout_s: float, **kwargs) -> dict:
    """One upstream call; failures become ``UpstreamFailure``/``UpstreamTimeout``."""
    name = url.rsplit("/", 1)[-1]
    try:
        response = http.request(method, url, timeout=timeout_s, **kwargs)
    except requests.Timeout:
        raise UpstreamTimeout(f"{name} did not answer within {timeout_s:g} s") from None
    except requests.RequestException as exc:
        raise UpstreamFailure(f"{name} unreachable: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise UpstreamFailure(f"{name} returned HTTP {response.status_code}")
    return response.json()


BANNER = """\
======================================================================
AIOps demo shop: telemetry, anomaly detection and root-cause analysis
======================================================================
Serving on {url}   (span store: {db})
Dashboard:  {url}/aiops/dashboard

Business endpoints:
  GET  /health           health check
  GET  /inventory        stock levels
  POST /payment          authorise a payment
  POST /checkout         calls /inventory and /payment over HTTP
{aiops}
Simulation endpoints:
  POST /simulate/delay?endpoint=/payment&duration=2000
  POST /simulate/error?endpoint=/inventory&rate=0.8
  POST /simulate/timeout?endpoint=/payment&duration=30000
  POST /simulate/clear
  GET  /simulate/status
{simulator}
Every response carries X-Trace-Id. Ctrl-C stops.
======================================================================"""


def aiops_banner(app: Flask) -> str:
    """The AIOps endpoint lines, when the analysis is enabled on ``app``."""
    if not app.extensions.get("aiops"):
        return ""
    return "\nAIOps endpoints:\n" + "".join(f"  {line}\n" for line in all_endpoints())


def simulator_banner(app: Flask) -> str:
    """The incident simulator's endpoint lines, when it is registered on ``app``."""
    if not app.extensions.get("simulator"):
        return ""
    return ("\nIncident simulator (python -m simulation --list):\n"
            + "".join(f"  {line}\n" for line in ENDPOINTS))


def main() -> None:
    """Serve the demo shop (``python app.py``, ``aiops-demo``) until Ctrl-C."""
    serve = read_environment(SERVE_CONFIG)
    host, port = serve["HOST"], serve["PORT"]
    app = create_app()
    print(BANNER.format(url=f"http://{host}:{port}", db=app.config["TELEMETRY_DB_PATH"], aiops=aiops_banner(app),
                        simulator=simulator_banner(app)),
          flush=True)
    app.run(host=host, port=port, threaded=True)


if __name__ == "__main__":
    main()
