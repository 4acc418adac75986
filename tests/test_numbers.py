"""Telegram counter forms → exact ints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiders.parsing.numbers import parse_count, parse_counters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("301", 301),
        ("1.2K", 1200),
        ("12.5K", 12500),
        ("3M", 3_000_000),
        ("11.3M", 11_300_000),
        ("1.25B", 1_250_000_000),
        ("2k", 2000),
        ("1,5K", 1500),
        ("11 286 994", 11_286_994),
        ("11\u00a0286\u00a0994", 11_286_994),
        ("97\u202f957", 97_957),
        ("1,234", 1234),
        ("1,234,567", 1_234_567),
        (" 42 ", 42),
        ("no", 0),
        ("No", 0),
    ],
)
def test_parse_count_forms(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.5", "1,5", "K", "1.2X", "12 34", "1,23", "-5", "1.2.3K", "1 2K"])
def test_parse_count_rejects_non_counts(text: str) -> None:
    assert parse_count(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5K members, 300 online", {"members": 12500, "online": 300}),
        ("97 957 members, 4 138 online", {"members": 97957, "online": 4138}),
        ("1,234 members, 56 online", {"members": 1234, "online": 56}),
        ("11 286 994 subscribers", {"subscribers": 11_286_994}),
        ("1 subscriber", {"subscribers": 1}),
        ("1 member", {"members": 1}),
        ("8 122 955 monthly users", {"monthly_users": 8_122_955}),
        ("1 monthly user", {"monthly_users": 1}),
        ("no members", {"members": 0}),
        ("11.3M subscribers", {"subscribers": 11_300_000}),
        ("@BotFather", {}),
        ("", {}),
        ("members", {}),
    ],
)
def test_parse_counters_lines(text: str, expected: dict[str, int]) -> None:
    assert parse_counters(text) == expected


@given(st.integers(min_value=0, max_value=10**12))
def test_exact_forms_round_trip(value: int) -> None:
    spaced = f"{value:,}".replace(",", " ")
    assert parse_count(spaced) == value
    assert parse_count(f"{value:,}") == value
    assert parse_count(str(value)) == value


@given(st.integers(min_value=0, max_value=9999), st.sampled_from(["K", "M", "B"]))
def test_abbreviated_forms_are_exact(tenths: int, suffix: str) -> None:
    multiplier = {"K": 1000, "M": 10**6, "B": 10**9}[suffix]
    text = f"{tenths // 10}.{tenths % 10}{suffix}"
    assert parse_count(text) == tenths * multiplier // 10


@given(st.text(max_size=60))
def test_never_raises(text: str) -> None:
    parse_count(text)
    assert isinstance(parse_counters(text), dict)
