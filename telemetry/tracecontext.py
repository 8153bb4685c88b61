"""W3C Trace Context (https://www.w3.org/TR/trace-context/): parse, build, sample.

Pure functions, no Flask. Parsing is strict, as the spec asks of a receiver:
lowercase hex only, version ``ff`` and all-zero ids are invalid, version
``00`` has exactly four fields, and anything invalid yields ``None`` (the
caller then starts a new trace) instead of raising.
"""
from __future__ import annotations

import random
import re
from typing import NamedTuple

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z", re.S)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_TRACESTATE_MAX_CHARS = 512
_TRACESTATE_MAX_MEMBERS = 32
_TRACESTATE_KEY = re.compile(r"[a-z0-9][_0-9a-z\-*/]{0,255}(@[a-z][_0-9a-z\-*/]{0,13})?\Z")
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]\Z")

SAMPLED = 0x01


class TraceParent(NamedTuple):
    """An incoming ``traceparent``: the caller's trace id, its span id and flags."""

    trace_id: str
    parent_span_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)


def parse_traceparent(header: str | None) -> TraceParent | None:
    """The parsed header, or None when it is absent or invalid in any way."""
    if not header or len(header) > 512:
        return None
    match = _TRACEPARENT.match(header.strip(" \t"))
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == "00" and rest is not None:
        return None  # version 00 has exactly four fields
    return TraceParent(trace_id, span_id, int(flags, 16))


def format_traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    """A version-00 header for an outgoing call whose parent is ``span_id``."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def parse_tracestate(header: str | None) -> str | None:
    """The ``tracestate`` to carry along, or None when absent or invalid.

    List members are checked for the spec's key and value grammar; empty
    members are dropped; more than 32 members or more than 512 characters
    make the whole header invalid (it is then not propagated).
    """
    if not header or len(header) > _TRACESTATE_MAX_CHARS:
        return None
    members = [m.strip(" \t") for m in header.split(",")]
    members = [m for m in members if m]
    if not members or len(members) > _TRACESTATE_MAX_MEMBERS:
        return None
    seen = set()
    for member in members:
        key, sep, value = member.partition("=")
        if not sep or key in seen or not _TRACESTATE_KEY.match(key) or not _TRACESTATE_VALUE.match(value):
            return None
        seen.add(key)
    return ",".join(members)


def new_trace_id() -> str:
    """32 lowercase hex characters, never all zeros."""
    return "%032x" % (random.getrandbits(128) or 1)


def new_span_id() -> str:
    """16 lowercase hex characters, never all zeros."""
    return "%016x" % (random.getrandbits(64) or 1)


def sampled_by_ratio(trace_id: str, rate: float) -> bool:
    """Deterministic root sampling on the trace id's low 64 bits (as
    OpenTelemetry's TraceIdRatioBased does), so every service that sees the
    same new trace id decides alike."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return int(trace_id[16:], 16) < rate * (1 << 64)
