"""HTTP helpers shared by every JSON API of the product (/aiops/*, /simulate/*, /api/v1/simulator/*).

Responses are pretty-printed JSON so that a curl user can read them; errors
always carry ``{"error": what went wrong, "detail": what is valid}``, plus
``field`` when one field is at fault.

``ApiBlueprint`` is the one route guard: allowed methods, the API key on
state-changing calls, and ``PayloadError`` -> 400, for every blueprint.
"""
from __future__ import annotations

import hmac
import json
from typing import Any, Callable

from flask import Blueprint, Response, request

from telemetry.errors import PayloadError

#: Methods that never change state: no API key needed (unless a blueprint guards its reads too).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Methods every ``ApiBlueprint`` rule answers: a method a rule was not declared for gets a JSON 405.
ROUTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A pretty-printed JSON response (2-space indent, trailing newline)."""
    body = json.dumps(payload, indent=2, default=str) + "\n"
    return Response(body, status=status, headers=headers, mimetype="application/json")


def json_error(status: int, error: str, detail: str, headers: dict | None = None, **extra: Any) -> Response:
    """``{"error", "detail", ...extra}`` with ``status``."""
    return json_response({"error": error, "detail": detail, **extra}, status, headers)


def payload_error_response(exc: PayloadError) -> Response:
    """The answer to a ``PayloadError``: its status (400) and ``{"error", "detail", "field", ...}``."""
    return json_response(exc.to_json(), exc.status)


def api_key_error(expected: str | None) -> Response | None:
    """None when the request may go on, else a 401 JSON response.

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
        "this call needs the key configured in AIOPS_API_KEY in the X-API-Key header",
    )


def method_not_allowed(allowed: list[str] | tuple[str, ...]) -> Response:
    """A JSON 405 naming the methods ``request.path`` accepts."""
    listed = ", ".join(sorted(allowed))
    return json_error(405, f"method {request.method} not allowed on {request.path}", f"allowed: {listed}",
                      headers={"Allow": listed})


class ApiBlueprint(Blueprint):
    """A ``Blueprint`` of JSON routes behind the product's one route guard.

    Declare rules as usual (``@bp.get``, ``@bp.post``, ``@bp.route(rule,
    methods=[...])``); declaring one rule again with other methods adds views
    to the same rule (the first declaration names its endpoint). Every rule
    answers every method of ``ROUTED_METHODS``: one it was not declared for
    gets a JSON 405 with an ``Allow`` header. Before a view runs, a method
    that changes state (all but GET, HEAD and OPTIONS), or every method with
    ``key_for_reads``, needs the key ``api_key()`` returns (None or empty: no
    key needed) in ``X-API-Key``, else a JSON 401. A ``PayloadError`` a view
    raises becomes its 400 JSON answer.
    """

    def __init__(self, name: str, import_name: str, *, api_key: Callable[[], str | None],
                 key_for_reads: bool = False, **options: Any):
        super().__init__(name, import_name, **options)
        self._views: dict[str, dict[str, Callable]] = {}  # endpoint -> method -> view
        self._endpoint_of_rule: dict[str, str] = {}
        self._api_key = api_key
        self._key_for_reads = key_for_reads
        self.before_request(self._guard)
        self.register_error_handler(PayloadError, payload_error_response)

    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: Callable | None = None,
                     provide_automatic_options: bool | None = None, **options: Any) -> None:
        methods = [m.upper() for m in (options.pop("methods", None) or ("GET",))]
        name = self._endpoint_of_rule.get(rule)
        if name is None:
            name = self._endpoint_of_rule[rule] = endpoint or view_func.__name__
            views = self._views[name] = {}

            def dispatch(**kwargs):
                view = views.get(request.method)
                if view is None:  # the guard answers first; kept for a direct call
                    return method_not_allowed(self._allowed(name))
                return view(**kwargs)

            dispatch.__name__ = name
            super().add_url_rule(rule, name, dispatch, provide_automatic_options, methods=ROUTED_METHODS, **options)
        views = self._views[name]
        for method in methods:
            views[method] = view_func
        if "GET" in methods:
            views.setdefault("HEAD", view_func)

    def _allowed(self, endpoint: str) -> list[str]:
        """Methods declared for ``endpoint`` (HEAD goes with GET)."""
        return sorted(m for m in self._views.get(endpoint, {}) if m != "HEAD")

    def _guard(self) -> Response | None:
        method = request.method
        endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
        views = self._views.get(endpoint)
        if method != "OPTIONS" and views is not None and method not in views:
            return method_not_allowed(self._allowed(endpoint))
        if method not in SAFE_METHODS or self._key_for_reads:
            return api_key_error(self._api_key())
        return None


def query_number(name: str, default: float, low: float, high: float, integer: bool = False,
                 low_inclusive: bool = False) -> float:
    """The query argument ``name``: a number within ``(low, high]`` (``[low, high]`` with
    ``low_inclusive``; a whole number with ``integer``), or ``default`` when absent.
    Raises ``PayloadError`` naming the argument and the valid range."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    inside = (low <= value if low_inclusive else low < value) and value <= high
    if not inside or (integer and not value.is_integer()):
        kind = "an integer" if integer else "a number"
        interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
        raise PayloadError(name, f"{name} must be {kind} within {interval}, got {raw!r}")
    return int(value) if integer else value


def query_choice(name: str, default: str, valid: tuple[str, ...]) -> str:
    """The query argument ``name``, one of ``valid`` (``default`` when absent); raises
    ``PayloadError`` listing the valid values."""
    value = request.args.get(name, default)
    if value not in valid:
        raise PayloadError(name, f"{name} must be one of: {', '.join(valid)}", error=f"unknown {name} {value!r}")
    return value


def json_body(required: bool = True, what: str = "a JSON document") -> Any:
    """The request's JSON body; raises ``PayloadError("body", ...)`` when it is not JSON.

    With ``required=False`` an empty body reads as ``{}``. ``what`` describes
    the expected document in the error."""
    if not required and not request.get_data(cache=True).strip():
        return {}
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # JSON nested deeper than the interpreter's stack
        body = None
    if body is None:
        raise PayloadError("body", f"send {what} with Content-Type: application/json", error="invalid JSON body")
    return body
