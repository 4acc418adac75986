"""Telegram's counter forms ("1.2K", "11 286 994", "1,234", "12.5K members, 300 online") as ints.

Why a module of its own: the profile page, the ``/s/`` channel page and the post widgets all print
counts, each in one of two styles — exact with thousands separators (``11 286 994``, ``1,234``,
often with a no-break or thin space) or abbreviated (``1.2K``, ``11.3M``). One exact parser keeps
them from drifting apart.

Rules (exact, no floats):

* thousands separators are spaces (any Unicode space) and commas between 3-digit groups;
* ``.`` is only ever a decimal point, and so is ``,`` when a K/M/B suffix follows and the group
  after it is not 3 digits (``1,5K`` = 1500);
* K/M/B multiply by 10³/10⁶/10⁹; the result is truncated to an int (the page already rounded);
* a fraction without a suffix (``1.5``) is not a count → ``None``;
* ``no`` is zero (``no members``).
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["parse_count", "parse_counters"]

_SPACE = r"[\s\u00a0\u2007\u2009\u202f]"
_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9}
_NUMBER = re.compile(
    rf"^(?P<int>\d{{1,3}}(?:(?:{_SPACE}|,)\d{{3}})+|\d+)(?:[.,](?P<frac>\d+))?{_SPACE}*(?P<suf>[KMBkmb])?$"
)
# "12.5K members", "1 subscriber", "8 122 955 monthly users", "no members"
_PAIR = re.compile(
    rf"^(?P<num>no|[\d.,\s\u00a0\u2007\u2009\u202f]*\d{_SPACE}*[KMBkmb]?)(?<!{_SPACE}){_SPACE}+(?P<label>[^\W\d_]+(?:{_SPACE}+[^\W\d_]+)*)$",
    re.IGNORECASE,
)
_SEGMENT_SPLIT = re.compile(r",(?=\s)|[;·•|\n]")
_INVARIANT_LABELS = frozenset({"online"})


def parse_count(text: str) -> int | None:
    """One counter value (``"1.2K"``, ``"11 286 994"``, ``"1,234"``, ``"no"``) → int, else ``None``."""
    value = text.strip()
    if value.lower() == "no":
        return 0
    match = _NUMBER.match(value)
    if match is None:
        return None
    digits = re.sub(rf"(?:{_SPACE}|,)", "", match["int"])
    frac, suffix = match["frac"], match["suf"]
    if suffix is None:
        return None if frac is not None else int(digits)
    amount = Decimal(f"{digits}.{frac}" if frac else digits) * _SUFFIX[suffix.lower()]
    return int(amount)


def _label_key(label: str) -> str:
    """Label → key: "Members" → ``members``, "subscriber" → ``subscribers``, "monthly users" → ``monthly_users``."""
    words = label.lower().split()
    last = words[-1]
    if last not in _INVARIANT_LABELS and not last.endswith("s"):
        words[-1] = last + "s"
    return "_".join(words)


def parse_counters(text: str) -> dict[str, int]:
    """A counters line (``"97 957 members, 4 138 online"``) → ``{"members": 97957, "online": 4138}``.

    Segments that do not read as "<count> <label>" are skipped (callers keep the raw text); a
    label repeated keeps its first value. Labels are lower-cased, plural, words joined by ``_``.
    """
    counters: dict[str, int] = {}
    for segment in _SEGMENT_SPLIT.split(text):
        match = _PAIR.match(segment.strip())
        if match is None:
            continue
        value = parse_count(match["num"])
        if value is None:
            continue
        counters.setdefault(_label_key(match["label"]), value)
    return counters
