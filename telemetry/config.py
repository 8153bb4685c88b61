"""Declarative, validated configuration shared by every extension of the product.

Each key is read once, at ``init_app`` time, in this order:

1. ``app.config[NAME]`` (what the host app or ``create_app(config)`` set);
2. the environment variable ``NAME``;
3. the key's default.

The value found is stored back with ``app.config.setdefault`` so the app's
config shows what is in force, then parsed. A value that does not parse raises
``ValueError`` naming the key, what is valid and what was given, so a bad
value fails at start-up and never at request time.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ConfigKey:
    """One documented setting: ``name``, ``default`` (a value or a callable
    taking the app), ``parse`` (raw value -> typed value, raises ValueError
    with what is valid), ``unit``, a one-line ``doc`` (markdown, as the README
    shows it) and ``shown_default``: how the documentation shows a default that
    a value cannot show (computed from the app, or None meaning something), in
    markdown; when None, ``default_text`` renders the value."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    unit: str
    doc: str
    shown_default: str | None = None

    def default_for(self, app) -> Any:
        return self.default(app) if callable(self.default) else self.default


def setting(name: str, default: Any, parse: Callable[[Any], Any], unit: str, doc: str,
            shown_default: str | None = None) -> Any:
    """A dataclass field declared by its config key, in one place: the key's name,
    default, parser, unit and help text; the field's default is the key's (a
    default computed from the app, a callable, leaves the field's default None:
    the value is known once ``read_config`` has seen the app).

    ``config_keys(cls)`` lists the keys of a settings dataclass (for
    ``read_config`` and the documentation); ``from_settings(cls, values)``
    builds it from what ``read_config`` returned."""
    key = ConfigKey(name, default, parse, unit, doc, shown_default)
    return dataclasses.field(default=None if callable(default) else default, metadata={"config_key": key})


def config_keys(cls) -> tuple[ConfigKey, ...]:
    """The ``ConfigKey`` of every ``setting`` field of the dataclass ``cls``, in field order."""
    return tuple(f.metadata["config_key"] for f in dataclasses.fields(cls) if "config_key" in f.metadata)


def from_settings(cls: type[T], values: Mapping[str, Any], **fields: Any) -> T:
    """``cls`` with each ``setting`` field taken from ``values`` (``{key name: value}``, as
    ``read_config`` returns; a key absent keeps its default) and ``fields`` as given."""
    for f in dataclasses.fields(cls):
        key = f.metadata.get("config_key")
        if key is not None and key.name in values and f.name not in fields:
            fields[f.name] = values[key.name]
    return cls(**fields)


def parse_fields(obj) -> None:
    """Parse every ``setting`` field of the dataclass instance ``obj`` with its key's parser, in
    place: the ``__post_init__`` of a settings object built from Python arguments rather than by
    ``read_config``. A bad value raises ``ValueError`` naming the field, what is valid and what
    was given."""
    for f in dataclasses.fields(obj):
        key = f.metadata.get("config_key")
        if key is None:
            continue
        raw = getattr(obj, f.name)
        try:
            value = key.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{f.name} {exc}, got {raw!r}") from None
        object.__setattr__(obj, f.name, value)  # frozen dataclasses too


def read_config(app, keys: Iterable[ConfigKey]) -> dict[str, Any]:
    """Resolve, validate and return ``{name: value}`` for ``keys`` on ``app``."""
    values: dict[str, Any] = {}
    for key in keys:
        if key.name in app.config:
            raw = app.config[key.name]
        elif key.name in os.environ:
            raw = os.environ[key.name]
        else:
            raw = key.default_for(app)
        try:
            value = key.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{key.name} {exc}, got {raw!r}") from None
        app.config.setdefault(key.name, value)
        values[key.name] = value
    return values


class EnvironmentOnly:
    """What ``read_config`` needs of an app when settings come from the environment
    only (the command line): an empty ``config``, and no default that needs an app."""

    def __init__(self):
        self.config: dict = {}


def read_environment(keys: Iterable[ConfigKey]) -> dict[str, Any]:
    """``read_config`` for the command line: each key from the environment, else its
    default (a default computed from the app sees an empty config)."""
    return read_config(EnvironmentOnly(), keys)


