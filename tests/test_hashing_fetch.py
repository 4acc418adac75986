"""fetch_media against a real local aiohttp server: caps, redirects, truncation, sniffing, error mapping."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from crawler.hashing import synthetic as syn
from crawler.hashing.fetch import FetchedMedia, FetchLimits
from crawler.hashing.fetch import fetch_media as guarded_fetch
from foundation.errors import AccessDenied, NotFound, RateLimited, SourceError, TooLarge, Undecodable
from tests.media_host import LOOPBACK_POLICY


async def fetch_media(session: aiohttp.ClientSession, url: str, limits: FetchLimits | None = None) -> FetchedMedia:
    """The test servers are on loopback, which the egress guard allows only when named."""
    return await guarded_fetch(session, url, limits, policy=LOOPBACK_POLICY)


PNG = syn.encode(syn.scene(1, (120, 90)))
JPEG = syn.encode(syn.scene(2, (120, 90)), "JPEG")
BIG = b"\x00" * 300_000


async def _lying_length(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Length": str(len(PNG) + 1000), "Content-Type": "image/png"})
    await resp.prepare(request)
    await resp.write(PNG)
    request.transport.close()  # type: ignore[union-attr]
    return resp


async def _endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})  # chunked, no length
    await resp.prepare(request)
    for _ in range(1000):
        await resp.write(b"\x01" * 65536)
    return resp


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.5)
    return web.Response(body=PNG)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    routes = {
        "/a.png": lambda r: web.Response(body=PNG, content_type="image/png"),
        "/liar.png": lambda r: web.Response(body=JPEG, content_type="image/png"),
        "/doc": lambda r: web.Response(body=b"%PDF-1.7\n...", content_type="text/html"),
        "/big": lambda r: web.Response(body=BIG, content_type="image/jpeg"),
        "/loop": lambda r: web.HTTPFound("/loop"),
        "/hop": lambda r: web.HTTPFound("/a.png"),
        "/gone": lambda r: web.Response(status=404),
        "/private": lambda r: web.Response(status=403),
        "/busy": lambda r: web.Response(status=429, headers={"Retry-After": "7"}),
        "/broken": lambda r: web.Response(status=502),
    }
    for path, handler in routes.items():

        async def wrapped(request: web.Request, handler: Any = handler) -> web.StreamResponse:
            result = handler(request)
            if isinstance(result, web.HTTPException):
                raise result
            return result

        app.router.add_get(path, wrapped)
    app.router.add_get("/truncated.png", _lying_length)
    app.router.add_get("/endless", _endless)
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_fetch_digests_and_sniffs(server: str, session: aiohttp.ClientSession) -> None:
    got = await fetch_media(session, f"{server}/hop")
    assert got.url.endswith("/a.png") and got.data == PNG
    assert got.sha256 == hashlib.sha256(PNG).hexdigest() and got.md5 == hashlib.md5(PNG).hexdigest()
    assert got.mime == "image/png" and got.size == len(PNG)
    liar = await fetch_media(session, f"{server}/liar.png")
    assert liar.mime == "image/jpeg" and liar.declared_type == "image/png"
    doc = await fetch_media(session, f"{server}/doc")
    assert doc.mime == "application/pdf"


async def test_size_cap_declared_and_streamed(server: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(TooLarge, match="Content-Length"):
        await fetch_media(session, f"{server}/big", FetchLimits(max_bytes=100_000))
    with pytest.raises(TooLarge, match="passed the cap"):
        await fetch_media(session, f"{server}/endless", FetchLimits(max_bytes=1_000_000))


async def test_redirect_loop_is_bounded(server: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(SourceError, match="redirects"):
        await fetch_media(session, f"{server}/loop", FetchLimits(max_redirects=3))


async def test_wrong_content_length_is_undecodable(server: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(Undecodable, match="truncated"):
        await fetch_media(session, f"{server}/truncated.png")


async def test_http_errors_map_to_our_tree(server: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(NotFound):
        await fetch_media(session, f"{server}/gone")
    with pytest.raises(AccessDenied):
        await fetch_media(session, f"{server}/private")
    with pytest.raises(RateLimited) as info:
        await fetch_media(session, f"{server}/busy")
    assert info.value.retry_after == 7
    with pytest.raises(SourceError, match="502"):
        await fetch_media(session, f"{server}/broken")
    with pytest.raises(SourceError, match="timed out"):
        await fetch_media(session, f"{server}/slow", FetchLimits(read_timeout=0.2, total_timeout=1.0))
    with pytest.raises(SourceError):
        await fetch_media(session, "http://127.0.0.1:1/nothing-listens-here")
