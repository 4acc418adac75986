"""Small readers of t.me preview markup, shared by the message and page parsers.

Why a module of their own: the bubble walk and the page/header parser read the same things (class
tokens, ``background-image`` URLs, inline sizes, visible text with ``<br>`` kept as newlines), and
they must read them identically. All are pure and never raise on odd markup; they return ``None``
or an empty value instead, so a strange element costs one field, not the message.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

_URL_RE = re.compile(r"url\((['\"]?)(.*?)\1\)")
_WIDTH_RE = re.compile(r"(?:^|;)\s*width:\s*([\d.]+)px")
_PAD_RE = re.compile(r"padding-top:\s*([\d.]+)%")
_WS_NL_RE = re.compile(r"[ \t\r\f\v]*\n\s*")
_SPACE_AROUND_NL = re.compile(r" *\n *")
_BR_MARK = "\ue000"  # private-use char: never in page text, legal in XML


def parse_duration(text: str | None) -> float | None:
    """``"0:09"`` → 9.0, ``"1:02:03"`` → 3723.0."""
    if not text:
        return None
    total = 0.0
    try:
        for part in text.strip().split(":"):
            total = total * 60 + float(part)
    except ValueError:
        return None
    return total


def class_tokens(el: Any) -> list[str]:
    cls = el.get("class")
    return cls.split() if cls else []


def background_url(style: str | None) -> str | None:
    if not style:
        return None
    m = _URL_RE.search(style)
    if not m:
        return None
    url = m.group(2)
    return "https:" + url if url.startswith("//") else url


def style_dims(style: str | None, ratio_style: str | None) -> tuple[int | None, int | None]:
    width = height = None
    if style and (m := _WIDTH_RE.search(style)):
        width = round(float(m.group(1)))
    if width is not None and ratio_style and (p := _PAD_RE.search(ratio_style)):
        height = round(width * float(p.group(1)) / 100)
    return width, height


def visible_text(el: Any) -> str:
    """Visible text of an element: ``<br>`` → newline, pretty-print whitespace collapsed."""
    for br in el.iter("br"):
        br.tail = _BR_MARK + (br.tail or "")
    raw = "".join(el.itertext())
    if "\n" in raw:  # only pretty-printed saves have raw newlines; t.me writes <br/>
        raw = _WS_NL_RE.sub(" ", raw)
        raw = raw.replace(_BR_MARK, "\n")
        raw = _SPACE_AROUND_NL.sub("\n", raw)
    else:
        raw = raw.replace(_BR_MARK, "\n")
    return raw.strip()


def inner_html(el: Any) -> str:
    outer = etree.tostring(el, encoding="unicode", with_tail=False)
    start = outer.find(">") + 1
    end = outer.rfind("</")
    return (outer[start:end] if end >= start else outer[start:]).strip()


def outer_html(el: Any) -> str:
    return etree.tostring(el, encoding="unicode", with_tail=False)


def find_class(el: Any, cls: str) -> Any | None:
    for node in el.iter():
        c = node.get("class")
        if c and cls in c.split():
            return node
    return None


def find_any_class(el: Any, *classes: str) -> Any | None:
    for cls in classes:
        node = find_class(el, cls)
        if node is not None:
            return node
    return None


def post_id_from_link(href: str | None) -> int | None:
    """``https://t.me/name/123`` or ``…/123?single`` → 123."""
    if not href:
        return None
    path = urlsplit(href).path.rstrip("/")
    tail = path.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def username_from_link(href: str | None) -> str | None:
    if not href:
        return None
    parts = [p for p in urlsplit(href).path.split("/") if p]
    if parts and parts[0] == "s":
        parts = parts[1:]
    return parts[0] if parts and not parts[0].startswith("+") else None


def size_bytes(text: str | None) -> int | None:
    if not text:
        return None
    m = re.match(r"^\s*([\d.,]+)\s*(B|KB|MB|GB|TB)\s*$", text, re.IGNORECASE)
    if not m:
        return None
    mult = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}[m.group(2).upper()]
    return round(float(m.group(1).replace(",", ".")) * mult)