# -- parsers -----------------------------------------------------------------
# Each accepts the Python value a developer would put in app.config and the
# string an environment variable carries.


def as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError("must be a boolean (true/false, 1/0, yes/no, on/off)")


def as_number(minimum: float | None = None, maximum: float | None = None,
              integer: bool = False, min_exclusive: bool = False) -> Callable[[Any], float]:
    """Parser for a number within [minimum, maximum] (``(minimum`` when
    ``min_exclusive``)."""
    kind = "an integer" if integer else "a number"
    if minimum is not None and maximum is not None:
        lo = "(" if min_exclusive else "["
        valid = f"must be {kind} within {lo}{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        valid = f"must be {kind} {'>' if min_exclusive else '>='} {minimum:g}"
    else:
        valid = f"must be {kind}"

    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError(valid)
        try:
            value = int(raw) if integer else float(raw)
        except (TypeError, ValueError):
            raise ValueError(valid) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(valid)
        if minimum is not None and (value < minimum or (min_exclusive and value == minimum)):
            raise ValueError(valid)
        if maximum is not None and value > maximum:
            raise ValueError(valid)
        return value

    return parse


def as_str(nonempty: bool = True) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or (nonempty and not raw.strip()):
            raise ValueError("must be a non-empty string" if nonempty else "must be a string")
        return raw.strip()

    return parse


def as_optional_str(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError("must be a string or unset")
    return raw


def as_str_list(raw: Any) -> tuple[str, ...]:
    """A list of strings; from the environment, a comma-separated string."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise ValueError("must be a list of strings (or a comma-separated string)")


def as_mapping(value_parser: Callable[[Any], Any], what: str) -> Callable[[Any], dict]:
    """Parser for ``name=value`` pairs: a dict, or from the environment ``"a=1,b=2"``;
    each value parsed by ``value_parser``; ``what`` says what a pair is, for the error."""
    def parse(raw: Any) -> dict:
        if raw is None or raw == "":
            return {}
        items = raw.items() if isinstance(raw, dict) else [
            part.split("=", 1) if "=" in part else (part, None) for part in str(raw).split(",") if part.strip()]
        out = {}
        for name, value in items:
            if value is None:
                raise ValueError(f"must be comma-separated name=value pairs ({what})")
            out[str(name).strip()] = value_parser(value)
        return out
    return parse


def as_regex_list(raw: Any) -> tuple[str, ...]:
    """A list of regular expressions, each checked to compile."""
    patterns = as_str_list(raw)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"must be a list of valid regular expressions ({pattern!r}: {exc})") from None
    return patterns


def default_text(key: ConfigKey) -> str:
    """The default of ``key`` as the documentation shows it, in markdown, as a user would write
    it: ``shown_default`` when given; ``true``/``false``; a number as Python prints it (``10.0``);
    a string or each string of a list in backticks (a list comma-separated); ``unset`` for None
    and ``none`` for an empty list or mapping. A default computed from the app needs a
    ``shown_default`` (``ValueError`` otherwise)."""
    value = key.default
    if key.shown_default is not None:
        return key.shown_default
    if callable(value):
        raise ValueError(f"{key.name}: a default computed from the app needs a shown_default")
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (int, float)):
        return f"`{value!r}`"
    if isinstance(value, str):
        return f"`{value}`" if value else "none"
    if isinstance(value, (tuple, list)):
        return ", ".join(f"`{item}`" for item in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"`{k}={v}`" for k, v in value.items()) if value else "none"
    raise ValueError(f"{key.name}: no way to show the default {value!r}; give it a shown_default")


def describe(keys: Iterable[ConfigKey]) -> list[dict[str, Any]]:
    """Rows of name, default (the value, or None when computed from the app), the default as
    the documentation shows it, unit and doc: for the documentation (``aiops config``) and tests."""
    return [{"name": key.name, "default": None if callable(key.default) else key.default,
             "shown_default": default_text(key), "unit": key.unit, "doc": key.doc} for key in keys]
