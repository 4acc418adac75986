"""Captures under hostile input: the browser never starts for a URL the egress guard refuses, and
the bundle verifier reports a broken or forged web archive as a FAIL, never a traceback."""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import crawler.evidence.verify_bundle as vb
from crawler.captures.screenshot import find_browser, shoot
from crawler.captures.warc import WebCapture, pages_of, write_wacz, write_warc
from foundation.egress import EgressPolicy
from tests.recording_proxy import proxying


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "http://10.1.2.3/secret?embed=1", "http://[::1]:8080/x", "javascript:alert(1)"],
)
async def test_the_browser_is_never_started_for_a_refused_url(url: str) -> None:
    shot = await shoot(url, EgressPolicy(), seconds=5)
    assert shot.png is None and shot.browser == "" and str(shot.unavailable).startswith("egress refused")


def archive(tmp_path: Path, inner: bytes) -> Path:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(vb.WEB_ARCHIVE, inner)
    return path


def check(path: Path, entries: dict[int, tuple[bytes, object]]) -> str:
    with zipfile.ZipFile(path) as zf:
        try:
            vb._web_archive(zf, entries)
        except vb.BundleError as exc:
            return exc.reason
    return "ok"


def test_broken_or_forged_web_archives_fail_cleanly(tmp_path: Path) -> None:
    html = b"<div>post</div>"
    sha = hashlib.sha256(html).hexdigest()
    cap = WebCapture(url="https://t.me/s/x", fetched_at=datetime(2026, 3, 1, tzinfo=UTC), sha256=sha, content=html)
    entries: dict[int, tuple[bytes, object]] = {0: (b"", {"raw_sha256": sha})}
    good = write_wacz(write_warc([cap]), pages_of([cap]), title="t")
    assert check(archive(tmp_path, good), entries) == "ok"
    assert "not a WACZ" in check(archive(tmp_path, b"not a zip"), entries)

    # a WARC whose payload was changed after the digest was written (datapackage digests redone)
    plain = gzip.decompress(write_warc([cap])).replace(b"<div>post</div>", b"<div>p0st</div>")
    forged = write_wacz(plain, [], title="t")
    assert "WARC-Payload-Digest says" in check(archive(tmp_path, forged), entries)

    # a gzip member cut short
    cut = write_wacz(write_warc([cap])[:-20], [], title="t")
    reason = check(archive(tmp_path, cut), entries)
    assert reason != "ok"


@pytest.mark.skipif(find_browser() is None, reason="no Chromium on this machine (scripts/install-browser.sh)")
async def test_the_browser_ignores_a_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium reads ``http_proxy`` itself; through a proxy its host-resolver fence would not hold (the
    proxy resolves the names), so the browser is told to use none (``--no-proxy-server``)."""

    async def post(_: web.Request) -> web.Response:
        return web.Response(text="<h1>post 7</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/post", post)
    async with TestServer(app, host="127.0.0.1") as server, proxying() as (proxy, proxy_url):
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy_url)
        monkeypatch.setenv("no_proxy", "<-loopback>")  # Chromium would otherwise never proxy loopback
        shot = await shoot(str(server.make_url("/post")), EgressPolicy(frozenset({"127.0.0.1"})), seconds=60)
    assert shot.png is not None, shot.unavailable
    assert proxy.asked == []
