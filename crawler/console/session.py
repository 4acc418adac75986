"""Console sign-in: a token buys a server-side session; the cookie holds only a random session id.

The session (``storage/repos/sessions.py``) ends on sign-out, after ``console.session_idle_minutes``
without a request and after ``console.session_max_hours`` in any case; revoking the token ends it at
once. The cookie is HttpOnly (no script can read it), SameSite=Strict, Path=/, and Secure whenever
the request came over TLS (directly, by settings, or as a trusted proxy says). Every form carries a
CSRF token derived from the session id. The sign-in form has its own CSRF token bound to a
pre-session nonce cookie, so another site cannot sign a victim in under the attacker's token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from crawler.api.auth import AUTH, SESSION_COOKIE, is_secure, session_principal
from crawler.investigate.access import csrf_key, csrf_token
from crawler.tokens import Principal

LOGIN_NONCE_COOKIE = "tgwatch_login"


async def current(request: web.Request) -> tuple[Principal, str] | None:
    """The signed-in principal and session id, or None (no cookie, unknown, expired or revoked)."""
    return await session_principal(request)


async def start_session(
    request: web.Request, response: web.StreamResponse, token: str, *, lang: str | None = None
) -> None:
    """Open a server-side session for a token already authenticated (with the language chosen on the
    sign-in page, if any), and set its cookie."""
    ctx = request.app[AUTH]
    session_id = await ctx.sessions.open(ctx.tokens.digest(token), lang=lang)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(ctx.session_max),
        path="/",
        httponly=True,
        secure=is_secure(request),
        samesite="Strict",
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Sign out: the server forgets the session, so a copied cookie is worthless afterwards."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await request.app[AUTH].sessions.end(session_id)
    clear_session(request, response)


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=is_secure(request), httponly=True, samesite="Strict")


def login_nonce(request: web.Request) -> tuple[str, str]:
    """A fresh pre-session nonce and the sign-in form token derived from it."""
    nonce = secrets.token_urlsafe(24)
    return nonce, _login_token(request, nonce)


def set_login_nonce(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=3600,
        path="/console",
        httponly=True,
        secure=is_secure(request),
        samesite="Strict",
    )


def _login_token(request: web.Request, nonce: str) -> str:
    return hmac.new(csrf_key(request), f"login:{nonce}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def login_csrf_valid(request: web.Request, presented: str) -> bool:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
    if not nonce or not presented:
        return False
    return hmac.compare_digest(_login_token(request, nonce).encode(), presented.encode("utf-8", "replace"))


def session_csrf(request: web.Request, session_id: str) -> str:
    return csrf_token(request, session_id)
