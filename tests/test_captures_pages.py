"""Whole pages: every page the channel spider parsed is kept once (content-addressed, compressed),
its request, status line and headers (minus secrets) signed in a ``capture`` entry ``item: page``;
the web archive writes real request/response records from them, which the bundle verifier checks
against the ledger, header by header."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

import config
import crawler.evidence.verify_bundle as vb
from crawler.captures.warc import HttpPage, archived_headers, pages_of, write_wacz, write_warc
from crawler.crawl_web import crawl_channel
from crawler.evidence.capture import install
from crawler.evidence.cases import Cases
from crawler.evidence.export import Exporter
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import load_public_key
from crawler.ingest import Ingest
from spiders.tme_channel import CrawlMode
from storage.client import Store
from storage.repos.pages import PageRepo
from tests.captures_support import FAST, signed_ledger
from tests.page_site import TmeLikeSite


@pytest.fixture
async def site() -> AsyncIterator[TmeLikeSite]:
    async with TmeLikeSite.serve_like_tme() as served:
        yield served


@pytest.fixture
def ledger(store: Store, tmp_path: Path) -> Ledger:
    return signed_ledger(store, tmp_path)


async def page_entries(ledger: Ledger) -> list[dict[str, Any]]:
    out = []
    for doc in await ledger.entries():
        payload = json.loads(str(doc["payload"]))
        if payload.get("kind") == "capture" and payload.get("item") == "page":
            out.append({**payload, "seq": int(doc["seq"])})
    return out


async def test_every_parsed_page_is_kept_once_with_its_headers_and_signed(
    site: TmeLikeSite, store: Store, ingest: Ingest, ledger: Ledger, tmp_path: Path
) -> None:
    install(ingest, ledger)
    summary = await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.pages > 1
    entries = await page_entries(ledger)
    assert len(entries) == summary.pages  # one entry per page parsed
    # the page entries and the message captures name the same fetches (URL and time)
    fetches = {(e["source_url"], e["captured_at"]) for e in entries}
    for doc in await ledger.entries():
        payload = json.loads(str(doc["payload"]))
        if payload.get("item") == "message":
            assert (payload["source_url"], payload["captured_at"]) in fetches

    repo = PageRepo(store)
    for entry in entries:
        body = await repo.body(entry["page_sha256"])
        assert body is not None and hashlib.sha256(body).hexdigest() == entry["page_sha256"]
        assert len(body) == entry["page_bytes"] and body.rstrip().endswith(b"</html>")  # decoded, whole
        assert entry["channel"] == "korea_now" and "channel:korea_now" in entry["subjects"]
        assert entry["request"]["method"] == "GET" and entry["request"]["url"] == entry["source_url"]
        sent = {k.lower(): v for k, v in entry["request"]["headers"]}
        assert "gzip" in sent["accept-encoding"] and sent["user-agent"]
        response = entry["response"]
        assert (response["status"], response["reason"], response["protocol"]) == (200, "OK", "HTTP/1.1")
        got = {k.lower(): v for k, v in response["headers"]}
        assert got["content-type"].startswith("text/html") and got["x-frame-options"] == "SAMEORIGIN"
        # the body is kept decoded (gzip undone, chunks joined), so these would be false: the HTTP
        # client (Twisted, Scrapy's compression middleware) does not hand them over
        assert "content-encoding" not in got and "transfer-encoding" not in got
        assert "set-cookie" in entry["withheld_headers"]

    # a second crawl of the same pages: new signed fetches, no second copy of an identical body
    stored = await store["web_pages"].count_documents({})
    assert stored == len({e["page_sha256"] for e in entries})
    again = await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url,
                                mode=CrawlMode(pages=summary.pages), scrapy_overrides=FAST)  # fmt: skip
    assert again.pages >= 1 and again.new == 0
    after = await page_entries(ledger)
    assert len(after) == len(entries) + again.pages
    assert {e["page_sha256"] for e in after} == {e["page_sha256"] for e in entries}
    assert await store["web_pages"].count_documents({}) == stored
    doc = await store["web_pages"].find_one({})
    assert doc is not None and len(doc["body"]) < doc["size"]  # compressed


async def test_bundle_archive_replays_the_whole_page_and_the_verifier_checks_its_headers(
    site: TmeLikeSite, store: Store, ingest: Ingest, ledger: Ledger, tmp_path: Path
) -> None:
    install(ingest, ledger)
    await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    entries = {e["page_sha256"]: e for e in await page_entries(ledger)}
    await Cases(ledger).add("C-PAGE", channel="korea_now", actor="officer")
    public = load_public_key((tmp_path / "keys" / "evidence-ed25519.pub.pem").read_bytes())
    bundle = tmp_path / "C-PAGE.zip"
    await Exporter(ledger, public, signer=ledger.signer).export("C-PAGE", bundle, actor="officer", role="investigator")
    check = vb.verify_bundle(bundle)
    assert check.ok, check.summary()
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        with zipfile.ZipFile(io.BytesIO(zf.read(vb.WEB_ARCHIVE))) as inner:
            warc = inner.read("archive/data.warc.gz")
    assert {f"captures/pages/{sha}" for sha in entries} <= names  # the bodies, bound to their entries

    requests: dict[str, Any] = {}
    responses = []
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type == "request" and record.rec_headers.get_header("Tgwatch-Ledger-Seq"):
            requests[str(record.rec_headers.get_header("WARC-Record-ID"))] = record.http_headers
        if record.rec_type == "response":
            body = record.content_stream().read()
            responses.append((record.rec_headers, record.http_headers, body))
    assert len(responses) == len(entries) == len(requests)  # one request and one response per page
    for warc_headers, http, body in responses:
        entry = entries[hashlib.sha256(body).hexdigest()]
        assert warc_headers.get_header("WARC-Target-URI") == entry["source_url"]
        assert warc_headers.get_header("Tgwatch-Ledger-Seq") == str(entry["seq"])
        assert http.get_statuscode() == "200" and http.get_header("Content-Length") == str(len(body))
        assert http.get_header("Transfer-Encoding") is None and http.get_header("Content-Encoding") is None
        assert http.get_header("X-Frame-Options") == "SAMEORIGIN"
        request = requests[str(warc_headers.get_header("WARC-Concurrent-To"))]
        assert request.protocol == "GET" and request.get_header("User-Agent")


def forged(warc: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    """The WARC with a header changed in place (same length, so every record still parses)."""
    assert len(old) == len(new)
    plain = gzip.decompress(warc)
    assert plain.count(old) == count
    return plain.replace(old, new)


def test_verifier_refuses_a_request_or_response_that_differs_from_its_page_entry(tmp_path: Path) -> None:
    body = b"<!DOCTYPE html><html><body>page</body></html>"
    sha = hashlib.sha256(body).hexdigest()
    url = "https://t.me/s/korea_now?before=12"
    headers = [["Content-Type", "text/html; charset=utf-8"], ["Transfer-Encoding", "chunked"]]
    entry = {
        "kind": "capture", "item": "page", "source_url": url, "captured_at": "2026-03-01T12:00:05Z",
        "page_sha256": sha, "request": {"method": "GET", "url": url, "headers": [["User-Agent", "tgwatch-test"]]},
        "response": {"protocol": "HTTP/1.1", "status": 200, "reason": "OK", "headers": headers},
    }  # fmt: skip
    page = HttpPage.from_entry(entry, body, seq=0)
    assert page is not None and page.fetched_at == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert archived_headers(page.headers, len(body))[-1] == ("Content-Length", str(len(body)))
    warc = write_warc([], (), [page])

    def check(data: bytes) -> int:
        path = tmp_path / "b.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(vb.WEB_ARCHIVE, write_wacz(data, pages_of([], (), [page]), title="t"))
        with zipfile.ZipFile(path) as zf:
            return vb._web_archive(zf, {0: (b"", entry)})

    assert check(warc) == 1
    with pytest.raises(vb.BundleError, match="response headers differ"):
        check(forged(warc, b"text/html; charset=utf-8", b"image/png; charset=utf-8"))
    with pytest.raises(vb.BundleError, match="status line"):
        check(forged(warc, b"HTTP/1.1 200 OK", b"HTTP/1.1 404 OK"))
    with pytest.raises(vb.BundleError, match="request line"):
        check(forged(warc, b"GET /s/korea_now", b"PUT /s/korea_now"))
    with pytest.raises(vb.BundleError, match="request headers differ"):
        check(forged(warc, b"tgwatch-test", b"tgwatch-TEST"))
    with pytest.raises(vb.BundleError, match="for another URL"):  # records moved to another URL
        check(forged(warc, b"URI: https://t.me/s/korea_now?before=12", b"URI: https://t.me/s/korea_now?before=13", 2))
