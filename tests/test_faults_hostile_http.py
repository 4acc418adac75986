"""Fault injection: a hostile HTTP server against the real channel spider and the real media fetcher.

Every hostile answer must end in bounded time and bounded memory with a clear, recorded error:
drip-fed bodies, lying ``Content-Length``, redirect loops, a gzip bomb (1 GiB of zeros in about
1 MiB on the wire) and pagination that never ends (``?before=`` pages whose ids repeat or grow).
The server is a plain aiohttp app in this file; the crawl is ``crawl_channel`` with ``base_url``
pointing at it, and media go through ``fetch_media``. Each crawl runs under ``asyncio.wait_for``
only as a guard against hanging the suite; the assertions are about what was recorded.
"""

from __future__ import annotations

import asyncio
import resource
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import config
from crawler.crawl_web import CrawlSummary, StoreRunRecorder, crawl_channel
from crawler.hashing.fetch import FetchedMedia, FetchLimits
from crawler.hashing.fetch import fetch_media as guarded_fetch
from crawler.ingest import Ingest
from foundation.errors import SourceError, TooLarge, Undecodable
from storage.client import Store
from tests.media_host import LOOPBACK_POLICY
from tests.test_tme_spider import render_page


async def fetch_media(session: aiohttp.ClientSession, url: str, limits: FetchLimits | None = None) -> FetchedMedia:
    """The test servers are on loopback, which the egress guard allows only when named."""
    return await guarded_fetch(session, url, limits, policy=LOOPBACK_POLICY)


ENDLESS = ("samepages", "risingpages", "cyclepages")
ENDLESS_CAP = 40  # after this many pages the endless server ends its channel itself
GUARD_SECONDS = 90.0  # a hang guard only; a healthy run ends in a few seconds
BOMB_CHUNK = 16 * 1024 * 1024
BOMB_REPEATS = 64  # 64 x 16 MiB = 1 GiB inflated
FAST: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": False,
    "TGWATCH_RETRY_BASE_DELAY": 0.05,
    "TGWATCH_RETRY_MAX_DELAY": 0.2,
    "DOWNLOAD_TIMEOUT": 2.0,
    "RETRY_TIMES": 1,
}


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A valid gzip stream inflating to 1 GiB of zeros, built by streaming compression.

    One 16 MiB block of zeros is deflated and closed with a full flush (byte-aligned, no history
    shared with what follows), so the same compressed block may be repeated; the trailer carries
    the CRC-32 and length of the whole inflated stream, so decoders accept it as genuine.
    """
    zeros = bytes(BOMB_CHUNK)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty final block
    crc = 0
    for _ in range(BOMB_REPEATS):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc & 0xFFFFFFFF, (BOMB_CHUNK * BOMB_REPEATS) & 0xFFFFFFFF)
    return header + block * BOMB_REPEATS + tail + trailer


def test_the_bomb_is_genuine() -> None:
    """The bomb really inflates to 1 GiB (checked in bounded memory, chunk by chunk)."""
    bomb = gzip_bomb()
    assert len(bomb) < 4 * 1024 * 1024
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total, view = 0, memoryview(bomb)
    for start in range(0, len(bomb), 65536):
        data = view[start : start + 65536]
        while data:
            total += len(d.decompress(data, 64 * 1024 * 1024))
            data = d.unconsumed_tail  # type: ignore[assignment]
    total += len(d.flush())
    assert d.eof and total == BOMB_CHUNK * BOMB_REPEATS


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


@dataclass
class Hostile:
    """One aiohttp app, one hostile behaviour per channel name; every request is logged."""

    base_url: str = ""
    hits: list[str] = field(default_factory=list)
    media_hits: list[str] = field(default_factory=list)

    def count(self, prefix: str) -> int:
        return sum(1 for h in self.hits if h.startswith(prefix))

    async def preview(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(request.path_qs)
        before = int(request.query.get("before", "0") or 0) or None
        if name in ENDLESS and self.count(f"/s/{name}") > ENDLESS_CAP:
            # the server gives up first, so a looping spider still ends and the test can fail fast
            return _html(render_page(name, [(1, "the end")], None))
        if name == "samepages":  # every page: the same ids and a "more" link to the same place
            return _html(render_page(name, [(i, f"same {i}") for i in range(10, 15)], 10))
        if name == "risingpages":  # ?before=N answers ids above N: the walk would climb for ever
            low = (before or 100) + 1
            return _html(render_page(name, [(i, f"up {i}") for i in range(low, low + 5)], low))
        if name == "cyclepages":  # two pages pointing at each other
            if before == 20:
                return _html(render_page(name, [(i, f"c {i}") for i in range(15, 20)], 15))
            return _html(render_page(name, [(i, f"c {i}") for i in range(20, 25)], 20))
        if name == "dripfeed":
            return await _drip(request, render_page(name, [(1, "slow")], None).encode())
        if name == "liarpage":
            return await _lying_length(request, render_page(name, [(1, "short")], None).encode())
        if name == "loopypage":
            raise web.HTTPFound(f"/s/{name}")
        if name == "bombpage":
            return await _bomb(request, "text/html; charset=utf-8")
        raise web.HTTPNotFound()

    async def media(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        self.media_hits.append(kind)
        if kind == "bombpage":
            return await _bomb(request, "image/jpeg")
        if kind == "dripfeed":
            return await _drip(request, b"\xff\xd8\xff" + bytes(64))
        if kind == "short":  # promises less than it sends: the extra bytes must not be taken
            resp = web.StreamResponse(headers={"Content-Type": "image/png", "Content-Length": "10"})
            await resp.prepare(request)
            await resp.write(b"\x89PNG\r\n\x1a\n" + bytes(500))
            return resp
        if kind == "pingpong":
            raise web.HTTPFound("/media/pongping")
        if kind == "pongping":
            raise web.HTTPFound("/media/pingpong")
        raise web.HTTPNotFound()


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def _drip(request: web.Request, body: bytes) -> web.StreamResponse:
    """A byte per second; the honest Content-Length makes a reader wait for all of it."""
    resp = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))})
    await resp.prepare(request)
    try:
        for i in range(len(body)):
            await resp.write(body[i : i + 1])
            await asyncio.sleep(1.0)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


async def _lying_length(request: web.Request, body: bytes) -> web.StreamResponse:
    """Promises twice the body, sends the body, hangs up."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Length": str(2 * len(body))}
    )
    await resp.prepare(request)
    await resp.write(body)
    if request.transport is not None:
        request.transport.close()
    return resp


