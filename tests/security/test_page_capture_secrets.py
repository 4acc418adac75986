"""Whole-page captures keep what the server sent, except what carries a session or a credential:
a cookie t.me sets (``Set-Cookie``), the cookie the crawler sends back (``Cookie``), an
``Authorization`` or the egress proxy's ``Proxy-Authorization``. Asset: the crawler's sessions and
the proxy's password; attacker: anyone handed a case bundle or reading the store. Their names are
recorded (``withheld_headers``), their values nowhere: not in the ledger, the stored page, or the
exported bundle and its web archive."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import config
from crawler.crawl_web import crawl_channel
from crawler.evidence.capture import install
from crawler.evidence.cases import Cases
from crawler.evidence.export import Exporter
from crawler.evidence.heads import HeadSigner
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import generate_key, load_private_key, load_public_key
from crawler.ingest import Ingest
from foundation.models import MAX_PAGE_HEADERS, ChannelRef, WebPage
from storage.client import Store
from tests.page_site import SESSION_SECRET, TmeLikeSite

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}


@pytest.fixture
async def site() -> AsyncIterator[TmeLikeSite]:
    async with TmeLikeSite.serve_like_tme() as served:
        yield served


def test_secret_headers_are_left_out_and_named() -> None:
    page = WebPage.of(
        ref=ChannelRef(username="x"), url="https://t.me/s/x", status=200, body=b"<html></html>",
        fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
        headers=[("Content-Type", "text/html"), ("Set-Cookie", "stel_ssid=s1"), ("WWW-Authenticate", "Basic")],
        request_headers=[("User-Agent", "ua"), ("Cookie", "stel_ssid=s1"), ("Proxy-Authorization", "Basic cGFzcw=="),
                         ("Authorization", "Bearer t0k")],
    )  # fmt: skip
    assert page.headers == (("Content-Type", "text/html"),) and page.request_headers == (("User-Agent", "ua"),)
    assert page.withheld == ("authorization", "cookie", "proxy-authorization", "set-cookie", "www-authenticate")
    assert not any(s in page.model_dump_json() for s in ("s1", "cGFzcw", "t0k"))


def test_hostile_headers_are_bounded_not_shortened() -> None:
    many = [(f"X-H{i}", "v") for i in range(MAX_PAGE_HEADERS + 50)] + [("X-Long", "a" * 100_000)]
    page = WebPage.of(ref=ChannelRef(username="x"), url="https://t.me/s/x", status=200, body=b"", headers=many,
                      fetched_at=datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    assert len(page.headers) == MAX_PAGE_HEADERS and all(v == "v" for _, v in page.headers)
    assert "x-long" not in {k.lower() for k, _ in page.headers} and len(page.withheld) <= MAX_PAGE_HEADERS


async def test_the_session_cookie_reaches_neither_ledger_nor_store_nor_bundle(
    site: TmeLikeSite, store: Store, ingest: Ingest, tmp_path: Path
) -> None:
    keys = generate_key(tmp_path / "keys")
    ledger = Ledger(store, signer=HeadSigner(load_private_key(keys.private_path), every_entries=10_000,
                                             every_seconds=3600))  # fmt: skip
    install(ingest, ledger)
    summary = await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.pages > 1
    pages = [json.loads(str(d["payload"])) for d in await ledger.entries()]
    pages = [p for p in pages if p.get("item") == "page"]
    assert pages and all("set-cookie" in p["withheld_headers"] for p in pages)
    # the spiders keep no cookie jar (COOKIES_ENABLED is off), so none is sent back either
    assert all(k.lower() != "cookie" for p in pages for k, _ in p["request"]["headers"])
    for name in await store.db.list_collection_names():
        async for doc in store.db[name].find({}):
            assert SESSION_SECRET not in repr(doc), name

    await Cases(ledger).add("C-COOKIE", channel="korea_now", actor="officer")
    bundle = tmp_path / "C.zip"
    public = load_public_key(keys.public_path.read_bytes())
    await Exporter(ledger, public, signer=ledger.signer).export(
        "C-COOKIE", bundle, actor="officer", role="investigator"
    )
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            assert SESSION_SECRET.encode() not in data, info.filename
            if info.filename.endswith(".wacz"):
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    for member in inner.namelist():
                        raw = inner.read(member)
                        if member.endswith(".gz"):
                            raw = gzip.decompress(raw)
                        assert SESSION_SECRET.encode() not in raw, member
