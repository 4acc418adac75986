"""Fuzzing the text inputs: the link normalizer and the hash-list importers never crash.

Why: link text comes from hostile pages and hash lists come from outside exchanges; one bad row
must become a ``RowError`` (or no link), never an exception that stops a crawl or an import.
``tests/test_links.py`` already property-tests link spellings; this adds the full unicode range
(surrogates, controls, combining marks, RTL) and large inputs. Deterministic and bounded.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.hashing import signals
from crawler.hashing.lists import FORMATS, HashRow, RowError, parse
from foundation.links import find_links, normalize

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ANY_UNICODE = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
"""Every code point, lone surrogates included (they reach us from ``errors="surrogateescape"``)."""

LINKISH = st.sampled_from(
    ["t.me/", "https://", "tg://resolve?domain=", "@", "+", "/", "?", "#", "%2F", "telegram.me/s/", "joinchat/",
     "c/", "addlist/", "durov", "Durov_News", "12345", "\u202e", "\u0301", "\ufeff", "\x00", "ｔ．ｍｅ/", "\U0001f600",
     "<a href='", "'>", "</a>", "&#64;", "<script>", "</script>", " ", "\n"]
)  # fmt: skip


@FUZZ
@given(text=ANY_UNICODE, html=st.one_of(st.none(), ANY_UNICODE))
def test_links_never_raise_on_any_unicode(text: str, html: str | None) -> None:
    link = normalize(text)
    assert link is None or normalize(link.canonical) == link
    for found in find_links(text, html):
        assert found.canonical.isascii() or found.kind == "invite", found
        assert normalize(found.canonical) == found


@FUZZ
@given(parts=st.lists(st.one_of(LINKISH, ANY_UNICODE), max_size=40))
def test_links_never_raise_on_mixed_link_fragments(parts: list[str]) -> None:
    text = "".join(parts)
    for found in find_links(text, text):
        assert normalize(found.canonical) == found


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(unit=st.one_of(LINKISH, st.text(min_size=1, max_size=8)), times=st.integers(10_000, 60_000))
def test_links_survive_huge_text(unit: str, times: int) -> None:
    """Large plain text (a whole aggregator page's worth) goes through the regex path."""
    text = unit * times
    normalize(text)
    assert isinstance(find_links(text), list)


def test_links_in_a_large_realistic_page() -> None:
    chunk = "see https://t.me/durov_news/12 and @somebody_else, tg://resolve?domain=abcde; t.me/+AbCdEfGh1234 "
    text = chunk * 10_000  # ~1 MB
    found = {link.canonical for link in find_links(text)}
    assert found == {
        "https://t.me/durov_news/12",
        "https://t.me/somebody_else",
        "https://t.me/abcde",
        "https://t.me/+AbCdEfGh1234",
    }


# --- hash-list importers -------------------------------------------------------------------------

HEX64 = st.text("0123456789abcdefABCDEF", min_size=60, max_size=68)
HEX32 = st.text("0123456789abcdef", min_size=30, max_size=34)
SIGNAL = st.one_of(HEX64, HEX32, st.text(max_size=80), st.sampled_from(["", "[]", "[{}]", "[1]", "a,b,c", "null"]))
TYPE = st.sampled_from(
    [
        "sha256",
        "md5",
        "pdq",
        "vpdq",
        "PDQ",
        " md5 ",
        "video_md5",
        "HASH_PDQ",
        "ImagePDQ",
        "VideoMD5",
        "VideoTMK",
        "",
        "x",
    ]
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20), TYPE, SIGNAL),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _record(kind: str, value: object, extra: dict[str, object]) -> dict[str, object]:
    return {"signal_type": kind, "signal": value, "signalType": kind, "hashValue": value, **extra}


RECORD = st.builds(
    _record,
    TYPE,
    st.one_of(SIGNAL, JSONISH),
    st.dictionaries(st.sampled_from(["label", "hashStatus", "caseNumbers", "category"]), JSONISH, max_size=3),
)


@st.composite
def list_texts(draw: st.DrawFn) -> str:
    """Text shaped like each format, with every field able to be wrong."""
    shape = draw(st.sampled_from(["csv", "jsonl", "doc", "te_csv", "te_plain", "any"]))
    if shape == "csv":
        header = draw(
            st.sampled_from(["signal_type,signal", "signal_type,signal,label", "SIGNAL_TYPE , signal", "a,b"])
        )
        rows = draw(st.lists(st.tuples(TYPE, SIGNAL, st.text(max_size=10)).map(",".join), max_size=8))
        return "\n".join([header, *rows])
    if shape in ("jsonl", "doc"):
        records = draw(st.lists(st.one_of(RECORD, JSONISH), max_size=8))
        if shape == "doc":
            return json.dumps(draw(st.sampled_from([{"count": len(records), "hashRecords": records}, records])))
        return "\n".join(json.dumps(r) for r in records)
    if shape == "te_csv":
        rows = draw(
            st.lists(st.tuples(st.text(max_size=5), TYPE, SIGNAL, st.text(max_size=5)).map(",".join), max_size=8)
        )
        return "\n".join(["collab,signal_type,signal_str,category,tags", *rows])
    if shape == "te_plain":
        return "\n".join(draw(st.lists(st.tuples(TYPE, SIGNAL).map(" ".join), max_size=8)))
    return draw(ANY_UNICODE)


def _check(text: str, fmt: str) -> None:
    for item in parse(text, fmt):
        assert isinstance(item, HashRow | RowError), item
        if isinstance(item, RowError):
            assert item.line >= 1 and item.message
            continue
        assert item.line >= 1
        kind = signals.get(item.signal_type)
        assert kind.validate(item.signal) == item.signal, "a yielded signal is already normalised"
        assert item.label is None or isinstance(item.label, str)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(text=list_texts())
def test_hash_lists_never_raise_and_every_row_validates(fmt: str, text: str) -> None:
    _check(text, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(text=ANY_UNICODE)
def test_hash_lists_never_raise_on_any_unicode(fmt: str, text: str) -> None:
    _check(text, fmt)


def test_unknown_format_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="unknown hash-list format"):
        parse("", "xml")


# Found by this fuzzing and fixed: these used to raise from inside the parser instead of becoming
# RowErrors (csv field limit, bare CR, recursion depth).
HOSTILE = {
    "csv_field_over_128KiB": ("csv", "signal_type,signal\nsha256," + "a" * 140_000),
    "te_csv_field_over_128KiB": ("threatexchange", "collab,signal_type,signal_str\nc,pdq," + "a" * 140_000),
    "csv_bare_cr_in_field": ("csv", "signal_type,signal\nsha256,ab\rcd"),
    "te_csv_bare_cr_in_field": ("threatexchange", "collab,signal_type,signal_str\nc,pdq,ab\rcd"),
    "jsonl_deep_nesting": ("jsonl", "[" * 100_000 + "]" * 100_000),
    "stopncii_deep_nesting": ("stopncii", "[" * 100_000 + "]" * 100_000),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_lists_become_row_errors(name: str) -> None:
    fmt, text = HOSTILE[name]
    items = list(parse(text, fmt))
    assert items and all(isinstance(i, RowError) for i in items)
