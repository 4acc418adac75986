"""The aiohttp application: middlewares (errors, security headers, auth), routes, OpenAPI.

Feature modules (health, detection queue, investigator API, console …) each expose
``register(routes: RouteTable)``; ``build_app`` installs them all behind the same middlewares.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web_response
from aiohttp import web

from config import Settings
from crawler.api.auth import AUTH, AuthContext, FailureLimiter, auth_middleware, is_secure, parse_networks
from crawler.evidence.app_key import LEDGER as LEDGER
from crawler.evidence.wiring import audit_log, build_ledger

# What a feature's handlers find on the app lives below the shell (crawler.routes); re-exported here.
from crawler.routes.context import AUDIT as AUDIT
from crawler.routes.context import ROUTES as ROUTES
from crawler.routes.context import SETTINGS as SETTINGS
from crawler.routes.context import STORE as STORE
from crawler.routes.context import json_response as json_response
from crawler.routes.context import problem as problem
from crawler.routes.table import Handler, RouteTable
from crawler.tokens import TokenRepo, server_secret
from foundation import keys
from foundation.errors import AccessDenied, NotAuthorized, NotFound, StoreError, TgwatchError
from foundation.logs import get_logger
from storage.client import Store
from storage.repos.sessions import SessionRepo

log = get_logger(__name__)


#: HTTP status for errors of our tree that are not a plain bad request
STATUS_BY_KIND = {
    "lease_lost": 409, "unknown_job": 404, "quarantine": 404, "rate_limited": 429, "takedown_conflict": 409,
}  # fmt: skip

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


LIMITER: web.AppKey[FailureLimiter] = web.AppKey("failure_limiter", FailureLimiter)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON problem with the right status; nothing leaks a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json" or not request.path.startswith("/api/"):
            raise
        return problem(exc.status, exc.reason if not exc.text or exc.text.startswith(str(exc.status)) else exc.text)
    except NotFound as exc:
        return problem(404, exc.message)
    except (NotAuthorized, AccessDenied) as exc:
        return problem(403, exc.message, kind=exc.kind)
    except StoreError as exc:
        log.error("store unavailable", path=request.path, error=exc.message)
        return problem(503, "store unavailable")
    except TgwatchError as exc:
        return problem(STATUS_BY_KIND.get(exc.kind, 400), exc.message, kind=exc.kind)
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return problem(500, "internal error")


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc, request)
        raise
    _secure(response, request)
    return response


def _secure(response: web.StreamResponse, request: web.Request) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if AUTH in request.app and is_secure(request):
        response.headers.setdefault("Strict-Transport-Security", HSTS)


#: what every response says in ``Server`` (aiohttp would name itself and the Python version)
SERVER_NAME = "tgwatch"
HSTS = "max-age=31536000"


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def _hide_version_banner() -> None:
    """Answers aiohttp writes itself (a malformed request line, before any app code) say it too."""
    aiohttp.web_response.SERVER_SOFTWARE = SERVER_NAME


def body_deadline_middleware(seconds: float) -> Callable[..., Any]:
    """A request body must arrive within ``seconds``: a client that stops half-way is answered 408
    and disconnected instead of holding the connection (headers are bounded by the keep-alive timer,
    see ``runner_args``). Multipart bodies are streamed by their handlers and are not pre-read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists and not request.content_type.startswith("multipart/"):
            try:
                async with asyncio.timeout(seconds):
                    await request.read()
            except TimeoutError:
                response = problem(408, "request body not received in time")
                response.force_close()
                return response
        return await handler(request)

    return middleware


def runner_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner``: a connection that does not complete a request's
    headers within the read timeout (from connect, or from the end of the previous answer) is closed."""
    return {"access_log": None, "keepalive_timeout": settings.api.request_read_timeout}


def openapi(routes: RouteTable, title: str = "tgwatch API") -> dict[str, Any]:
    """OpenAPI 3.1 document generated from the route declarations."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in routes.routes:
        # the HMA-compatible lookup (crawler/media/hma_api.py) keeps HMA's /hma paths: documented too
        if not route.path.startswith(("/api/", "/hma/")) and route.path not in {"/healthz", "/readyz"}:
            continue
        op: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.handler.__name__}",
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "invalid request"},
            },
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(route.path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": desc}
            for name, desc in route.query.items()
        ]
        if params:
            op["parameters"] = params
        if not route.public:
            op["security"] = [{"bearer": []}]
            op["description"] = "Roles: " + ", ".join(sorted(r.value for r in route.roles))
            op["responses"].update({"401": {"description": "no valid token"}, "403": {"description": "wrong role"}})
        if route.body is not None:
            name = route.body.__name__
            schema = route.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
            }
        # OpenAPI paths name parameters only: aiohttp's `{key:regex}` becomes `{key}`
        paths.setdefault(re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path), {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    }


def _path_params(path: str) -> Iterable[str]:
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            yield part[1:-1].split(":")[0]


def register_core(routes: RouteTable) -> None:
    @routes.add("GET", "/healthz", public=True, summary="liveness: the process answers", tag="health")
    async def healthz(request: web.Request) -> web.StreamResponse:
        return json_response({"status": "ok"})

    @routes.add("GET", "/readyz", public=True, summary="readiness: the store answers", tag="health")
    async def readyz(request: web.Request) -> web.StreamResponse:
        try:
            await request.app[STORE].ping()
        except StoreError:
            return problem(503, "store unavailable")
        return json_response({"status": "ready"})

    @routes.add("GET", "/api/v1/openapi.json", public=True, summary="this OpenAPI document", tag="meta")
    async def openapi_doc(request: web.Request) -> web.StreamResponse:
        return json_response(openapi(request.app[ROUTES]))


Registrar = Callable[[RouteTable], None]


def build_app(
    store: Store, settings: Settings, modules: Iterable[Registrar] = (), *, limiter: FailureLimiter | None = None
) -> web.Application:
    """The server. ``limiter`` counts failed authentications per client address (tokens and
    console sign-ins alike); tests that make many unauthenticated calls on purpose pass their own.
    Serve it with ``web.AppRunner(app, **runner_args(settings))``."""
    _hide_version_banner()
    limiter = limiter or FailureLimiter(settings.api.auth_failure_limit, settings.api.auth_failure_window)
    secret = server_secret(settings)
    routes = RouteTable()
    register_core(routes)
    for register in modules:
        register(routes)
    app = web.Application(
        middlewares=[
            security_headers_middleware,
            error_middleware,
            auth_middleware(),
            body_deadline_middleware(settings.api.request_read_timeout),
        ],
        client_max_size=4 * 1024 * 1024,
    )
    app.on_response_prepare.append(_server_header)
    app[AUTH] = AuthContext(
        tokens=TokenRepo(store, secret),
        sessions=SessionRepo(store, secret),
        limiter=limiter,
        csrf_key=keys.load_or_create(None, settings.data_dir, "console-csrf"),
        trusted_proxies=parse_networks(settings.api.trusted_proxies),
        secure_cookies=settings.api.secure_cookies,
        session_idle=settings.console.session_idle_minutes * 60,
        session_max=settings.console.session_max_hours * 3600,
    )
    app[STORE] = store
    app[SETTINGS] = settings
    app[ROUTES] = routes
    app[LIMITER] = limiter
    ledger = build_ledger(store, settings)
    app[LEDGER] = ledger
    app[AUDIT] = audit_log(store, ledger)
    routes.install(app)
    return app
