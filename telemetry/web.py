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


def query_number(name: str, default: float, low: float, high: float):
    """``(value, None)`` for the query argument ``name``, a number within
    ``(low, high]`` (``default`` when absent), else ``(None, 400 JSON)``."""
    raw = request.args.get(name)
    if raw is None:
        return default, None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low < value <= high:
        return None, json_error(400, f"invalid {name}", f"{name} must be a number within ({low:g}, {high:g}], "
                                                        f"got {raw!r}")
    return value, None


def json_body():
    """``(body, None)`` for a request with a JSON body, else ``(None, 400 JSON)``."""
    body = request.get_json(silent=True)
    if body is None:
        return None, json_error(400, "invalid JSON body", "send a JSON document with Content-Type: application/json")
    return body, None
