"""Chaos fault injection for a Flask app: latency, errors and timeouts on demand.

``Chaos(app)`` (or ``Chaos().init_app(app)``) adds a ``/simulate/*`` JSON API
and one ``before_request`` hook. A fault targets one route of the app, given
either as its URL rule (``/orders/<int:id>``: every request of that rule) or as
a concrete path (``/orders/5``: requests of that exact path only).

Fault types (one fault per type and target; setting it again replaces it):

* ``delay``   -- sleep ``duration_ms`` then let the request proceed;
* ``error``   -- with probability ``rate`` raise :class:`InjectedFault`
  (HTTP ``status``, 500..599);
* ``timeout`` -- sleep ``duration_ms`` then raise :class:`InjectedFault`
  (HTTP 504).

On one request they apply in the order delay, error, timeout; for one type a
fault on the concrete path wins over a fault on its rule. ``InjectedFault`` is
a real exception turned into JSON by an app-level errorhandler, so telemetry
sees it like any handled application error.

Routes: ``POST /simulate/delay``, ``POST /simulate/error``,
``POST /simulate/timeout``, ``POST /simulate/clear`` and
``GET /simulate/status``. Inputs come from the query string and/or a JSON
object body (the body wins); unknown fields are ignored.
"""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect, Rule

from aiops.config import API_KEY
from simulation.api import SIMULATOR_CONFIG, register_simulator
from telemetry.config import ConfigKey, as_bool, as_number, read_config
from telemetry.errors import PayloadError
from telemetry.timefmt import iso
from telemetry.web import ApiBlueprint, json_error, json_response

__all__ = ["CHAOS_CONFIG", "FAULT_TYPES", "Chaos", "ChaosInputError", "InjectedFault", "valid_endpoints"]

EXTENSION_KEY = "chaos"
FAULT_TYPES = ("delay", "error", "timeout")  # also the order they apply in
EXCLUDED_PREFIXES = ("/simulate", "/aiops", "/api/v1/simulator")
MAX_EXPIRES_IN_S = 366 * 24 * 3600  # one year: keeps expires_at a valid date
_MUTATING_ROUTES = ("delay", "error", "timeout", "clear")

CHAOS_CONFIG: tuple[ConfigKey, ...] = (
    ConfigKey(
        "AIOPS_CHAOS_ENABLED", True, as_bool, "bool",
        "`False` registers no route and no hook: every `/simulate` URL is a plain 404, no fault can apply.",
    ),
    ConfigKey(
        "AIOPS_CHAOS_MAX_DURATION_MS", 120_000, as_number(minimum=0, min_exclusive=True), "milliseconds",
        "Largest duration accepted for a delay or timeout fault.",
    ),
    ConfigKey(
        "AIOPS_CHAOS_TIMEOUT_DEFAULT_MS", 30_000, as_number(minimum=0, min_exclusive=True), "milliseconds",
        "How long a timeout fault hangs when no duration is given (long enough to outlast typical client "
        "timeouts); at most `AIOPS_CHAOS_MAX_DURATION_MS`.",
    ),
)


