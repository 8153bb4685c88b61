"""Services and SLO definitions: validation of API bodies and OpenSLO-style files. Pure.

An SLO says which requests of a service (or one route) are *good*:

* ``availability``: not an error (5xx or an exception); ``target`` is the
  good share, e.g. 0.999;
* ``latency``: finished within ``threshold_ms``; ``target`` is the good share;
* ``error_rate``: not an error; ``target`` is the highest error ratio
  allowed, e.g. 0.01.

Budgets are request based ("Occurrences" in OpenSLO): every request counts
the same. An invalid definition raises ``PayloadError`` naming the field.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Mapping

from telemetry.errors import PayloadError
from telemetry.timefmt import iso

DAY_S = 86400.0
DEFAULT_WINDOW_S = 30 * DAY_S
INDICATORS = ("availability", "latency", "error_rate")
BUDGETING_METHODS = ("Occurrences",)
TIERS = {1: "critical", 2: "important", 3: "standard"}
#: Latency buckets (ms) kept per minute and exported as the request histogram;
#: a latency SLO's ``threshold_ms`` must be one of them. They are columns of the stored
#: counts: a change needs a migration in ``aiops.slo.store.MIGRATIONS`` (a test checks it).
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500,
                      5000, 10000)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_duration_s(text, field_name: str = "timeWindow") -> float:
    """``"30d"``, ``"6h"``, ``"5m"``, ``"90s"``, ``"2w"`` -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text > 0:
        return float(text)
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise PayloadError(field_name, f"must be a duration such as 30d, 7d, 24h or 90m, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", DAY_S), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass
class Service:
    """A service: ``tier`` 1 (critical), 2 (important) or 3 (standard)."""

    name: str
    tier: int = 3
    owner: str | None = None
    description: str | None = None
    created_at: float | None = None
    updated_at: float | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "tier": self.tier, "tier_name": TIERS[self.tier], "owner": self.owner,
                "description": self.description, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


@dataclass
class SLODefinition:
    """One objective. ``window_s`` is the rolling SLO window (default 30 days)."""

    name: str
    service: str
    indicator: str
    target: float
    window_s: float = DEFAULT_WINDOW_S
    route: str | None = None
    threshold_ms: float | None = None
    budgeting_method: str = "Occurrences"
    description: str | None = None
    source: str = "api"
    id: int | None = None

    @property
    def allowed_bad_ratio(self) -> float:
        return self.target if self.indicator == "error_rate" else 1.0 - self.target

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "service": self.service, "route": self.route,
                "indicator": self.indicator, "threshold_ms": self.threshold_ms, "target": self.target,
                "timeWindow": format_duration(self.window_s), "window_s": self.window_s,
                "budgetingMethod": self.budgeting_method, "allowed_bad_ratio": round(self.allowed_bad_ratio, 9),
                "description": self.description, "source": self.source}

    def to_dict(self) -> dict:
        return asdict(self)


_SERVICE_FIELDS = {"name", "tier", "owner", "description"}
_SLO_FIELDS = {"name", "service", "route", "indicator", "threshold_ms", "thresholdMs", "target", "timeWindow",
               "window", "budgetingMethod", "description"}


