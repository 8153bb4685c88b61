"""The one time format of the product: ISO 8601 UTC with milliseconds and ``Z``.

Inside, times are epoch seconds (float). Every JSON answer, notification,
stored timeline entry and CLI table shows them as ``iso(epoch_s)``, e.g.
``2026-12-04T01:19:22.123Z``. Every time the product reads (a request body,
a query argument, a CSV cell, a stored string) goes through ``parse_time``:
epoch seconds, or ISO 8601 with ``Z``, an offset, or no zone (read as UTC),
any fraction (Alertmanager sends nanoseconds), ``T`` or a space between
date and time.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from telemetry.errors import PayloadError

#: Accepted times: 1970-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z, in epoch seconds.
MIN_EPOCH_S, MAX_EPOCH_S = 0.0, 4_102_444_800.0
#: What a valid time looks like, for error messages.
EXAMPLE = "2026-11-27T04:50:00Z"
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def iso(epoch_s: float | None) -> str | None:
    """``epoch_s`` as ISO 8601 UTC with milliseconds (``2026-11-27T04:50:00.000Z``); None stays None."""
    if epoch_s is None:
        return None
    text = datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(raw: Any) -> float:
    """Epoch seconds from a number (epoch seconds) or a string (ISO 8601 or epoch seconds).

    Raises ``ValueError`` saying what is valid (``must be ...``): a boolean,
    another type, text that is neither form, or a time outside 1970-01-01 ..
    2100-01-01.
    """
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"must be an ISO 8601 time such as {EXAMPLE} or epoch seconds")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = float(text)
        except ValueError:
            value = _parse_iso_text(text)
        else:
            if text.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity", "+infinity"):
                value = math.nan
    else:
        value = float(raw)
    if not math.isfinite(value) or not MIN_EPOCH_S <= value < MAX_EPOCH_S:
        raise ValueError(f"must be a time between 1970-01-01 and 2100-01-01 (ISO 8601 such as {EXAMPLE} "
                         "or epoch seconds)")
    return value


def parse_time_field(raw: Any, field: str) -> float:
    """``parse_time(raw)`` for the input field ``field``: raises ``PayloadError(field, what is valid)``."""
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise PayloadError(field, f"{exc}, got {raw!r:.80}") from None


def _parse_iso_text(text: str) -> float:
    cleaned = _LONG_FRACTION.sub(r"\1", text)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"must be an ISO 8601 time such as {EXAMPLE} or epoch seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
