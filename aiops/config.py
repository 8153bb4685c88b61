"""The extension's own settings (not a feature's): on/off, the scheduler, the store, the API key.

Each feature declares its keys in its own folder; ``AIOps.init_app`` reads
these and every registered feature's, once.
"""
from __future__ import annotations

from telemetry.config import ConfigKey, as_bool, as_optional_str

#: The one API key of the product: ``AIOps`` guards /aiops with it, ``simulation.Chaos`` /simulate and
#: /api/v1/simulator (it reads this same key).
API_KEY = ConfigKey(
    "AIOPS_API_KEY", None, as_optional_str, "string",
    "When set, every call that changes state under `/aiops` and `/simulate` (all but `GET`, `HEAD` and "
    "`OPTIONS`) needs it in the `X-API-Key` header; reads do not, except under `/api/v1/simulator` where "
    "every call needs it.")

#: Keys of the extension itself (not of the algorithms).
EXTENSION_CONFIG = (
    ConfigKey("AIOPS_ENABLED", True, as_bool, "bool", "`False` registers nothing (no API, no scheduler)."),
    ConfigKey("AIOPS_SCHEDULER", True, as_bool, "bool",
              "Analyse in the background every `AIOPS_ANALYSIS_INTERVAL_S`; `False`: only on `POST /aiops/analyze`."),
    ConfigKey("AIOPS_DB_PATH", lambda app: app.config.get("TELEMETRY_DB_PATH"), as_optional_str, "file path",
              "SQLite file the analysis reads spans from and keeps baselines, incidents and the dependency graph in.",
              shown_default="`TELEMETRY_DB_PATH`"),
    API_KEY,
)
