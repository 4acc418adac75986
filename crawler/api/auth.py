"""Who is calling, and from where: bearer tokens, console sessions, CSRF, trusted proxies, the limiter.

One middleware decides for every declared non-public route. A request authenticates either with an
``Authorization: Bearer`` token (not forgeable by another site) or with the console session cookie; a
state change authenticated by the cookie must also carry the session's CSRF token in
``X-CSRF-Token``, whatever the route. Failed authentications are counted per client address; a valid
credential always passes, only further failures are answered 429 while an address is over its limit.
The client address and scheme come from ``X-Forwarded-For``/``X-Forwarded-Proto`` only when the
peer is a configured trusted proxy; from anyone else those headers are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from aiohttp import web

# The session and CSRF vocabulary features share lives below the shell (crawler.routes.auth); re-exported here.
from crawler.routes.auth import AUTH as AUTH
from crawler.routes.auth import CSRF_HEADER as CSRF_HEADER
from crawler.routes.auth import SESSION_COOKIE as SESSION_COOKIE
from crawler.routes.auth import SESSION_ID as SESSION_ID
from crawler.routes.auth import AuthContext as AuthContext
from crawler.routes.auth import FailureLimiter as FailureLimiter
from crawler.routes.auth import Network as Network
from crawler.routes.auth import csrf_token as csrf_token
from crawler.routes.auth import csrf_valid as csrf_valid
from crawler.routes.table import PRINCIPAL, Handler, route_of
from crawler.tokens import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: a cookie or token longer than this is not one we issued: refused without a lookup
MAX_CREDENTIAL = 200
#: request key: the page language the signed-in person chose (kept on the server-side session), if any
SESSION_LANG = web.RequestKey("tgwatch.session_lang", str)


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _forwarded(request: web.Request, header: str) -> list[str]:
    return [h.strip() for h in ",".join(request.headers.getall(header, [])).split(",") if h.strip()]


def from_trusted_proxy(request: web.Request) -> bool:
    return _in(request.remote or "", request.app[AUTH].trusted_proxies)


def client_address(request: web.Request) -> str:
    """The address failures are counted against: the peer, or the first untrusted hop a proxy names."""
    remote = request.remote or "?"
    trusted = request.app[AUTH].trusted_proxies
    if not _in(remote, trusted):
        return remote
    for hop in reversed(_forwarded(request, "X-Forwarded-For")):
        if not _in(hop, trusted):
            return hop[:64]
    return remote


def is_secure(request: web.Request) -> bool:
    """Served over TLS: directly, by settings, or (from a trusted proxy) by ``X-Forwarded-Proto``."""
    if request.secure or request.app[AUTH].secure_cookies:
        return True
    proto = _forwarded(request, "X-Forwarded-Proto")
    return bool(proto) and proto[-1].lower() == "https" and from_trusted_proxy(request)


async def session_principal(request: web.Request) -> tuple[Principal, str] | None:
    """The principal and session id of a live console session cookie, or None."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > MAX_CREDENTIAL:
        return None
    ctx = request.app[AUTH]
    doc = await ctx.sessions.find(session_id, idle=ctx.session_idle, longest=ctx.session_max)
    if doc is None:
        return None
    who = await ctx.tokens.by_digest(str(doc["token"]))
    if who is not None and isinstance(doc.get("lang"), str):
        request[SESSION_LANG] = doc["lang"]
    return (who, session_id) if who is not None else None


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _problem(status: int, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"status": status, "error": detail, **extra}, status=status)


def auth_middleware() -> Callable[..., Any]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        if route is None or route.public:
            return await handler(request)
        ctx = request.app[AUTH]
        token = bearer(request)
        session_id: str | None = None
        who: Principal | None = None
        if token is not None:
            who = await ctx.tokens.authenticate(token) if len(token) <= MAX_CREDENTIAL else None
        elif request.cookies.get(SESSION_COOKIE):
            found = await session_principal(request)
            if found is not None:
                who, session_id = found
        if who is None:
            client = client_address(request)
            wait = ctx.limiter.blocked(client)
            ctx.limiter.fail(client)
            if wait:
                response = _problem(429, "too many failed authentications", retry_after=round(wait, 1))
                response.headers["Retry-After"] = str(int(wait) + 1)
                return response
            response = _problem(401, "missing or invalid token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="tgwatch"'
            return response
        if who.role not in route.roles:
            return _problem(403, f"role {who.role.value!r} may not {route.method} {route.path}")
        if session_id is not None:
            if request.method not in SAFE_METHODS and not csrf_valid(
                ctx.csrf_key, session_id, request.headers.get(CSRF_HEADER)
            ):
                return _problem(403, "missing or invalid CSRF token", kind="csrf")
            request[SESSION_ID] = session_id
        request[PRINCIPAL] = who
        return await handler(request)

    return middleware