def _text(raw: Mapping, key: str, required: bool = False, limit: int = 500) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise PayloadError(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(key, f"must be a non-empty string, got {value!r}")
    if len(value) > limit:
        raise PayloadError(key, f"must be at most {limit} characters")
    return value.strip()


def validate_service(raw, name: str | None = None, partial: bool = False) -> dict:
    """Fields of a service from a request body or file entry; raises ``PayloadError``.

    ``name`` (from the URL) wins over the body's; ``partial`` allows missing fields (updates).
    """
    if not isinstance(raw, Mapping):
        raise PayloadError("body", "must be a JSON object with name, tier, owner and description")
    unknown = set(raw) - _SERVICE_FIELDS
    if unknown:
        raise PayloadError(sorted(unknown)[0], f"unknown field; valid fields: {', '.join(sorted(_SERVICE_FIELDS))}")
    out: dict = {}
    if name is None:
        out["name"] = _text(raw, "name", required=True, limit=128)
        if not _NAME.match(out["name"]):
            raise PayloadError("name", "must be 1-128 characters of letters, digits and . _ : / -")
    if "tier" in raw or not partial:
        tier = raw.get("tier", 3)
        if isinstance(tier, bool) or tier not in TIERS:
            raise PayloadError("tier", f"must be 1 (critical), 2 (important) or 3 (standard), got {tier!r}")
        out["tier"] = int(tier)
    for key in ("owner", "description"):
        if key in raw:
            out[key] = _text(raw, key, limit=128 if key == "owner" else 2000)
    return out


def _time_window_s(raw) -> float:
    """OpenSLO ``timeWindow``: ``[{"duration": "30d", "isRolling": true}]``, or just ``"30d"``."""
    if isinstance(raw, list):
        if len(raw) != 1 or not isinstance(raw[0], Mapping):
            raise PayloadError("timeWindow", "must be one window, e.g. [{duration: 30d, isRolling: true}]")
        entry = raw[0]
        if entry.get("isRolling", True) is not True:
            raise PayloadError("timeWindow.isRolling", "only rolling windows are supported (isRolling: true)")
        return parse_duration_s(entry.get("duration"), "timeWindow.duration")
    if isinstance(raw, Mapping):
        return _time_window_s([raw])
    return parse_duration_s(raw, "timeWindow")


def validate_slo(raw, service: str | None = None, source: str = "api") -> SLODefinition:
    """An ``SLODefinition`` from a request body or a file entry; raises ``PayloadError``
    naming the field. ``service`` (from the URL) wins; the body may repeat it but not contradict it."""
    if not isinstance(raw, Mapping):
        raise PayloadError("body", "must be a JSON object (an SLO definition)")
    unknown = set(raw) - _SLO_FIELDS
    if unknown:
        raise PayloadError(sorted(unknown)[0], f"unknown field; valid fields: {', '.join(sorted(_SLO_FIELDS))}")
    body_service = _text(raw, "service", required=service is None, limit=128)
    if service is not None and body_service is not None and body_service != service:
        raise PayloadError("service", f"the body says {body_service!r} but the URL says {service!r}")
    service = service or body_service
    indicator = raw.get("indicator")
    if isinstance(indicator, Mapping):  # OpenSLO-like {type: latency, threshold_ms: 300}
        indicator, raw = indicator.get("type"), {**raw, **{k: v for k, v in indicator.items() if k != "type"}}
    if indicator not in INDICATORS:
        raise PayloadError("indicator", f"must be one of {', '.join(INDICATORS)}, got {indicator!r}")
    target = raw.get("target")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
        raise PayloadError("target", f"must be a number strictly between 0 and 1 (e.g. 0.999), got {target!r}")
    if indicator == "error_rate" and target > 0.5:
        raise PayloadError("target", "an error_rate target is the highest error ratio allowed "
                                           f"(e.g. 0.01); {target!r} allows more errors than successes")
    threshold = raw.get("threshold_ms", raw.get("thresholdMs"))
    if indicator == "latency":
        if threshold not in LATENCY_BUCKETS_MS or isinstance(threshold, bool):
            raise PayloadError("threshold_ms", "a latency SLO needs threshold_ms, one of the histogram "
                                     f"bucket bounds {', '.join(map(str, LATENCY_BUCKETS_MS))}; got {threshold!r}")
        threshold = float(threshold)
    elif threshold is not None:
        raise PayloadError("threshold_ms", f"only a latency SLO takes threshold_ms (indicator is {indicator})")
    window_raw = raw.get("timeWindow", raw.get("window"))
    window_s = DEFAULT_WINDOW_S if window_raw is None else _time_window_s(window_raw)
    if not 3600.0 <= window_s <= 90 * DAY_S:
        raise PayloadError("timeWindow", f"must be between 1h and 90d, got {format_duration(window_s)}")
    method = raw.get("budgetingMethod", "Occurrences")
    if method not in BUDGETING_METHODS:
        raise PayloadError("budgetingMethod", f"must be one of {', '.join(BUDGETING_METHODS)} "
                                 f"(request-based budgets), got {method!r}")
    route = _text(raw, "route", limit=512)
    name = _text(raw, "name", limit=128)
    if name is None:
        name = re.sub(r"[^A-Za-z0-9._:]+", "-", f"{service}-{route or ''}-{indicator}").strip("-")[:128]
    if not _NAME.match(name):
        raise PayloadError("name", "must be 1-128 characters of letters, digits and . _ : / -")
    return SLODefinition(name=name, service=service, indicator=indicator, target=float(target), window_s=window_s,
                         route=route, threshold_ms=threshold, budgeting_method=method,
                         description=_text(raw, "description", limit=2000), source=source)


def parse_definitions(doc) -> tuple[list[dict], list[SLODefinition]]:
    """Services and SLOs of an ``AIOPS_SLO_FILE`` document (already parsed from YAML or JSON).

    ``{"services": [...], "slos": [...]}``; field errors name their place, e.g. ``slos[2].target``.
    """
    if not isinstance(doc, Mapping):
        raise PayloadError("(file)", "must be a mapping with 'services' and/or 'slos' lists")
    unknown = set(doc) - {"services", "slos"}
    if unknown:
        raise PayloadError(sorted(unknown)[0], "unknown top-level key; valid keys: services, slos")
    services, slos, names = [], [], set()
    for section in ("services", "slos"):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            raise PayloadError(section, "must be a list")
        for i, entry in enumerate(entries):
            try:
                if section == "services":
                    services.append(validate_service(entry))
                else:
                    slo = validate_slo(entry, source="file")
                    if slo.name in names:
                        raise PayloadError("name", f"{slo.name!r} is defined twice")
                    names.add(slo.name)
                    slos.append(slo)
            except PayloadError as exc:
                raise PayloadError(f"{section}[{i}].{exc.field}", exc.detail) from None
    return services, slos
