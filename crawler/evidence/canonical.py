"""Canonical JSON for ledger payloads: RFC 8785, the JSON Canonicalization Scheme (JCS).

A leaf hash is taken over bytes, so the same logical entry must always serialize to the same bytes,
on any machine and in any language, years from now. JCS gives exactly that and is implementable by
anyone from the RFC alone:

- objects: members sorted by their names compared as arrays of UTF-16 code units (not by code
  points: an astral character such as U+1F600 sorts *before* U+FB33, because its first surrogate
  is 0xD83D), no whitespace anywhere, ``,`` and ``:`` as separators;
- strings: UTF-8, only ``"``, ``\\`` and the C0 controls escaped (``\\b \\t \\n \\f \\r`` by name,
  the others as ``\\u00xx`` in lower-case hex); everything else literal. Strings holding lone
  surrogates are refused: they cannot be encoded as UTF-8;
- numbers: ECMAScript's ``Number.prototype.toString`` (the shortest digits that round-trip, then
  plain or exponent notation by ES's rules: ``1e+21``, ``1e-7``, ``0.000001``, ``-0`` → ``0``).
  NaN and ±Infinity are refused. A Python ``int`` beyond ±2**53 is accepted only when it is a
  double's exact value or ES's own spelling of one, and is then spelled as that double
  (``10**21`` → ``1e+21``); any other would change value when a JCS implementation read it back,
  so such values must travel as strings;
- ``true``, ``false``, ``null`` as literals; arrays keep their order (lists and tuples).

Anything else (datetimes, bytes, sets, Decimals, pydantic models) is refused with ``TypeError``:
JSON has no datetime, so payloads carry times as RFC 3339 UTC strings made by :func:`rfc3339_utc`
(``2026-01-02T03:04:05.123456Z``: always microseconds, always ``Z``, so one instant has one
spelling), digests as lower-case hex strings, and binary data as standard base64 strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

#: the largest magnitude of a Python int we serialize as a JSON number (2**53, exact in a double)
MAX_SAFE_INTEGER = 2**53


def canonicalize(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (the bytes a leaf hash is taken over)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def canonical_text(value: object) -> str:
    """The canonical form as ``str`` (what the ledger stores as an entry's ``payload``)."""
    return canonicalize(value).decode("utf-8")


def rfc3339_utc(moment: datetime) -> str:
    """One spelling per instant: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: evidence times must be UTC-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def number_text(value: int | float) -> str:
    """ECMAScript ``Number::toString`` of ``value`` as RFC 8785 §3.2.2.3 requires."""
    if isinstance(value, bool):
        raise TypeError("bool is not a JSON number")
    if isinstance(value, int):
        if abs(value) <= MAX_SAFE_INTEGER:
            return str(value)
        as_double = float(value) if abs(value) < 2**1024 else math.inf
        if math.isinf(as_double) or (as_double != value and number_text(as_double) != str(value)):
            raise ValueError(f"integer {value} is not exact as an IEEE double: send it as a string")
        # e.g. 2**60, 10**21, or 41022896654225860 (ES's own spelling of a double): the double it
        # denotes, spelled as ES spells it, so parsing canonical text and re-canonicalizing is stable
        value = as_double
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not allowed in canonical JSON (RFC 8785 §3.2.2.3)")
    if value == 0:
        return "0"  # also -0.0
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    exponent = point - 1
    exp_text = ("+" if exponent >= 0 else "-") + str(abs(exponent))
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return sign + mantissa + "e" + exp_text


def _shortest_digits(value: float) -> tuple[str, int]:
    """(s, n) with value = 0.s × 10**n and s the shortest round-tripping digits.

    Python's ``repr`` already yields the shortest round-tripping digit string, correctly rounded,
    which is the digit choice ES mandates; only the layout differs, and that is done above.
    """
    text = repr(value)
    mantissa, _, exp_part = text.partition("e")
    exponent = int(exp_part) if exp_part else 0
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    leading_zeros = len(all_digits) - len(stripped)
    return stripped.rstrip("0"), len(int_part) + exponent - leading_zeros


def _string_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"string with a lone surrogate cannot be canonical JSON: {value!r}") from exc
    # json.dumps(ensure_ascii=False) escapes exactly what JCS escapes, in the same spelling.
    return json.dumps(value, ensure_ascii=False)


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 compares byte-wise exactly as the code-unit arrays compare.
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string_text(value))
    elif isinstance(value, int | float):
        out.append(number_text(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str):
                raise TypeError(f"object member names must be str, got {type(name).__name__}: {name!r}")
        out.append("{")
        for i, name in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_string_text(name))
            out.append(":")
            _write(value[name], out)
        out.append("}")
    else:
        raise TypeError(
            f"{type(value).__name__} is not JSON: convert it first (times with rfc3339_utc, bytes to hex/base64)"
        )