async def _bomb(request: web.Request, content_type: str) -> web.StreamResponse:
    bomb = gzip_bomb()
    resp = web.StreamResponse(
        headers={"Content-Type": content_type, "Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
    )
    await resp.prepare(request)
    try:
        for start in range(0, len(bomb), 65536):
            await resp.write(bomb[start : start + 65536])
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    h = Hostile()
    app = web.Application()
    app.router.add_get("/s/{name}", h.preview)
    app.router.add_get("/media/{kind}", h.media)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    h.base_url = f"http://{host}:{port}"
    try:
        yield h
    finally:
        await runner.cleanup()


async def _crawl(ingest: Ingest, store: Store, hostile: Hostile, name: str, **over: Any) -> CrawlSummary:
    crawl = crawl_channel(
        config.load(log_level="WARNING"),
        ingest,
        name,
        base_url=hostile.base_url,
        recorder=StoreRunRecorder(store),
        scrapy_overrides={**FAST, **over},
    )
    return await asyncio.wait_for(crawl, GUARD_SECONDS)


async def _recorded_errors(store: Store, run_id: str | None) -> list[dict[str, Any]]:
    return await store["errors"].find({"run_id": run_id}).to_list(None)


# ------------------------------------------------------------------------------------- the spider


@pytest.mark.slow
async def test_drip_fed_page_times_out_and_is_recorded(ingest: Ingest, store: Store, hostile: Hostile) -> None:
    summary = await _crawl(ingest, store, hostile, "dripfeed")
    assert summary.status == "partial" and summary.pages == 0
    assert summary.errors and summary.errors[0]["kind"] == "source"
    assert "timeout" in str(summary.errors[0]["message"]).lower()
    assert hostile.count("/s/dripfeed") == 2  # the first try and one retry, then it gives up
    assert await _recorded_errors(store, summary.run_id)


async def test_wrong_content_length_page_is_retried_then_recorded(
    ingest: Ingest, store: Store, hostile: Hostile
) -> None:
    summary = await _crawl(ingest, store, hostile, "liarpage")
    assert summary.status == "partial" and summary.pages == 0
    assert summary.errors and summary.errors[0]["url"] == f"{hostile.base_url}/s/liarpage"
    assert await store["messages"].count_documents({}) == 0  # a half page is not stored as a whole one
    assert await _recorded_errors(store, summary.run_id)


async def test_redirect_loop_on_a_channel_page_is_bounded(ingest: Ingest, store: Store, hostile: Hostile) -> None:
    summary = await _crawl(ingest, store, hostile, "loopypage", REDIRECT_MAX_TIMES=3)
    assert summary.status == "partial" and summary.errors
    assert "redirect" in str(summary.errors[0]["message"]).lower()
    assert hostile.count("/s/loopypage") <= 4 * 2  # bounded by the redirect limit (and one retry at most)


async def test_gzip_bomb_channel_page_is_refused_in_bounded_memory(
    ingest: Ingest, store: Store, hostile: Hostile
) -> None:
    rss_before = _max_rss_mb()
    summary = await _crawl(ingest, store, hostile, "bombpage", DOWNLOAD_MAXSIZE=8 * 1024 * 1024)
    assert summary.status == "partial" and summary.pages == 0 and summary.errors
    assert await _recorded_errors(store, summary.run_id)
    assert "DOWNLOAD_MAXSIZE" in str(summary.errors[0]["message"]), "a clear reason: the inflated size cap"
    assert _max_rss_mb() - rss_before < 512, "the 1 GiB page must never be inflated in memory"


@pytest.mark.parametrize("name", ENDLESS)
async def test_endless_pagination_stops_with_a_recorded_error(
    ingest: Ingest, store: Store, hostile: Hostile, name: str
) -> None:
    summary = await _crawl(ingest, store, hostile, name)
    assert hostile.count(f"/s/{name}") <= 5, f"the walk kept paging: {hostile.hits[:12]}"
    assert summary.errors, "a walk that cannot go down must say so on the run"
    assert await _recorded_errors(store, summary.run_id)


# -------------------------------------------------------------------------------- the media fetcher


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_gzip_bomb_media_is_never_inflated(hostile: Hostile, session: aiohttp.ClientSession) -> None:
    bomb = gzip_bomb()
    rss_before = _max_rss_mb()
    got = await fetch_media(session, f"{hostile.base_url}/media/bombpage", FetchLimits(max_bytes=8 * 1024 * 1024))
    assert got.size == len(bomb) and got.data == bomb  # the wire bytes, as sent: nothing inflated
    assert got.mime != "image/jpeg"  # sniffed from the bytes, not taken from the header
    with pytest.raises(TooLarge):
        await fetch_media(session, f"{hostile.base_url}/media/bombpage", FetchLimits(max_bytes=512 * 1024))
    assert _max_rss_mb() - rss_before < 256


@pytest.mark.slow
async def test_drip_fed_media_hits_the_total_timeout(hostile: Hostile, session: aiohttp.ClientSession) -> None:
    limits = FetchLimits(total_timeout=2.5, read_timeout=2.0)  # each byte arrives within read_timeout
    with pytest.raises(SourceError, match="timed out"):
        await asyncio.wait_for(fetch_media(session, f"{hostile.base_url}/media/dripfeed", limits), GUARD_SECONDS)


async def test_media_content_length_shorter_than_body_takes_only_what_was_declared(
    hostile: Hostile, session: aiohttp.ClientSession
) -> None:
    try:
        got = await fetch_media(session, f"{hostile.base_url}/media/short")
    except (Undecodable, SourceError):
        return  # refusing it is fine too
    assert got.size == 10 and got.data == b"\x89PNG\r\n\x1a\n\x00\x00"


async def test_media_redirect_ping_pong_is_bounded(hostile: Hostile, session: aiohttp.ClientSession) -> None:
    with pytest.raises(SourceError, match="redirects"):
        await fetch_media(session, f"{hostile.base_url}/media/pingpong", FetchLimits(max_redirects=4))
    assert len(hostile.media_hits) <= 6
