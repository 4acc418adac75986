"""RFC 8785 canonical JSON: the RFC's own examples, its number table, and what must be refused."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.evidence.canonical import canonical_text, canonicalize, number_text, rfc3339_utc

# RFC 8785 §3.2.2 input (JSON text); its canonical form is printed in §3.2.3
RFC_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""


def test_rfc8785_example_bytes() -> None:
    expected_text = (
        r"""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"""
        r""""string":"€$\u000f\nA'B\"\\\\\"/"}"""
    )
    got = canonicalize(json.loads(RFC_INPUT))
    assert got == expected_text.encode("utf-8")


def test_rfc8785_sorting_by_utf16_code_units() -> None:
    doc = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    keys = list(json.loads(canonical_text(doc)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


# RFC 8785 Appendix B: IEEE 754 bit pattern -> ES serialization
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert number_text(value) == expected


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinities_are_refused(bits: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        canonicalize({"x": struct.unpack(">d", bytes.fromhex(bits))[0]})


def test_integers_beyond_2_53_must_be_exact_doubles() -> None:
    assert canonicalize([2**53, -(2**53), 0, -7]) == b"[9007199254740992,-9007199254740992,0,-7]"
    assert canonicalize([2**53 + 2, 10**21, 2**70]) == b"[9007199254740994,1e+21,1.1805916207174113e+21]"
    for inexact in (2**53 + 1, 10**23, 2**1100):
        with pytest.raises(ValueError, match="as a string"):
            canonicalize({"big": inexact})


def test_strings_escape_only_what_jcs_escapes() -> None:
    assert canonicalize("\x00\x1f\x7f\u2028/é") == b'"\\u0000\\u001f\x7f\xe2\x80\xa8/\xc3\xa9"'
    assert canonicalize('\b\t\n\f\r"\\') == b'"\\b\\t\\n\\f\\r\\"\\\\"'


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        canonicalize({"k": "\ud800"})
    with pytest.raises(ValueError, match="surrogate"):
        canonicalize({"\udc00": 1})


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 1, 1, tzinfo=UTC), b"bytes", {1, 2}, {1: "int key"}, object()],
    ids=["datetime", "bytes", "set", "int-key", "object"],
)
def test_non_json_values_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        canonicalize({"v": value})


def test_tuples_are_arrays_and_bools_are_not_numbers() -> None:
    assert canonicalize({"b": (True, False, None), "a": 1.0}) == b'{"a":1,"b":[true,false,null]}'
    with pytest.raises(TypeError):
        number_text(True)


def test_rfc3339_utc_has_one_spelling_per_instant() -> None:
    paris = timezone(timedelta(hours=1))
    a = datetime(2026, 3, 1, 13, 4, 5, tzinfo=paris)
    b = datetime(2026, 3, 1, 12, 4, 5, tzinfo=UTC)
    assert rfc3339_utc(a) == rfc3339_utc(b) == "2026-03-01T12:04:05.000000Z"
    with pytest.raises(ValueError, match="naive"):
        rfc3339_utc(datetime(2026, 3, 1, 12, 4, 5))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(codec="utf-8"), max_size=6), children, max_size=5)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_form_round_trips_and_is_a_fixed_point(value: object) -> None:
    text = canonical_text(value)
    parsed = json.loads(text)
    assert canonical_text(parsed) == text  # re-canonicalizing what a reader parsed changes nothing
    _assert_same(parsed, value)


def _assert_same(parsed: object, value: object) -> None:
    if isinstance(value, float):
        assert isinstance(parsed, int | float)
        assert float(parsed) == value  # a reader gets the very same double back
    elif isinstance(value, list | tuple):
        assert isinstance(parsed, list) and len(parsed) == len(value)
        for p, v in zip(parsed, value, strict=True):
            _assert_same(p, v)
    elif isinstance(value, dict):
        assert isinstance(parsed, dict) and parsed.keys() == value.keys()
        for k in value:
            _assert_same(parsed[k], value[k])
    else:
        assert parsed == value
