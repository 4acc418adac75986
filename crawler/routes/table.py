"""Declared routes: each endpoint states its roles, summary and body model where it is defined.

The OpenAPI document, the auth middleware and the route-enumeration security test all read the same
declarations, so an endpoint cannot exist without saying who may call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from crawler.tokens import Principal, Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    public: bool = False
    query: dict[str, str] = field(default_factory=dict)


class RouteTable:
    """Collects routes from feature modules; ``install`` adds them to an aiohttp app."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        #: ``async fn(app)`` run at server start, where feature modules build their services
        self.startup: list[Callable[[web.Application], Awaitable[None]]] = []

    def add(
        self,
        method: str,
        path: str,
        *,
        roles: set[Role] | frozenset[Role] | None = None,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        public: bool = False,
        query: dict[str, str] | None = None,
    ) -> Callable[[Handler], Handler]:
        if not public and not roles:
            raise ValueError(f"{method} {path}: a non-public route must name its roles")

        def register(handler: Handler) -> Handler:
            granted = frozenset(roles or ()) | ({Role.ADMIN} if roles else frozenset())
            self.routes.append(
                Route(method.upper(), path, handler, granted, summary, tag, body, public, dict(query or {}))
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _bind(route))
        app.on_startup.extend(self.startup)

    def find(self, method: str, resource_path: str) -> Route | None:
        for route in self.routes:
            if route.method == method and route.path == resource_path:
                return route
        return None


def _bind(route: Route) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await route.handler(request)

    handler.__name__ = route.handler.__name__
    handler.tgwatch_route = route  # type: ignore[attr-defined]
    return handler


def route_of(request: web.Request) -> Route | None:
    handler = request.match_info.handler
    return getattr(handler, "tgwatch_route", None)


def principal(request: web.Request) -> Principal:
    """The authenticated caller (set by the auth middleware; public routes have none)."""
    value = request.get(PRINCIPAL)
    if not isinstance(value, Principal):
        raise web.HTTPUnauthorized(reason="authentication required")
    return value


#: deepest nesting of arrays and objects a request body may have (ours need a handful)
MAX_JSON_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped), without recursing."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b"", raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The one JSON reader for request bodies: any problem is a ValueError with a clear message."""
    if json_depth(raw) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except RecursionError:  # unreachable after the depth check; kept so no body can ever be a 500
        raise ValueError(f"nested deeper than {max_depth} levels") from None


async def json_body(request: web.Request, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body; any problem is a clear 400, never a 500."""
    try:
        raw = parse_json(await request.read())
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=_problem(400, f"body is not valid JSON: {exc}"), content_type="application/json"
        ) from None
    try:
        return model.model_validate(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=_problem(400, f"invalid body: {exc}"), content_type="application/json") from None


def _problem(status: int, detail: str) -> str:
    return json.dumps({"status": status, "error": detail})
