"""Jinja2 rendering: one environment per app, autoescaping on, UTF-8 HTML responses.

Every page gets ``t(msgid, **params)`` (the words in the reader's language, from the gettext
catalogs of ``foundation/i18n.py``), ``label(group, value)`` (a stored value such as a status, in
words when the catalog has it), ``lang`` and ``tz``; templates never hold bare English text. The
language is the one the person chose (kept on the server-side session), else the browser's
``Accept-Language``, else English. Times are shown in the language's zone (``console.timezones``)
with the UTC time on hover; numbers and dates follow the language's conventions (Babel/CLDR).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from babel.dates import format_datetime
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from crawler.api.auth import SESSION_LANG
from crawler.console.alert_words import alert_summary
from crawler.console.problems import Problem, stored
from crawler.routes.context import SETTINGS
from foundation.i18n import LANGUAGES, translated

TEMPLATES = Path(__file__).parent / "templates"
#: request key: a language asked for on a page that has no session yet (the sign-in page)
LANG_CHOICE = web.RequestKey("tgwatch.lang_choice", str)
#: what an unknown time or number is shown as: a visible "no value", never an empty cell
NOTHING = "—"


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
    env.filters["when"] = when
    env.filters["num"] = num
    return env


def as_datetime(value: object) -> datetime | None:
    """A stored time (datetime, ISO string with or without ``Z``, epoch seconds) as an aware UTC datetime."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)


@jinja2.pass_context
def when(context: Any, value: object) -> Markup | str:
    """``<time>`` in the reader's zone and locale, with the UTC time as its title (shown on hover)."""
    at = as_datetime(value)
    if at is None:
        return str(value) if value not in (None, "") else NOTHING
    lang = context.get("lang", "en")
    zone = context.get("tz", "UTC")
    shown = format_datetime(at, format="medium", tzinfo=ZoneInfo(zone), locale=lang)
    if zone != "UTC":
        shown = f"{shown} ({format_datetime(at, 'zzzz', tzinfo=ZoneInfo(zone), locale=lang)})"
    iso = at.isoformat().replace("+00:00", "Z")
    utc = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, utc, shown)


@jinja2.pass_context
def num(context: Any, value: object) -> str:
    """A count or measure in the reader's locale (``12,345``); anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value) if value not in (None, "") else NOTHING
    return format_decimal(value, locale=context.get("lang", "en"))


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
    """The language of this request's pages: the session's choice, a sign-in page's choice, the browser's."""
    for key in (SESSION_LANG, LANG_CHOICE):
        chosen = request.get(key)
        if isinstance(chosen, str) and chosen in LANGUAGES:
            return chosen
    return page_language(request.headers.get("Accept-Language"))


def page_zone(request: web.Request, lang: str) -> str:
    zones = request.app[SETTINGS].console.timezones
    return zones.get(lang) or zones.get(PAGE_DEFAULT_LANGUAGE) or "UTC"


def translator(request: web.Request) -> dict[str, Any]:
    """Template context: ``t``, ``label``, the request's language and its time zone."""
    lang = request_language(request)

    def t(msgid: str, **params: object) -> Markup:
        # escaped text with escaped parameters, so a parameter may itself be markup (a <time>)
        text = translated(lang, msgid) or translated("en", msgid) or msgid
        return Markup(escape(text)).format(**params) if params else Markup(escape(text))

    def label(group: str, value: object) -> str:
        """A stored value in words (``console.<group>.<value>``), or the value itself when it has none."""
        msgid = f"console.{group}.{value}"
        return translated(lang, msgid) or translated("en", msgid) or str(value)

    here = request.path_qs if request.method == "GET" else "/console/"
    query = {k: v for k, v in request.query.items() if k != "lang"}
    switch = {code: request.path + "?" + urlencode({**query, "lang": code}) for code in LANGUAGES}

    def summary(alert: dict[str, Any]) -> Markup | str:
        """An alert's summary in the reader's language (``crawler.console.alert_words``)."""
        return alert_summary(t, label, alert)

    def problem(error: dict[str, Any] | None) -> Problem | None:
        """A recorded error (a run's) in the reader's language, with its English text as the detail."""
        return stored(error, lang)

    return {"t": t, "label": label, "summary": summary, "problem": problem, "lang": lang,
            "tz": page_zone(request, lang), "here": here, "switch": switch}  # fmt: skip


def render(request: web.Request, template: str, http_status: int = 200, **context: Any) -> web.Response:
    html = environment().get_template(template).render(**{**translator(request), **context})
    response = web.Response(text=html, status=http_status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = request_language(request)
    return response
