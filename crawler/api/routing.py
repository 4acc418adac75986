"""Declared routes: each endpoint states its roles, summary and body model where it is defined.

The OpenAPI document, the auth middleware and the route-enumeration security test all read the same
declarations, so an endpoint cannot exist without saying who may call it.
"""

from __future__ import annotations

import json
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


async def json_body(request: web.Request, model: type[BaseModel]) -> Any:
    """Parse and validate a JSON body; any problem is a clear 400, never a 500."""
    try:
        raw = await request.json()
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
