"""Pushed metrics: the point type and the pure validation of a pushed JSON batch.

A batch is a JSON list, or ``{"metrics": [...]}``, of points
``{"timestamp", "service", "name", "value", "labels"}``:

- ``timestamp``: epoch seconds (number) or an ISO 8601 string (a zone-less
  one is read as UTC);
- ``service`` and ``name``: non-empty strings of at most 200 characters;
- ``value``: a finite number;
- ``labels`` (optional): an object of at most 32 string keys whose values are
  strings, numbers or booleans.

``parse_metric_batch`` either returns every point or raises
``MetricBatchError`` naming the first wrong point's index and field and what
is valid, so nothing of a rejected batch is stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from telemetry.errors import PayloadError
from telemetry.timefmt import MAX_EPOCH_S, MIN_EPOCH_S, iso, parse_time

#: Default cap on points per batch (``AIOPS_METRICS_MAX_BATCH``).
MAX_BATCH = 10_000
MAX_NAME_CHARS = 200
MAX_LABELS = 32


@dataclass(frozen=True)
class MetricPoint:
    """One pushed sample: ``timestamp_s`` epoch seconds, ``value`` in the metric's own unit."""

    timestamp_s: float
    service: str
    name: str
    value: float
    labels: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"timestamp": iso(self.timestamp_s), "timestamp_s": self.timestamp_s, "service": self.service,
                "name": self.name, "value": self.value, "labels": dict(self.labels)}


class MetricBatchError(PayloadError):
    """A batch that cannot be stored: a ``PayloadError`` whose ``index`` and ``field`` name the
    culprit (None for the batch as a whole)."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None):
        super().__init__(field, message, error="invalid metric batch", index=index)
        self.index = index

    def __str__(self) -> str:
        return self.detail


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must be a non-empty string")
    if len(raw) > MAX_NAME_CHARS:
        raise ValueError(f"must be at most {MAX_NAME_CHARS} characters")
    return raw.strip()


def _value(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValueError("must be a finite number")
    return float(raw)


def _labels(raw: Any) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("must be an object of string keys to string, number or boolean values")
    if len(raw) > MAX_LABELS:
        raise ValueError(f"must have at most {MAX_LABELS} keys")
    for key, value in raw.items():
        if not isinstance(key, str) or not key or len(key) > MAX_NAME_CHARS:
            raise ValueError(f"keys must be non-empty strings of at most {MAX_NAME_CHARS} characters")
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"label {key!r} must be a string, a finite number or a boolean")
    return dict(raw)


_FIELDS = (("timestamp", parse_time), ("service", _name), ("name", _name), ("value", _value))
_KNOWN = {"timestamp", "service", "name", "value", "labels"}


def parse_metric_batch(payload: Any, max_points: int = MAX_BATCH) -> list[MetricPoint]:
    """Every point of ``payload`` (a list, or ``{"metrics": [...]}``), validated.

    Raises ``MetricBatchError`` for the first problem: the batch's shape, its
    size (1 .. ``max_points``), or a point's index and field.
    """
    if isinstance(payload, dict):
        extra = set(payload) - {"metrics"}
        if "metrics" not in payload or extra:
            raise MetricBatchError('the body must be a JSON list of points or {"metrics": [...]}'
                                   + (f"; unexpected keys: {', '.join(sorted(map(str, extra)))}" if extra else ""),
                                   field="metrics")
        payload = payload["metrics"]
    if not isinstance(payload, list):
        raise MetricBatchError('the body must be a JSON list of points or {"metrics": [...]}', field="metrics")
    if not payload:
        raise MetricBatchError("the batch is empty; send 1 to %d points" % max_points, field="metrics")
    if len(payload) > max_points:
        raise MetricBatchError(f"the batch has {len(payload)} points; at most {max_points} per request "
                               "(split it into several batches)", field="metrics")
    points = []
    append = points.append
    for index, raw in enumerate(payload):
        # Fast path for a well-formed point; anything unusual takes the checked path (which names the error).
        if type(raw) is dict and raw.keys() <= _KNOWN:
            ts, service, name, value = raw.get("timestamp"), raw.get("service"), raw.get("name"), raw.get("value")
            labels = raw.get("labels")
            if (type(ts) in _NUMBER and MIN_EPOCH_S <= ts < MAX_EPOCH_S
                    and type(value) in _NUMBER and value - value == 0
                    and type(service) is str and _clean_name(service) and type(name) is str and _clean_name(name)
                    and (labels is None or (type(labels) is dict and _clean_labels(labels)))):
                append(MetricPoint(float(ts), service, name, float(value), dict(labels) if labels else {}))
                continue
        append(_checked_point(index, raw))
    return points


_NUMBER = (int, float)
_SCALAR = (str, int, float, bool)


def _clean_name(text: str) -> bool:
    return 0 < len(text) <= MAX_NAME_CHARS and not text[0].isspace() and not text[-1].isspace()


def _clean_labels(labels: dict) -> bool:
    if len(labels) > MAX_LABELS:
        return False
    for key, value in labels.items():
        kind = type(value)
        if type(key) is not str or not 0 < len(key) <= MAX_NAME_CHARS or kind not in _SCALAR \
                or (kind is float and value - value != 0):
            return False
    return True


def _checked_point(index: int, raw: Any) -> MetricPoint:
    """One point validated field by field; raises ``MetricBatchError`` naming the problem."""
    if not isinstance(raw, dict):
        raise MetricBatchError(f"metrics[{index}] must be an object with timestamp, service, name, value "
                               "and optional labels", index=index)
    unknown = set(raw) - _KNOWN
    if unknown:
        raise MetricBatchError(f"metrics[{index}] has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                               f"valid fields: {', '.join(sorted(_KNOWN))}", index=index,
                               field=sorted(map(str, unknown))[0])
    values = {}
    for name, parse in _FIELDS:
        if name not in raw:
            raise MetricBatchError(f"metrics[{index}].{name} is missing", index=index, field=name)
        try:
            values[name] = parse(raw[name])
        except ValueError as exc:
            raise MetricBatchError(f"metrics[{index}].{name} {exc}, got {raw[name]!r:.80}",
                                   index=index, field=name) from None
    try:
        labels = _labels(raw.get("labels"))
    except ValueError as exc:
        raise MetricBatchError(f"metrics[{index}].labels {exc}", index=index, field="labels") from None
    return MetricPoint(values["timestamp"], values["service"], values["name"], values["value"], labels)
