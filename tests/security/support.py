"""Shared pieces of the HTTP security tests: an app on a real local server, tokens, console sign-in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

import config
from config import Settings
from crawler.api.app import FailureLimiter, build_app, runner_args
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store

Client = TestClient[web.Request, web.Application]
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-zA-Z_-]+)"')


def settings(tmp_path: Any, **overrides: Any) -> Settings:
    return config.load(data_dir=tmp_path, **overrides)


@asynccontextmanager
async def serve(store: Store, cfg: Settings, *, limiter: FailureLimiter | None = None) -> AsyncIterator[Client]:
    """The whole app behind the runner options ``tgwatch serve`` uses."""
    app = build_app(store, cfg, ALL_MODULES, limiter=limiter)
    server = TestServer(app)
    await server.start_server(**runner_args(cfg))  # (TestServer's own keyword arguments go nowhere)
    async with TestClient(server) as client:
        yield client


async def token(store: Store, cfg: Settings, role: Role, name: str | None = None) -> str:
    value, _ = await TokenRepo(store, server_secret(cfg)).create(name or f"t-{role.value}", role)
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def sign_in(client: Client, tok: str, headers: dict[str, str] | None = None) -> ClientResponse:
    form = await client.get("/console/login", headers=headers)
    match = CSRF_FIELD.search(await form.text())
    assert match is not None
    # sent explicitly: the client's jar would keep a Secure cookie back over plain-HTTP test servers
    nonce = {"Cookie": f"tgwatch_login={form.cookies['tgwatch_login'].value}"}
    return await client.post(
        "/console/login",
        data={"token": tok, "csrf_token": match.group(1), "next": "/console/"},
        headers={**(headers or {}), **nonce},
        allow_redirects=False,
    )


async def page_csrf(client: Client, path: str) -> str:
    """The session's CSRF token, as a signed-in console page embeds it."""
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status)
    match = CSRF_FIELD.search(await resp.text())
    assert match is not None
    return match.group(1)
