"""The extension's own settings (not a feature's): on/off, the scheduler, the store, the API key.

Each feature declares its keys in its own folder; ``AIOps.init_app`` reads
these and every registered feature's, once.
"""
from __future__ import annotations

from telemetry.config import ConfigKey, as_bool, as_optional_str

#: Keys of the extension itself (not of the algorithms).
EXTENSION_CONFIG = (
    ConfigKey("AIOPS_ENABLED", True, as_bool, "bool", "False registers nothing (no API, no scheduler)."),
    ConfigKey("AIOPS_SCHEDULER", True, as_bool, "bool",
              "Run analysis in the background every AIOPS_ANALYSIS_INTERVAL_S; False: only POST /aiops/analyze."),
    ConfigKey("AIOPS_DB_PATH", lambda app: app.config.get("TELEMETRY_DB_PATH"), as_optional_str, "file path",
              "SQLite file the analysis reads spans from and keeps baselines and incidents in; "
              "default: TELEMETRY_DB_PATH."),
    ConfigKey("AIOPS_API_KEY", None, as_optional_str, "string",
              "When set, every mutating /aiops and /simulate call needs it in the X-API-Key header."),
)
