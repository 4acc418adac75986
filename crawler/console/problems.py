"""What went wrong, in the reader's language: errors raised by code and errors stored by runs.

Why: an exception's ``message`` is English (logs, the command line and the API read it), but a
person reading the console in Korean must read Korean. An error raised with a ``code`` is shown as
the catalog message ``error.<code>`` filled with its ``params``; an error without one is shown as
the sentence of its kind (``error.kind.<kind>``) with the English text kept as the recorded detail
(shown verbatim, folded away), never dropped. Stored errors of crawl runs (``{kind, message}``) are
shown the same way: their kind in words, their text as the detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foundation.errors import TgwatchError
from foundation.i18n import translated

#: parameters whose value is itself a word to translate (``error.field.<value>``), e.g. a form field
WORD_PARAMS = frozenset({"field"})


@dataclass(frozen=True)
class Problem:
    """An error as a person reads it: ``text`` in their language, ``detail`` the recorded English text."""

    text: str
    detail: str | None = None


def _words(lang: str, msgid: str) -> str | None:
    return translated(lang, msgid) or translated("en", msgid)


def coded(lang: str, code: str, params: dict[str, Any]) -> str | None:
    """``error.<code>`` in ``lang`` with ``params`` filled in, or None when the catalogs lack it."""
    text = _words(lang, f"error.{code}")
    if text is None:
        return None
    shown = {k: (_words(lang, f"error.field.{v}") or v) if k in WORD_PARAMS else v for k, v in params.items()}
    try:
        return text.format(**shown)
    except (KeyError, IndexError, ValueError):
        return None  # a catalog entry that wants other parameters: the kind's sentence instead


def kind_text(lang: str, kind: str | None) -> str:
    """The sentence for an error of ``kind`` (``error.kind.<kind>``), else the generic one."""
    return _words(lang, f"error.kind.{kind}") or _words(lang, "error.kind.error") or str(kind)


def describe(exc: TgwatchError, lang: str) -> Problem:
    """The error as the reader reads it (see the module docstring)."""
    if exc.code:
        text = coded(lang, exc.code, exc.params)
        if text is not None:
            return Problem(text)
    return Problem(kind_text(lang, exc.kind), exc.message or None)


def stored(error: dict[str, Any] | None, lang: str) -> Problem | None:
    """A recorded error (``{kind, message, code?, params?}`` from a run) as the reader reads it."""
    if not error:
        return None
    code, params = error.get("code"), error.get("params")
    if isinstance(code, str) and isinstance(params, dict):
        text = coded(lang, code, params)
        if text is not None:
            return Problem(text)
    message = str(error.get("message") or "").strip()
    return Problem(kind_text(lang, str(error.get("kind") or "error")), message or None)
