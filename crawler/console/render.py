"""Jinja2 rendering: one environment per app, autoescaping on, UTF-8 HTML responses.

Every page gets ``t(msgid, **params)`` (the words in the reader's language, from the gettext
catalogs of ``foundation/i18n.py``) and ``lang``; templates never hold bare English text.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from foundation.i18n import LANGUAGES, gettext

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["qs"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    env.filters["short"] = lambda value, n=12: (str(value)[:n] + "…") if value and len(str(value)) > n else value
    env.filters["when"] = lambda value: str(value).replace("T", " ").replace("Z", " UTC") if value else ""
    return env


#: pages speak English unless the reader chose a language or the browser prefers one we have a catalog for
PAGE_DEFAULT_LANGUAGE = "en"


def page_language(header: str | None) -> str:
    """The first language of ``Accept-Language`` (by q-value) we have a catalog for, else English."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    for negative_q, _, lang in sorted(ranked):
        if negative_q < 0 and lang in LANGUAGES:
            return lang
    return PAGE_DEFAULT_LANGUAGE


def request_language(request: web.Request) -> str:
    """The language of this request's pages."""
    return page_language(request.headers.get("Accept-Language"))


def translator(request: web.Request) -> dict[str, Any]:
    """Template context: ``t(msgid, **params)`` in the request's language, and that language."""
    lang = request_language(request)

    def t(msgid: str, **params: object) -> str:
        return gettext(lang, msgid, **params)

    return {"t": t, "lang": lang}


def render(request: web.Request, template: str, http_status: int = 200, **context: Any) -> web.Response:
    html = environment().get_template(template).render(**{**translator(request), **context})
    response = web.Response(text=html, status=http_status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response
