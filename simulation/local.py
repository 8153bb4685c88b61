"""The demo shop in this process, served on a free loopback port, for CLI runs without a server."""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading

from werkzeug.serving import make_server

from aiops import AIOps
from simulation.shop import create_app


class LocalDemo:
    """``with LocalDemo() as demo: demo.url``: a fresh demo app on a temporary
    (or given) SQLite file, served by a threaded Werkzeug server on 127.0.0.1."""

    def __init__(self, db_path: str | None = None, config: dict | None = None):
        self._tmp = None if db_path else tempfile.mkdtemp(prefix="aiops-sim-")
        self.db_path = db_path or f"{self._tmp}/simulation.db"
        self.config = {"TELEMETRY_DB_PATH": self.db_path, "AIOPS_SCHEDULER": False, "DEMO_ERROR_RATE": 0.0,
                       "TELEMETRY_FLUSH_INTERVAL_MS": 20, **(config or {})}
        self.app = None
        self.server = None
        self.thread = None
        self.url = None

    def __enter__(self) -> "LocalDemo":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.app = create_app(self.config)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="simulation-local-demo", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None
        if self.app is not None:
            AIOps.shutdown(self.app)
            telemetry = self.app.extensions.get("telemetry")
            if telemetry is not None and telemetry.store is not None:
                telemetry.store.close(5.0)  # this app's span writer only
            self.app = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
