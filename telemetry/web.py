"""Small HTTP helpers shared by the product's JSON APIs (/aiops/*, /simulate/*).

Responses are pretty-printed JSON so that a curl user can read them; errors
always carry ``{"error": what went wrong, "detail": what is valid}``.
"""
from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Response, request


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A pretty-printed JSON response (2-space indent, trailing newline)."""
    body = json.dumps(payload, indent=2, default=str) + "\n"
    return Response(body, status=status, headers=headers, mimetype="application/json")


def json_error(status: int, error: str, detail: str, headers: dict | None = None, **extra: Any) -> Response:
    """``{"error", "detail", ...extra}`` with ``status``."""
    return json_response({"error": error, "detail": detail, **extra}, status, headers)


def api_key_error(expected: str | None) -> Response | None:
    """None when the request may mutate state, else a 401 JSON response.

    ``expected`` is ``AIOPS_API_KEY``; when it is unset every call is allowed.
    The key travels in the ``X-API-Key`` header and is compared in constant time.
    """
    if not expected:
        return None
    given = request.headers.get("X-API-Key", "")
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return json_error(
        401,
        "missing API key" if not given else "invalid API key",
        "this call changes state; send the key configured in AIOPS_API_KEY in the X-API-Key header",
    )


def method_not_allowed(allowed: str = "POST") -> Response:
    """A JSON 405 for a mutating route called with the wrong method."""
    return json_error(
        405,
        f"method {request.method} not allowed on {request.path}",
        f"this route changes state; use {allowed}",
        headers={"Allow": allowed},
    )
