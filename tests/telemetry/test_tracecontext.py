"""W3C traceparent/tracestate parsing, including garbage headers (hypothesis)."""
import re

import pytest
from hypothesis import given, settings, strategies as st

from telemetry.tracecontext import (
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
    sampled_by_ratio,
)

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_valid_header_parses():
    tp = parse_traceparent(VALID)
    assert tp.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert tp.parent_span_id == "b7ad6b7169203331"
    assert tp.sampled is True
    assert parse_traceparent(VALID[:-2] + "00").sampled is False


@pytest.mark.parametrize("header", [
    None, "", "garbage",
    VALID.upper(),                                                     # uppercase hex is invalid
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",         # version ff
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",         # all-zero trace id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",         # all-zero parent id
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",   # version 00 has 4 fields
    "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",           # short trace id
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",          # short span id
    "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
    "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",         # non-hex
    VALID + "," + VALID,                                               # two headers joined
])
def test_invalid_headers_are_rejected(header):
    assert parse_traceparent(header) is None


def test_future_version_may_carry_more_fields():
    tp = parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds")
    assert tp is not None and tp.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_surrounding_whitespace_is_tolerated():
    assert parse_traceparent("  " + VALID + "\t") is not None


@settings(max_examples=500)
@given(st.text())
def test_garbage_never_raises_and_valid_results_are_well_formed(header):
    tp = parse_traceparent(header)
    if tp is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", tp.trace_id) and tp.trace_id != "0" * 32
        assert re.fullmatch(r"[0-9a-f]{16}", tp.parent_span_id) and tp.parent_span_id != "0" * 16


@given(st.from_regex(r"\A[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z"))
def test_well_formed_headers_parse_unless_forbidden(header):
    version, trace_id, span_id, _ = header.split("-")
    forbidden = version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}
    assert (parse_traceparent(header) is None) == forbidden


@given(st.binary(max_size=80))
def test_bytes_decoded_as_latin1_never_raise(raw):
    parse_traceparent(raw.decode("latin-1"))
    parse_tracestate(raw.decode("latin-1"))


def test_round_trip_of_generated_ids():
    for _ in range(200):
        trace_id, span_id = new_trace_id(), new_span_id()
        tp = parse_traceparent(format_traceparent(trace_id, span_id, True))
        assert (tp.trace_id, tp.parent_span_id, tp.sampled) == (trace_id, span_id, True)


@pytest.mark.parametrize("header,expected", [
    ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ("rojo=00f067aa0ba902b7, ,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ("tenant@vendor=abc", "tenant@vendor=abc"),
    ("Rojo=1", None),                       # keys are lowercase
    ("rojo", None),                         # no '='
    ("rojo=1,rojo=2", None),                # duplicate key
    (",".join(f"k{i}=v" for i in range(33)), None),  # too many members
    ("a=" + "x" * 600, None),               # too long
    ("", None), (None, None),
])
def test_tracestate(header, expected):
    assert parse_tracestate(header) == expected


def test_ratio_sampling_is_deterministic_and_proportional():
    ids = [new_trace_id() for _ in range(4000)]
    assert all(sampled_by_ratio(t, 1.0) for t in ids)
    assert not any(sampled_by_ratio(t, 0.0) for t in ids)
    share = sum(sampled_by_ratio(t, 0.25) for t in ids) / len(ids)
    assert 0.2 < share < 0.3
    assert [sampled_by_ratio(t, 0.5) for t in ids[:50]] == [sampled_by_ratio(t, 0.5) for t in ids[:50]]
