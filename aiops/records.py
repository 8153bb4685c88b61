"""Stored JSON read tolerantly: a record written by an older or newer version loads.

Incidents, baselines, alerts and groups are stored as JSON. ``from_known``
builds a dataclass from a stored dict, ignoring fields it does not know (a
newer version wrote them) and leaving missing ones at their defaults (an
older version had none). A required field that is missing or a value of the
wrong shape raises ``ValueError`` naming it, so a store can skip that one
record instead of failing a whole pass (``aiops.store.database.Database.decode_rows``).
``json_object`` does the same for records kept as plain dicts (SLO snapshots and alerts).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


@functools.cache
def _field_names(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """(every field name, the required ones) of the dataclass ``cls``, computed once per class."""
    fields = dataclasses.fields(cls)
    required = tuple(f.name for f in fields
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    return frozenset(f.name for f in fields), required


def from_known(cls: type[T], data: Mapping[str, Any], **converted: Any) -> T:
    """``cls(**data)`` with unknown keys dropped; ``converted`` replaces fields after reading."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a stored {cls.__name__} must be a JSON object, got {type(data).__name__}")
    names, required = _field_names(cls)
    # the common case, a record of this version: no unknown key to drop (a set test in C)
    values = data if names.issuperset(data.keys()) else {k: v for k, v in data.items() if k in names}
    if converted:
        values = {**values, **converted}
    try:
        return cls(**values)
    except TypeError:  # a required field is missing: say which
        missing = sorted(name for name in required if name not in values)
        raise ValueError(f"a stored {cls.__name__} lacks {', '.join(missing) or 'a required field'}") from None


def json_object(data: Any, *required: str, what: str = "record") -> dict:
    """``data`` when it is a JSON object holding every ``required`` key; ``ValueError`` naming what is not."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a stored {what} must be a JSON object, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"a stored {what} lacks {', '.join(missing)}")
    return dict(data)