class InjectedFault(RuntimeError):
    """The exception a chaos ``error`` or ``timeout`` fault raises in a request.

    ``status`` is the HTTP status of the response (500..599, 504 for a
    timeout), ``endpoint`` the fault's target as given, ``fault_type``
    ``"error"`` or ``"timeout"``, ``fault_id`` the fault's id.
    """

    def __init__(self, message: str, *, status: int = 500, endpoint: str = "",
                 fault_type: str = "error", fault_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint
        self.fault_type = fault_type
        self.fault_id = fault_id


class ChaosInputError(PayloadError):
    """Bad input to :meth:`Chaos.inject` / :meth:`Chaos.clear` (a ``PayloadError``); the HTTP
    API answers it with 400 ``{"error", "detail", "field", **extra}``."""

    def __init__(self, error: str, detail: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(field, detail, error=error, **extra)

    def __str__(self) -> str:
        return f"{self.error}: {self.detail}"


class _Fault:
    """One fault in force. Immutable except ``applied_count`` (under the lock)."""

    __slots__ = ("id", "type", "endpoint", "rule", "path", "duration_ms", "rate", "status",
                 "created_at", "expires_at", "expires_at_mono", "applied_count")

    def __init__(self, type: str, endpoint: str, rule: str, path: str | None, *,
                 duration_ms: float | None = None, rate: float | None = None,
                 status: int | None = None, expires_in_s: float | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.type = type
        self.endpoint = endpoint
        self.rule = rule
        self.path = path  # None: applies to the whole rule
        self.duration_ms = duration_ms
        self.rate = rate
        self.status = status
        self.created_at = time.time()
        self.expires_at = None if expires_in_s is None else self.created_at + expires_in_s
        self.expires_at_mono = None if expires_in_s is None else time.monotonic() + expires_in_s
        self.applied_count = 0

    @property
    def key(self) -> tuple[str, str, str]:
        """(type, "rule"|"path", target): one fault per type and target."""
        return (self.type, "path", self.path) if self.path is not None else (self.type, "rule", self.rule)

    def expired(self, now_mono: float) -> bool:
        return self.expires_at_mono is not None and now_mono >= self.expires_at_mono

    def message(self) -> str:
        if self.type == "error":
            return f"injected fault: {self.rate * 100:g}% error rate on {self.endpoint} (HTTP {self.status})"
        return f"injected fault: timeout on {self.endpoint} after {self.duration_ms:g} ms (HTTP 504)"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "endpoint": self.endpoint,
            "rule": self.rule,
            "match": "rule" if self.path is None else "path",
        }
        if self.type == "error":
            out["rate"] = self.rate
            out["status"] = self.status
        else:
            out["duration_ms"] = self.duration_ms
        out["created_at"] = iso(self.created_at)
        out["expires_at"] = None if self.expires_at is None else iso(self.expires_at)
        out["applied_count"] = self.applied_count
        return out


@dataclass(frozen=True)
class _Snapshot:
    """Faults indexed for the request path: by URL rule and by concrete path."""

    by_rule: Mapping[str, tuple[_Fault, ...]]
    by_path: Mapping[str, tuple[_Fault, ...]]


class _ChaosState:
    """Per-app state, stored in ``app.extensions["chaos"]``."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.enabled: bool = settings["AIOPS_CHAOS_ENABLED"]
        self.api_key: str | None = settings["AIOPS_API_KEY"]
        self.max_duration_ms: float = _clean(settings["AIOPS_CHAOS_MAX_DURATION_MS"])
        self.timeout_default_ms: float = _clean(settings["AIOPS_CHAOS_TIMEOUT_DEFAULT_MS"])
        self.lock = threading.Lock()
        self.rng = random.Random()
        self.faults: dict[tuple[str, str, str], _Fault] = {}  # guarded by lock
        self.snapshot: _Snapshot | None = None  # replaced whole; None when no fault

    # -- mutation (under the lock) -------------------------------------------

    def _reindex(self) -> None:
        if not self.faults:
            self.snapshot = None
            return
        by_rule: dict[str, list[_Fault]] = {}
        by_path: dict[str, list[_Fault]] = {}
        for fault in self.faults.values():
            if fault.path is None:
                by_rule.setdefault(fault.rule, []).append(fault)
            else:
                by_path.setdefault(fault.path, []).append(fault)
        self.snapshot = _Snapshot({k: tuple(v) for k, v in by_rule.items()},
                                  {k: tuple(v) for k, v in by_path.items()})

    def _prune(self) -> None:
        now = time.monotonic()
        expired = [key for key, fault in self.faults.items() if fault.expired(now)]
        for key in expired:
            del self.faults[key]
        if expired:
            self._reindex()

    def put(self, fault: _Fault) -> _Fault | None:
        with self.lock:
            self._prune()
            previous = self.faults.pop(fault.key, None)
            self.faults[fault.key] = fault
            self._reindex()
            return previous

    def remove(self, rule: str | None = None, path: str | None = None) -> list[_Fault]:
        """Remove all faults, those on ``rule`` (rule-wide and path ones), or
        those targeted at ``path``."""
        with self.lock:
            self._prune()
            doomed = [key for key, fault in self.faults.items()
                      if (rule is None and path is None)
                      or (rule is not None and fault.rule == rule)
                      or (path is not None and fault.path == path)]
            removed = [self.faults.pop(key) for key in doomed]
            self._reindex()
            return removed

    def current(self) -> list[_Fault]:
        with self.lock:
            self._prune()
            return sorted(self.faults.values(), key=lambda f: (f.created_at, f.id))

    # -- request path ----------------------------------------------------------

    def apply_faults(self) -> None:
        """``before_request`` hook: a snapshot read, no lock unless a fault applies."""
        snapshot = self.snapshot
        if snapshot is None:
            return
        url_rule = request.url_rule
        if url_rule is None:  # routing failed: let Flask answer 404/405
            return
        on_rule = snapshot.by_rule.get(url_rule.rule)
        on_path = snapshot.by_path.get(request.path)
        if not on_rule and not on_path:
            return
        now = time.monotonic()
        chosen: dict[str, _Fault] = {}
        for fault in (on_rule or ()) + (on_path or ()):  # path faults override rule faults
            if fault.expired(now):
                with self.lock:
                    self._prune()
                continue
            chosen[fault.type] = fault
        if "delay" in chosen:
            self._count(chosen["delay"])
            time.sleep(chosen["delay"].duration_ms / 1000.0)
        if "error" in chosen:
            fault = chosen["error"]
            if self.rng.random() < fault.rate:
                self._count(fault)
                raise InjectedFault(fault.message(), status=fault.status, endpoint=fault.endpoint,
                                    fault_type="error", fault_id=fault.id)
        if "timeout" in chosen:
            fault = chosen["timeout"]
            self._count(fault)
            time.sleep(fault.duration_ms / 1000.0)
            raise InjectedFault(fault.message(), status=504, endpoint=fault.endpoint,
                                fault_type="timeout", fault_id=fault.id)

    def _count(self, fault: _Fault) -> None:
        with self.lock:
            fault.applied_count += 1


class Chaos:
    """Flask extension for chaos fault injection; see the module docstring.

    Keeps no reference to an app: per-app state lives in
    ``app.extensions["chaos"]``, so one instance can serve several apps and
    two apps never share faults. The Python methods take ``app`` (default:
    ``current_app``) and mirror the HTTP routes.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read ``CHAOS_CONFIG`` (ValueError on a bad value) and, when enabled,
        register the /simulate blueprint, the hook and the InjectedFault handler."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("Chaos is already initialised on this app")
        settings = read_config(app, (*CHAOS_CONFIG, API_KEY, *SIMULATOR_CONFIG))
        if settings["AIOPS_CHAOS_TIMEOUT_DEFAULT_MS"] > settings["AIOPS_CHAOS_MAX_DURATION_MS"]:
            raise ValueError(
                "AIOPS_CHAOS_TIMEOUT_DEFAULT_MS must not exceed AIOPS_CHAOS_MAX_DURATION_MS "
                f"({settings['AIOPS_CHAOS_MAX_DURATION_MS']:g} ms), "
                f"got {settings['AIOPS_CHAOS_TIMEOUT_DEFAULT_MS']:g}"
            )
        state = _ChaosState(settings)
        app.extensions[EXTENSION_KEY] = state
        if not state.enabled:
            return
        app.register_blueprint(_make_blueprint())
        app.before_request(state.apply_faults)
        app.register_error_handler(InjectedFault, _handle_injected_fault)
        register_simulator(app, settings)  # /api/v1/simulator/*: scenarios drive these faults

    # -- Python API (same validation as the HTTP API) ------------------------

    def inject(self, fault_type: str, endpoint: Any, *, duration_ms: Any = None, rate: Any = None,
               status: Any = None, expires_in_s: Any = None, app: Flask | None = None) -> dict[str, Any]:
        """Put a fault in force and return ``{"fault": {...}, "replaced": {...} | None}``.

        ``duration_ms``: delay (required) or timeout (default
        AIOPS_CHAOS_TIMEOUT_DEFAULT_MS), 0..AIOPS_CHAOS_MAX_DURATION_MS.
        ``rate``: error probability in [0, 1], default 1.0. ``status``: error
        HTTP status 500..599, default 500. ``expires_in_s``: > 0, default never.
        Raises :class:`ChaosInputError` on bad input.
        """
        app = app or current_app._get_current_object()
        return _inject(app, _state(app), fault_type, {
            "endpoint": endpoint, "duration": duration_ms, "rate": rate,
            "status": status, "expires_in": expires_in_s,
        })

    def clear(self, endpoint: str | None = None, app: Flask | None = None) -> list[dict[str, Any]]:
        """Remove every fault (or those of ``endpoint``); return what was removed."""
        app = app or current_app._get_current_object()
        return _clear(app, _state(app), endpoint)

    def status(self, app: Flask | None = None) -> dict[str, Any]:
        """The body of ``GET /simulate/status``."""
        app = app or current_app._get_current_object()
        return _status(app, _state(app))


# -- helpers -------------------------------------------------------------------


def _state(app: Flask) -> _ChaosState:
    try:
        state = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("Chaos is not initialised on this app") from None
    if not state.enabled:
        raise RuntimeError("Chaos is disabled on this app (AIOPS_CHAOS_ENABLED is false)")
    return state


def _clean(value: float) -> float | int:
    """2000.0 -> 2000 so JSON shows what the user typed."""
    return int(value) if float(value).is_integer() else value


def _is_excluded(rule: Rule) -> bool:
    if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
        return True
    return any(rule.rule == prefix or rule.rule.startswith(prefix + "/") for prefix in EXCLUDED_PREFIXES)


def valid_endpoints(app: Flask) -> list[str]:
    """The URL rules of ``app`` that faults may target (sorted)."""
    return sorted({rule.rule for rule in app.url_map.iter_rules() if not _is_excluded(rule)})


def _resolve(app: Flask, endpoint: Any) -> tuple[str, str | None]:
    """``endpoint`` -> (rule, path or None for a rule-wide target); ChaosInputError if invalid."""
    valid = valid_endpoints(app)
    listed = ", ".join(valid)
    if endpoint is None or (isinstance(endpoint, str) and not endpoint.strip()):
        raise ChaosInputError("missing endpoint", field="endpoint", detail=
                              f"give endpoint=<URL rule or path of this app>, one of: {listed}",
                              endpoints=valid)
    if not isinstance(endpoint, str):
        raise ChaosInputError("invalid endpoint", field="endpoint", detail=
                              f"endpoint must be a string: a URL rule or path of this app, one of: {listed}",
                              endpoints=valid)
    endpoint = endpoint.strip()
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule == endpoint]
    path: str | None = None
    if not rules:
        rule = _match_path(app, endpoint)
        if rule is not None:
            rules, path = [rule], endpoint
    if not rules:
        raise ChaosInputError("unknown endpoint", field="endpoint", detail=
                              f"{endpoint!r} is no route of this app; valid endpoints (URL rules, or a "
                              f"concrete path matching one): {listed}",
                              endpoints=valid)
    if any(_is_excluded(rule) for rule in rules):
        raise ChaosInputError("endpoint not targetable", field="endpoint", detail=
                              f"{endpoint!r} is excluded: /simulate/*, /aiops/* and static files never take "
                              f"faults; valid endpoints: {listed}",
                              endpoints=valid)
    return rules[0].rule, path


def _match_path(app: Flask, path: str) -> Rule | None:
    """The rule a request to ``path`` would reach, for any method, or None."""
    if not path.startswith("/"):
        return None
    adapter = app.url_map.bind(app.config.get("SERVER_NAME") or "localhost")
    try:
        rule, _ = adapter.match(path, method="GET", return_rule=True)
        return rule
    except MethodNotAllowed as exc:
        for method in sorted(exc.valid_methods or ()):
            try:
                rule, _ = adapter.match(path, method=method, return_rule=True)
                return rule
            except Exception:  # noqa: BLE001 - try the next method
                continue
        return None
    except (NotFound, RequestRedirect):
        return None


def _number(name: str, raw: Any, valid: str) -> float:
    try:
        return as_number()(raw)
    except ValueError:
        raise ChaosInputError(f"invalid {name}", f"{name} must be {valid}, got {raw!r}", field=name) from None


def _duration_ms(state: _ChaosState, raw: Any) -> float | int:
    valid = f"a number of milliseconds within [0, {state.max_duration_ms:g}]"
    value = _number("duration", raw, valid)
    if value < 0:
        raise ChaosInputError("negative duration", field="duration", detail=f"duration must be {valid}, got {raw!r}")
    if value > state.max_duration_ms:
        raise ChaosInputError("duration over the cap", field="duration", detail=
                              f"duration must be at most {state.max_duration_ms:g} ms "
                              f"(AIOPS_CHAOS_MAX_DURATION_MS), got {raw!r}",
                              max_duration_ms=state.max_duration_ms)
    return _clean(value)


def _inject(app: Flask, state: _ChaosState, fault_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    if fault_type not in FAULT_TYPES:
        raise ChaosInputError("unknown fault type", field="fault_type",
                              detail="fault type must be one of: " + ", ".join(FAULT_TYPES))
    endpoint = fields.get("endpoint")
    rule, path = _resolve(app, endpoint)
    options: dict[str, Any] = {}
    if fault_type == "delay":
        if fields.get("duration") is None:
            raise ChaosInputError("missing duration", field="duration", detail=
                                  f"give duration=<milliseconds within [0, {state.max_duration_ms:g}]>")
        options["duration_ms"] = _duration_ms(state, fields["duration"])
    elif fault_type == "timeout":
        raw = fields.get("duration")
        options["duration_ms"] = state.timeout_default_ms if raw is None else _duration_ms(state, raw)
    else:
        raw_rate = fields.get("rate")
        rate = 1.0 if raw_rate is None else _number("rate", raw_rate, "a probability within [0, 1]")
        if not 0 <= rate <= 1:
            raise ChaosInputError("rate out of range", field="rate",
                                  detail=f"rate must be a probability within [0, 1], got {raw_rate!r}")
        raw_status = fields.get("status")
        status = 500 if raw_status is None else _number("status", raw_status, "an integer within 500..599")
        if not float(status).is_integer():
            raise ChaosInputError("invalid status", field="status",
                                  detail=f"status must be an integer within 500..599, got {raw_status!r}")
        if not 500 <= status <= 599:
            raise ChaosInputError("status out of range", field="status", detail=
                                  f"status must be an integer HTTP status within 500..599, got {raw_status!r}")
        options["rate"], options["status"] = _clean(rate), int(status)
    raw_expiry = fields.get("expires_in")
    if raw_expiry is not None:
        valid = f"a number of seconds > 0 and at most {MAX_EXPIRES_IN_S} (omit it to never expire)"
        expires_in_s = _number("expires_in", raw_expiry, valid)
        if expires_in_s <= 0:
            raise ChaosInputError("expires_in not positive", field="expires_in",
                                  detail=f"expires_in must be {valid}, got {raw_expiry!r}")
        if expires_in_s > MAX_EXPIRES_IN_S:
            raise ChaosInputError("expires_in over the cap", field="expires_in",
                                  detail=f"expires_in must be {valid}, got {raw_expiry!r}")
        options["expires_in_s"] = expires_in_s
    fault = _Fault(fault_type, endpoint.strip(), rule, path, **options)
    previous = state.put(fault)
    return {"fault": fault.to_dict(), "replaced": None if previous is None else previous.to_dict()}


def _clear(app: Flask, state: _ChaosState, endpoint: Any) -> list[dict[str, Any]]:
    if endpoint is None or (isinstance(endpoint, str) and not endpoint.strip()):
        removed = state.remove()
    else:
        rule, path = _resolve(app, endpoint)
        removed = state.remove(rule=rule) if path is None else state.remove(path=path)
    return [fault.to_dict() for fault in removed]


def _status(app: Flask, state: _ChaosState) -> dict[str, Any]:
    return {
        "enabled": state.enabled,
        "faults": [fault.to_dict() for fault in state.current()],
        "endpoints": valid_endpoints(app),
        "max_duration_ms": state.max_duration_ms,
        "timeout_default_ms": state.timeout_default_ms,
    }


def _handle_injected_fault(exc: InjectedFault):
    return json_error(exc.status, "injected fault", str(exc), endpoint=exc.endpoint,
                      type=exc.fault_type, fault_id=exc.fault_id)


# -- HTTP API ------------------------------------------------------------------


def _inputs() -> dict[str, Any]:
    """Query string fields overlaid with the JSON object body (the body wins).
    Raises ChaosInputError when a body is present but not a JSON object."""
    fields: dict[str, Any] = {key: request.args.get(key) for key in request.args}
    raw = request.get_data(cache=True)
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ChaosInputError("invalid JSON body", field="body", detail=
                                  f"the body must be a JSON object such as "
                                  f'{{"endpoint": "/payment", "duration": 2000}} ({exc})') from None
        if not isinstance(body, dict):
            raise ChaosInputError("invalid JSON body", field="body", detail=
                                  'the body must be a JSON object such as {"endpoint": "/payment", "duration": 2000}')
        fields.update(body)
    return fields


def _make_blueprint() -> ApiBlueprint:
    """A fresh blueprint per app (no module-level mutable state)."""
    bp = ApiBlueprint("chaos", __name__, url_prefix="/simulate",
                      api_key=lambda: current_app.extensions[EXTENSION_KEY].api_key)

    def mutating(name: str):
        def view():
            state: _ChaosState = current_app.extensions[EXTENSION_KEY]
            app = current_app._get_current_object()
            fields = _inputs()
            if name == "clear":
                endpoint = fields.get("endpoint")
                removed = _clear(app, state, endpoint)
                return json_response({"cleared": removed, "count": len(removed), "endpoint": endpoint or None})
            return json_response(_inject(app, state, name, fields), 201)

        view.__name__ = name
        view.__doc__ = f"POST /simulate/{name}; any other method gets a JSON 405."
        bp.add_url_rule(f"/{name}", endpoint=name, view_func=view, methods=["POST"])

    for route in _MUTATING_ROUTES:
        mutating(route)

    @bp.get("/status")
    def status():
        """GET /simulate/status: the faults in force and the valid target endpoints."""
        app = current_app._get_current_object()
        return json_response(_status(app, app.extensions[EXTENSION_KEY]))

    return bp
