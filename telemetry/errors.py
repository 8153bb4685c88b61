"""The one error type for bad input, shared by every API, parser and CLI of the product.

A parser raises ``PayloadError(field, detail)``; the JSON APIs answer it with
``400 {"error", "detail", "field", ...extra}`` (``telemetry.web``), the CLIs
print it. ``field`` names what is wrong (a JSON path such as
``alerts[2].startsAt``, a query argument, or ``body``); ``detail`` says what
is valid. No Flask here: pure parsers raise it too.
"""
from __future__ import annotations

from typing import Any


class PayloadError(ValueError):
    """Rejected input: ``field`` (None when no one field is at fault), ``detail``
    (what is valid), ``error`` (a short title, default ``invalid <field>``),
    ``status`` (HTTP status, default 400) and ``extra`` keys for the JSON answer."""

    def __init__(self, field: str | None, detail: str, error: str | None = None, status: int = 400,
                 **extra: Any):
        super().__init__(f"{field}: {detail}" if field else detail)
        self.field = field
        self.detail = detail
        self.error = error or (f"invalid {field}" if field else "invalid request")
        self.status = status
        self.extra = extra

    def to_json(self) -> dict:
        """``{"error", "detail", "field", ...extra}`` (``field`` only when set)."""
        body: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return {**body, **self.extra}
