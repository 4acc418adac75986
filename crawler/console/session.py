"""Console sign-in: the token becomes an HttpOnly session cookie; CSRF tokens guard every form.

The session cookie holds the API token itself because the HTTP core already authenticates it as a
bearer token (one check for the API and the console, revocation takes effect at once). It is
HttpOnly (no script can read it), SameSite=Strict, Path=/, and Secure whenever the request came over
HTTPS. The sign-in form has its own CSRF token bound to a pre-session nonce cookie, so another site
cannot sign a victim in under the attacker's token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from crawler.api.app import STORE
from crawler.investigate.access import SESSION_COOKIE, csrf_key, csrf_token
from crawler.tokens import Principal, TokenRepo

LOGIN_NONCE_COOKIE = "tgwatch_login"
SESSION_MAX_AGE = 12 * 3600


async def current(request: web.Request) -> tuple[Principal, str] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    who = await TokenRepo(request.app[STORE]).authenticate(token)
    return (who, token) if who is not None else None


def set_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=request.secure, httponly=True, samesite="Strict")


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
        secure=request.secure,
        samesite="Strict",
    )


def _login_token(request: web.Request, nonce: str) -> str:
    return hmac.new(csrf_key(request), f"login:{nonce}".encode(), hashlib.sha256).hexdigest()


def login_csrf_valid(request: web.Request, presented: str) -> bool:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
    return bool(nonce and presented) and hmac.compare_digest(_login_token(request, nonce or ""), presented)


def session_csrf(request: web.Request, token: str) -> str:
    return csrf_token(request, token)
