"""Detect the entities Telegram's servers attach to plain text (URLs, mentions, hashtags).

Offsets and lengths are in UTF-16 code units, as in the real API, so conversion code that
slices text by entity is tested against the same arithmetic it meets in production.
"""

from __future__ import annotations

import re
from typing import Any

from telethon.tl import types

_PATTERN = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]])"
    r"|(?P<mention>(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}\b)"
    r"|(?P<hashtag>(?<![\w#])#\w+)"
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def detect_entities(text: str) -> list[Any]:
    """The URL, mention and hashtag entities Telegram would report for ``text``."""
    found: list[Any] = []
    for m in _PATTERN.finditer(text):
        offset = utf16_len(text[: m.start()])
        length = utf16_len(m.group(0))
        kind = m.lastgroup
        if kind == "url":
            found.append(types.MessageEntityUrl(offset=offset, length=length))
        elif kind == "mention":
            found.append(types.MessageEntityMention(offset=offset, length=length))
        else:
            found.append(types.MessageEntityHashtag(offset=offset, length=length))
    return found


def text_url(text: str, label: str, url: str) -> Any:
    """A ``MessageEntityTextUrl`` over the first occurrence of ``label`` in ``text``."""
    start = text.index(label)
    return types.MessageEntityTextUrl(offset=utf16_len(text[:start]), length=utf16_len(label), url=url)
