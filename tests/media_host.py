"""A local media host for tests: named files over HTTP, as a CDN serves a channel's pictures."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from foundation.egress import EgressPolicy

#: the test hosts live on loopback: they must be named to the egress guard (``foundation/egress.py``)
LOOPBACK_POLICY = EgressPolicy(frozenset({"127.0.0.1"}))
LOOPBACK_HTTP = {"allow_private_hosts": ["127.0.0.1"]}


class MediaServer:
    """Named files (bytes and content type) with a hit counter per name."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: Counter[str] = Counter()
        self.app = web.Application()
        self.app.router.add_get("/m/{name}", self.serve)

    def add(self, name: str, body: bytes) -> None:
        """Serve ``body`` under ``name``, typed by its first bytes (PNG or JPEG)."""
        self.files[name] = (body, "image/png" if body.startswith(b"\x89PNG") else "image/jpeg")

    async def serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] += 1
        if name not in self.files:
            raise web.HTTPNotFound()
        body, ctype = self.files[name]
        return web.Response(body=body, content_type=ctype)


@pytest.fixture
async def media_server() -> AsyncIterator[tuple[MediaServer, str]]:
    server = MediaServer()
    async with TestServer(server.app, host="127.0.0.1") as srv:
        yield server, str(srv.make_url("/m/"))
