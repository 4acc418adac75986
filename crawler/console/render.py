"""Jinja2 rendering: one environment per app, autoescaping on, UTF-8 HTML responses."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

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


def render(request: web.Request, template: str, http_status: int = 200, **context: Any) -> web.Response:
    html = environment().get_template(template).render(**context)
    response = web.Response(text=html, status=http_status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response
