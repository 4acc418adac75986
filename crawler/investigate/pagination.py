"""Opaque cursors and page limits.

A cursor carries an offset into the result order plus a fingerprint of the filter it was made for,
so a cursor replayed with other filters is a clear 400 instead of a silently wrong page.

Why offsets and not keyset (``date < last``) cursors: on the embedded store, datetime comparisons run
in its Python tier and cost time in proportion to every matching document, while ``skip`` runs in
SQL. Messages are never removed (deletions only mark them), so an insert between two pages can at
worst repeat an item on the next page; it can never hide one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foundation.errors import TgwatchError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
#: no cursor we issue points further than this (the store's skip is a signed 64-bit value)
MAX_OFFSET = 2**31 - 1
MAX_CURSOR_CHARS = 256


class BadQuery(TgwatchError):
    """A query parameter is invalid: answered as a 400 with the reason."""

    kind = "bad_query"


def fingerprint(params: Mapping[str, Any]) -> str:
    blob = json.dumps({k: v for k, v in sorted(params.items()) if v is not None}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    scope: str

    def next_cursor(self, returned: int) -> str | None:
        """The cursor of the following page, or None when this page was the last."""
        if returned < self.limit:
            return None
        raw = json.dumps({"o": self.offset + returned, "f": self.scope}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise BadQuery(f"limit must be an integer, got {value!r}", code="query.bad_limit",
                       params={"max": MAX_LIMIT}) from None  # fmt: skip
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", code="query.bad_limit",
                       params={"max": MAX_LIMIT})  # fmt: skip
    return limit


def page_of(query: Mapping[str, str], scope_params: Mapping[str, Any], default_limit: int = DEFAULT_LIMIT) -> Page:
    """Read ``limit`` and ``cursor`` from a query string; the cursor must belong to these filters."""
    limit = parse_limit(query.get("limit"), default_limit)
    scope = fingerprint(scope_params)
    cursor = query.get("cursor")
    if not cursor:
        return Page(0, limit, scope)
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadQuery("cursor is not one this server issued", code="query.bad_cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        made_for = str(data["f"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise BadQuery("cursor is not one this server issued", code="query.bad_cursor") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise BadQuery("cursor is not one this server issued", code="query.bad_cursor")
    if made_for != scope:
        raise BadQuery("cursor was issued for other filters; start again without a cursor", code="query.stale_cursor")
    return Page(offset, limit, scope)
