"""The console's page decorator: session, role and CSRF checks, answered in HTML.

Why a module of its own: every console page module (``routes``, ``takedowns``) declares its pages
through ``page``, and ``routes`` also registers the takedown pages; with ``page`` here neither has
to import the other late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from crawler.api.auth import AUTH, SESSION_COOKIE, client_address
from crawler.console.problems import describe
from crawler.console.render import render, request_language
from crawler.console.session import current, session_csrf
from crawler.investigate.access import CSRF_FIELD, csrf_valid
from crawler.investigate.pagination import BadQuery
from crawler.routes.table import PRINCIPAL, RouteTable
from crawler.tokens import Principal, Role
from foundation.errors import NotAuthorized, NotFound, TgwatchError
from foundation.i18n import gettext

CONFLICT_KINDS = frozenset({"review_conflict", "takedown_conflict"})

PageHandler = Callable[[web.Request, Principal, dict[str, Any]], Awaitable[web.StreamResponse]]


def safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (no open redirect)."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


def error_page(
    request: web.Request, status: int, message: str, base: dict[str, Any] | None = None, detail: str | None = None
) -> web.Response:
    """The error page: ``message`` in the reader's language, ``detail`` the recorded English text (folded)."""
    context = base or {"who": None, "csrf": ""}
    return render(request, "error.html", status, status=status, message=message, detail=detail, **context)


def problem_page(request: web.Request, status: int, exc: TgwatchError, base: dict[str, Any]) -> web.Response:
    problem = describe(exc, request_language(request))
    return error_page(request, status, problem.text, base, problem.detail)


def page(
    routes: RouteTable, method: str, path: str, roles: frozenset[Role], summary: str
) -> Callable[[PageHandler], PageHandler]:
    def register(handler: PageHandler) -> PageHandler:
        @routes.add(method, path, public=True, summary=f"console: {summary}", tag="console")
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = await current(request)
            if session is None:
                if request.cookies.get(SESSION_COOKIE):  # a stale or forged cookie counts as a failure
                    request.app[AUTH].limiter.fail(client_address(request))
                if method == "GET":
                    raise web.HTTPSeeOther("/console/login?" + urlencode({"next": request.path_qs}))
                return error_page(request, 401, gettext(request_language(request), "console.error.session_ended"))
            who, token = session
            base = {"who": who, "csrf": session_csrf(request, token)}
            if who.role not in roles:
                lang = request_language(request)
                role = gettext(lang, f"console.role.{who.role.value}")
                return error_page(request, 403, gettext(lang, "console.error.role", role=role), base)
            if method != "GET":
                form = await request.post()
                if not csrf_valid(request, token, str(form.get(CSRF_FIELD, ""))):
                    return error_page(request, 403, gettext(request_language(request), "console.error.csrf"), base)
            request[PRINCIPAL] = who
            try:
                return await handler(request, who, base)
            except BadQuery as exc:
                return problem_page(request, 400, exc, base)
            except NotFound as exc:
                return problem_page(request, 404, exc, base)
            except NotAuthorized as exc:  # e.g. a case this investigator is not a member of
                return problem_page(request, 403, exc, base)
            except TgwatchError as exc:  # e.g. a review conflict, a missing authorization
                return problem_page(request, 409 if exc.kind in CONFLICT_KINDS else 400, exc, base)

        wrapped.__name__ = f"console_{handler.__name__}"
        return handler

    return register
