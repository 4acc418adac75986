"""The HTTP core: every declared route enforces auth and roles; headers, limits, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

import config
from crawler.api.app import ROUTES, FailureLimiter, build_app, json_response
from crawler.routes.table import RouteTable, json_body, principal
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store


class Echo(BaseModel):
    text: str
    count: int = 1


def demo_module(routes: RouteTable) -> None:
    @routes.add("GET", "/api/v1/test/investigate", roles={Role.INVESTIGATOR}, summary="test", tag="test")
    async def investigate(request: web.Request) -> web.StreamResponse:
        who = principal(request)
        return json_response({"name": who.name, "role": who.role.value})

    @routes.add("POST", "/api/v1/test/echo", roles={Role.MONITOR}, summary="echo", tag="test", body=Echo)
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await json_body(request, Echo)
        return json_response(body.model_dump())

    @routes.add("GET", "/api/v1/test/boom", roles={Role.MONITOR}, summary="raises", tag="test")
    async def boom(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("secret internals must not leak")


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    # the route walk makes hundreds of unauthenticated calls on purpose: a limiter that allows them
    app = build_app(store, config.load(), [*ALL_MODULES, demo_module], limiter=FailureLimiter(limit=100_000))
    async with TestClient(TestServer(app)) as c:
        yield c


async def _token(store: Store, role: Role) -> str:
    token, _ = await TokenRepo(store, server_secret(config.load())).create(f"t-{role.value}", role)
    return token


async def test_every_declared_route_requires_a_token_and_the_right_role(
    client: TestClient[web.Request, web.Application], store: Store
) -> None:
    routes = client.app[ROUTES]
    tokens = {role: await _token(store, role) for role in Role}
    checked = 0
    for route in routes.routes:
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        if route.public:
            continue
        resp = await client.request(route.method, path)
        assert resp.status == 401, f"{route.method} {route.path} without token -> {resp.status}"
        for role in Role:
            resp = await client.request(route.method, path, headers={"Authorization": f"Bearer {tokens[role]}"})
            if role in route.roles:  # a 403 past the role check is a data-level refusal (e.g. not a case member)
                refused_by_role = resp.status == 403 and (await resp.json()).get("kind") != "not_authorized"
                assert not refused_by_role, f"{role} should pass {route.method} {route.path}"
            else:
                assert resp.status == 403, f"{role} on {route.method} {route.path} -> {resp.status}"
        checked += 1
    assert checked >= 3


async def test_principal_reaches_the_handler_and_admin_may_do_everything(
    client: TestClient[web.Request, web.Application], store: Store
) -> None:
    token = await _token(store, Role.INVESTIGATOR)
    resp = await client.get("/api/v1/test/investigate", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200 and (await resp.json()) == {"name": "t-investigator", "role": "investigator"}
    admin = await _token(store, Role.ADMIN)
    resp = await client.get("/api/v1/test/investigate", headers={"Authorization": f"Bearer {admin}"})
    assert resp.status == 200


async def test_revoked_token_is_refused(client: TestClient[web.Request, web.Application], store: Store) -> None:
    repo = TokenRepo(store, server_secret(config.load()))
    token, doc = await repo.create("leaver", Role.INVESTIGATOR)
    assert await repo.revoke(doc["token_id"]) == 1
    resp = await client.get("/api/v1/test/investigate", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    stored = await store["tokens"].find().to_list(None)
    assert all(token not in str(d) for d in stored), "the token itself is never stored"


async def test_bad_bodies_are_clear_400s(client: TestClient[web.Request, web.Application], store: Store) -> None:
    hdr = {"Authorization": f"Bearer {await _token(store, Role.MONITOR)}"}
    resp = await client.post("/api/v1/test/echo", data=b"{not json", headers=hdr)
    assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
    resp = await client.post("/api/v1/test/echo", json={"count": "many"}, headers=hdr)
    assert resp.status == 400 and "invalid body" in (await resp.json())["error"]
    resp = await client.post("/api/v1/test/echo", json={"text": "안녕", "count": 2}, headers=hdr)
    assert resp.status == 200 and (await resp.json()) == {"text": "안녕", "count": 2}


async def test_unhandled_error_is_a_500_without_details(
    client: TestClient[web.Request, web.Application], store: Store
) -> None:
    hdr = {"Authorization": f"Bearer {await _token(store, Role.MONITOR)}"}
    resp = await client.get("/api/v1/test/boom", headers=hdr)
    assert resp.status == 500
    assert "secret internals" not in await resp.text()


async def test_security_headers_and_health(client: TestClient[web.Request, web.Application]) -> None:
    for path in ("/healthz", "/readyz", "/api/v1/openapi.json"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = await client.get("/api/v1/test/investigate")
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "DENY"


async def test_openapi_lists_routes_with_roles_and_bodies(client: TestClient[web.Request, web.Application]) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    echo = doc["paths"]["/api/v1/test/echo"]["post"]
    assert echo["security"] == [{"bearer": []}] and "monitor" in echo["description"]
    assert doc["components"]["schemas"]["Echo"]["properties"]["text"]["type"] == "string"
    assert "/healthz" in doc["paths"] and "security" not in doc["paths"]["/healthz"]["get"]


async def test_token_guessing_is_rate_limited(store: Store) -> None:
    app = build_app(store, config.load(), [demo_module])
    limiter = FailureLimiter(limit=3, window=60)
    for _ in range(3):
        limiter.fail("10.0.0.1")
    assert limiter.blocked("10.0.0.1") > 0 and limiter.blocked("10.0.0.2") == 0
    async with TestClient(TestServer(app)) as c:  # the app's own limiter: 10 failures a minute
        statuses = []
        for i in range(12):
            resp = await c.get("/api/v1/test/investigate", headers={"Authorization": f"Bearer tgw_guess{i}"})
            statuses.append(resp.status)
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        good = await _token(store, Role.INVESTIGATOR)
        resp = await c.get("/api/v1/test/investigate", headers={"Authorization": f"Bearer {good}"})
        assert resp.status == 200, "a valid token always passes: only further failures are slowed"
