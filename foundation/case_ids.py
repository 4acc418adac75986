"""The one rule a case id must follow, checked at every door (CLI, API, console, takedowns, grants).

A case id ends up in ledger payloads, query filters, URLs and download names. Restricting it to a
short ASCII word with no path separators, no leading dot and no control or look-alike characters
means none of those places can be steered by it (``..%2F`` decoded to ``../`` is simply invalid).
"""

from __future__ import annotations

import re

from foundation.errors import TgwatchError

#: first an ASCII letter or digit, then up to 63 letters, digits, ``.``, ``_`` or ``-``
CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CASE_ID_RULE = "1-64 characters: ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"


class InvalidCaseId(TgwatchError):
    kind = "invalid_case_id"


def validate_case_id(value: object) -> str:
    """``value`` unchanged when it is a valid case id; ``InvalidCaseId`` naming the rule otherwise."""
    if not isinstance(value, str) or CASE_ID_RE.fullmatch(value) is None:
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise InvalidCaseId(f"invalid case id {shown}: {CASE_ID_RULE}")
    return value


def is_case_id(value: object) -> bool:
    return isinstance(value, str) and CASE_ID_RE.fullmatch(value) is not None
