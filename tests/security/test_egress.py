"""The egress guard (``foundation/egress.py``, issue #16 SSRF): what leaves tgwatch, and what may not.

Everything stays on loopback. The allowed test sites are on 127.0.0.1 (named as a crawl's base URL
or in ``http.allow_private_hosts``); a canary server on 127.0.0.2 — loopback too, but named nowhere —
stands for an internal service. Whatever a hostile page does, the canary must see no request, and
the refusal must be recorded.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import config
from crawler.crawl_web import StoreRunRecorder, crawl_channel
from crawler.discovery.run import crawl_aggregator
from crawler.hashing.fetch import fetch_media
from crawler.ingest import Ingest
from crawler.media.fetchers import WebFetcher
from crawler.pipeline import open_pipeline
from crawler.takedowns.models import ItemKind, ItemStatus, ProbeItem
from crawler.takedowns.web import WebProbe
from foundation.egress import EgressPolicy, address_is_public, check_base_url
from foundation.egress_http import GuardedResolver
from foundation.errors import ConfigError, EgressDenied
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from spiders.egress import EgressRefusedAtConnect, reactor_guard
from spiders.settings import build_scrapy_settings
from storage.client import Store
from storage.repos import ErrorRepo, MessageRepo
from tests.media_host import LOOPBACK_HTTP

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "DOWNLOAD_TIMEOUT": 2.0, "RETRY_TIMES": 0}
T0 = datetime(2026, 5, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------- servers


@dataclass
class Canary:
    """An "internal service" on 127.0.0.2 that counts every request it gets."""

    url: str = ""
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    found = Canary()

    async def anything(request: web.Request) -> web.Response:
        found.hits.append(str(request.rel_url))
        return web.Response(text="internal secret")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with TestServer(app, host="127.0.0.2") as server:
        found.url = str(server.make_url("/")).rstrip("/")
        yield found


@dataclass
class Hostile:
    """The allowed site (127.0.0.1): every path redirects where ``target`` says."""

    base_url: str = ""
    target: str = ""
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    site = Hostile()

    async def redirect(request: web.Request) -> web.Response:
        site.hits.append(str(request.rel_url))
        raise web.HTTPFound(site.target + str(request.rel_url))

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    async with TestServer(app, host="127.0.0.1") as server:
        site.base_url = str(server.make_url("/")).rstrip("/")
        yield site


# ---------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "127.0.0.1",
        "127.0.0.2",
        "0.0.0.0",
        "100.64.0.1",  # CGNAT
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.10",  # documentation
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
        "2001::1",  # Teredo
        "not-an-address",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "149.154.167.99", "2606:4700::1111", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    # classification only: nothing here connects anywhere
    assert address_is_public(address)


def test_policy_checks_names_and_literals_against_its_allow_list() -> None:
    policy = EgressPolicy.from_settings(config.load(http=LOOPBACK_HTTP), "http://127.0.0.3:9000/base")
    assert policy.allowed_hosts == {"t.me", "127.0.0.1", "127.0.0.3"}
    assert policy.check_url("http://127.0.0.1:8080/x").allowed
    with pytest.raises(EgressDenied, match=r"non-public address 127\.0\.0\.2"):
        policy.check_url("http://127.0.0.2:8080/x")
    with pytest.raises(EgressDenied):
        policy.check_url("http://[::ffff:7f00:2]/x")
    with pytest.raises(EgressDenied, match="resolves to non-public"):
        policy.check_addresses("rebinding.example", ["93.184.216.34", "10.1.2.3"])
    policy.check_addresses("t.me", ["10.1.2.3"])  # named in settings: anything goes


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_x", "data:text/plain,hi", "s3://b/k", "//x"],
)
def test_only_http_and_https_leave(url: str) -> None:
    policy = EgressPolicy(frozenset({"127.0.0.1", "b", "x"}))
    with pytest.raises(EgressDenied, match=r"scheme|host"):
        policy.check_url(url)
    with pytest.raises(ConfigError):
        check_base_url(url)


def test_scrapy_has_no_file_ftp_s3_or_data_handlers() -> None:
    handlers = build_scrapy_settings(config.load()).getdict("DOWNLOAD_HANDLERS")
    assert all(handlers.get(scheme, "x") is None for scheme in ("file", "ftp", "s3", "data"))


def test_base_url_file_is_refused_by_the_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env["TGWATCH_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "crawl", "channel", "anything", "--base-url", "file:///etc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "only http:// and https://" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "config", "show"],
        capture_output=True,
        text=True,
        env={**env, "TGWATCH_TELEGRAM_WEB_BASE": "file:///etc"},
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "telegram_web_base must be an http" in proc.stderr


# ------------------------------------------------------------------------------- Scrapy crawls


async def test_crawl_redirect_to_an_internal_address_is_refused_and_recorded(
    ingest: Ingest, store: Store, hostile: Hostile, canary: Canary
) -> None:
    hostile.target = canary.url
    summary = await crawl_channel(
        config.load(log_level="WARNING"),
        ingest,
        "chanx",
        base_url=hostile.base_url,
        recorder=StoreRunRecorder(store),
        scrapy_overrides=FAST,
    )
    assert hostile.hits == ["/s/chanx"], "the allowed site was asked"
    assert canary.hits == [], "the redirect target on 127.0.0.2 saw nothing"
    assert summary.status == "partial"
    assert [e["kind"] for e in summary.errors] == ["egress_denied"]
    assert str(summary.errors[0]["url"]).startswith(canary.url)
    recorded = await store["errors"].find({"run_id": summary.run_id}).to_list(None)
    assert [e["kind"] for e in recorded] == ["egress_denied"]


async def test_aggregator_redirect_off_site_is_refused(store: Store, hostile: Hostile, canary: Canary) -> None:
    hostile.target = canary.url
    summary = await crawl_aggregator(config.load(), store, hostile.base_url + "/rooms.html", scrapy_overrides=FAST)
    assert canary.hits == [] and summary.pages == 0
    assert [e["kind"] for e in summary.errors] == ["egress_denied"]
    recorded = await store["errors"].find({"run_id": summary.run_id}).to_list(None)
    assert [e["kind"] for e in recorded] == ["egress_denied"]


async def test_connection_time_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    loop = asyncio.get_running_loop()
    guard = reactor_guard()  # what Twisted resolves with when a crawl connects (DNS rebinding defence)
    with pytest.raises(EgressRefusedAtConnect, match="non-public address 127"):
        await guard.getHostByName("localhost").asFuture(loop)
    guard.hold(frozenset({"localhost"}))  # a running crawl named it
    try:
        assert (await guard.getHostByName("localhost").asFuture(loop)).startswith("127.")
    finally:
        guard.release(frozenset({"localhost"}))
    assert "localhost" not in guard.allowed


async def test_takedown_probe_redirected_to_an_internal_address_is_unknown_not_fetched(
    hostile: Hostile, canary: Canary
) -> None:
    hostile.target = canary.url
    item = ProbeItem(item_id="channel:chanx", kind=ItemKind.CHANNEL, channel="chanx", username="chanx")
    probe = WebProbe(config.load(), base_url=hostile.base_url, scrapy_overrides=FAST)
    [result] = await probe.check([item])
    assert canary.hits == [] and hostile.hits == ["/chanx"]
    assert result.status is ItemStatus.UNKNOWN and result.reason == "fetch_failed"
    assert "non-public address 127.0.0.2" in (result.detail or "")
    with pytest.raises(ConfigError):
        WebProbe(config.load(), base_url="file:///etc")


# ------------------------------------------------------------------------------------- media


def _photo_message(msg_id: int, url: str) -> Message:
    return Message(
        ref=ChannelRef(username="media_lab"),
        msg_id=msg_id,
        source=Source.WEB,
        date=T0,
        text=f"post {msg_id}",
        media=[MediaRef(kind=MediaKind.PHOTO, url=url)],
    )


@pytest.mark.parametrize("how", ["direct", "redirect"])
async def test_media_urls_to_internal_addresses_are_refused_and_recorded(
    store: Store, tmp_path: Path, hostile: Hostile, canary: Canary, how: str
) -> None:
    settings = config.load(data_dir=tmp_path / "data", media={"hash_workers": 1}, http=LOOPBACK_HTTP)
    hostile.target = canary.url
    url = canary.url + "/m/a.png" if how == "direct" else hostile.base_url + "/m/a.png"
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit([_photo_message(1, url)])
        assert result.new == 1, "the message is stored whatever its media did"
        stored = await MessageRepo(store).get("media_lab/1")
        assert stored is not None and stored["media"][0]["error"]["kind"] == "egress_denied"
        errors = await ErrorRepo(store).recent(limit=5)
        assert [e["kind"] for e in errors] == ["egress_denied"]
        assert str(errors[0]["url"]).startswith(canary.url), "the refused hop is named"
    assert canary.hits == []
    assert hostile.hits == ([] if how == "direct" else ["/m/a.png"])


async def test_media_fetch_refuses_names_resolving_to_loopback(canary: Canary) -> None:
    port = canary.url.rsplit(":", 1)[1]
    fetcher = WebFetcher(config.load())
    async with fetcher:
        with pytest.raises(EgressDenied, match="localhost resolves to non-public"):
            await fetcher.fetch(MediaRef(kind=MediaKind.PHOTO, url=f"http://localhost:{port}/m/a.png"))
    # the connector's resolver refuses too, whatever checked (or did not check) the URL before
    resolver = GuardedResolver(EgressPolicy())
    with pytest.raises(EgressDenied):
        await resolver.resolve("localhost", int(port))
    await resolver.close()
    async with aiohttp.ClientSession() as plain:  # a caller's own session: the URL check still holds
        with pytest.raises(EgressDenied):
            await fetch_media(plain, canary.url + "/m/a.png")
    assert canary.hits == []


# ---------------------------------------------------------------------------- aggregator caps


async def test_an_aggregator_page_of_10000_links_gives_at_most_the_caps(store: Store) -> None:
    def page(prefix: str, nxt: str | None) -> str:
        items = "".join(f'<li><a href="https://t.me/{prefix}room{i:05d}">room {i}</a></li>' for i in range(10_000))
        more = f'<a rel="next" href="{nxt}">next</a>' if nxt else ""
        return f"<html><body><ul>{items}</ul>{more}</body></html>"

    pages = {"/p1.html": page("a", "/p2.html"), "/p2.html": page("b", None)}

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    settings = config.load(discovery={"max_new_per_page": 100, "max_new_per_site_run": 150})
    async with TestServer(app, host="127.0.0.1") as server:
        summary = await crawl_aggregator(settings, store, str(server.make_url("/p1.html")), scrapy_overrides=FAST)
    assert summary.pages == 2 and summary.links == 20_000
    assert summary.new == 150, "100 from the first page, then the site's run budget"
    assert summary.capped == 20_000 - 150
    assert await store["candidates"].count_documents({}) == 150
    capped = await store["errors"].find({"run_id": summary.run_id, "kind": "discovery_capped"}).to_list(None)
    assert sorted(int(e["capped"]) for e in capped) == [9_900, 9_950]
    assert all(len(e["sample"]) == 20 for e in capped)
    run = await store["runs"].find_one({"_id": summary.run_id})
    assert run is not None and run["counts"]["capped"] == 19_850
