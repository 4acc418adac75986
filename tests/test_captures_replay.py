"""Web archives opened by a real replay tool: a case bundle built from the sample site, its WACZ's
WARC added to a pywb collection (pywb indexes it) and the WACZ itself (pywb takes our CDXJ), served
by pywb's ``wayback`` on loopback; every stored record replays, in raw mode, byte for byte the
capture the ledger signed, each post at its own URI, and each page the crawl parsed whole, also in
pywb's replay mode.

pywb lives in its own venv (``make replay-deps``: its pins would downgrade tgwatch's werkzeug and
cryptography); ``TGWATCH_PYWB_BIN`` names another ``bin`` directory holding ``wayback`` and
``wb-manager``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

import config
import crawler.evidence.verify_bundle as vb
from crawler.crawl_web import crawl_channel
from crawler.evidence.capture import install
from crawler.evidence.cases import Cases
from crawler.evidence.export import Exporter
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import load_public_key
from crawler.ingest import Ingest
from spiders.sample_site import SampleSite
from storage.client import Store
from tests.captures_support import FAST, signed_ledger

pytestmark = pytest.mark.replay

PYWB_BIN = Path(os.environ.get("TGWATCH_PYWB_BIN") or Path(__file__).resolve().parents[1] / ".venv-replay" / "bin")


@pytest.fixture(scope="module")
def pywb() -> Path:
    if not (PYWB_BIN / "wayback").is_file() or not (PYWB_BIN / "wb-manager").is_file():
        pytest.skip(f"pywb is not installed in {PYWB_BIN} (make replay-deps)")
    return PYWB_BIN


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


@pytest.fixture
def ledger(store: Store, tmp_path: Path) -> Ledger:
    return signed_ledger(store, tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:  # loopback pywb only
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def wayback(pywb: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """pywb's ``wayback`` serving the collections under ``tmp_path/pywb`` on a loopback port."""
    root = tmp_path / "pywb"
    root.mkdir()
    port = free_port()
    with (tmp_path / "wayback.log").open("wb") as log:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(
            [str(pywb / "wayback"), "-b", "127.0.0.1", "-p", str(port), "-t", "2"], cwd=root,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        yield root, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_up(base: str) -> None:
    for _ in range(600):
        try:
            get(base + "/")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("pywb did not come up")


def stored_records(warc: bytes) -> list[tuple[str, str, str, str]]:
    """(type, target URI, 14-digit timestamp, payload SHA-256) of each response/resource record."""
    out = []
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type in ("response", "resource"):
            date = str(record.rec_headers.get_header("WARC-Date"))
            stamp = "".join(ch for ch in date if ch.isdigit())[:14]
            uri = str(record.rec_headers.get_header("WARC-Target-URI"))
            out.append((record.rec_type, uri, stamp, hashlib.sha256(record.content_stream().read()).hexdigest()))
    return out


def index_keys(cdxj: str) -> set[tuple[str, str, str, str]]:
    """(url key, timestamp, offset, length) of each CDXJ line."""
    keys = set()
    for line in cdxj.splitlines():
        if line.strip():
            key, stamp, fields = line.split(" ", 2)
            data = json.loads(fields)
            keys.add((key, stamp, str(data["offset"]), str(data["length"])))
    return keys


async def test_pywb_replays_every_capture_of_a_case_bundle_byte_for_byte(
    pywb: Path, wayback: tuple[Path, str], site: SampleSite, store: Store, ingest: Ingest, ledger: Ledger,
    tmp_path: Path,
) -> None:  # fmt: skip
    install(ingest, ledger)
    summary = await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.messages > 1
    await Cases(ledger).add("C-REPLAY", channel="korea_now", actor="officer")
    public = load_public_key((tmp_path / "keys" / "evidence-ed25519.pub.pem").read_bytes())
    bundle = tmp_path / "C-REPLAY.zip"
    await Exporter(ledger, public, signer=ledger.signer).export("C-REPLAY", bundle, actor="officer", role="analyst")
    assert vb.verify_bundle(bundle).ok
    signed, pages = set(), set()
    for doc in await ledger.entries():
        payload = json.loads(str(doc["payload"]))
        if payload.get("kind") == "capture" and payload.get("raw_sha256"):
            signed.add(str(payload["raw_sha256"]))
        if payload.get("kind") == "capture" and payload.get("item") == "page":  # a whole page as served
            pages.add((str(payload["source_url"]), str(payload["page_sha256"])))
    signed |= {sha for _, sha in pages}

    root, base = wayback
    wacz_path = root / "case.wacz"
    with zipfile.ZipFile(bundle) as zf:
        wacz_path.write_bytes(zf.read(vb.WEB_ARCHIVE))
    with zipfile.ZipFile(wacz_path) as inner:
        warc = inner.read("archive/data.warc.gz")
        our_index = inner.read("indexes/index.cdx").decode()
    (root / "data.warc.gz").write_bytes(warc)
    for args in (["init", "fromwarc"], ["add", "fromwarc", "data.warc.gz"], ["init", "fromwacz"],
                 ["add", "--unpack-wacz", "fromwacz", "case.wacz"]):  # fmt: skip
        run = subprocess.run([str(pywb / "wb-manager"), *args], cwd=root, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr

    # pywb's own index of the WARC finds the records our CDXJ names, at the same offsets
    pywb_index = (root / "collections" / "fromwarc" / "indexes" / "index.cdxj").read_text()
    assert index_keys(pywb_index) == index_keys(our_index)

    records = stored_records(warc)
    posts = [r for r in records if r[0] == "resource" and r[1].startswith("urn:tgwatch:post:")]
    assert len(posts) > 1
    # every page the crawl parsed is a response record at its own URL holding the whole page
    assert {(uri, sha) for kind, uri, _, sha in records if kind == "response"} == pages and len(pages) > 1
    assert all(uri.startswith("urn:tgwatch:") for kind, uri, _, _ in records if kind == "resource")
    by_key = Counter((uri, stamp) for _, uri, stamp, _ in records)
    assert set(by_key.values()) == {1}  # every capture has its own URI and time: none hides another
    assert {sha for *_, sha in records} <= signed

    wait_up(base)
    for collection in ("fromwarc", "fromwacz"):
        for _kind, uri, stamp, sha in records:
            status, body = get(f"{base}/{collection}/{stamp}id_/{uri}")
            assert status == 200, (collection, uri, body[:200])
            assert hashlib.sha256(body).hexdigest() == sha, (collection, uri)
            if _kind == "response":
                assert body.rstrip().endswith(b"</html>") and b"tgme_widget_message" in body
        # and in replay mode (``mp_``: the page pywb frames, its links rewritten into the archive)
        page_uri, page_stamp = next((uri, stamp) for kind, uri, stamp, _ in records if kind == "response")
        status, body = get(f"{base}/{collection}/{page_stamp}mp_/{page_uri}")
        assert status == 200 and b"tgme_widget_message" in body, (collection, page_uri)
        assert f"/{collection}/{page_stamp}".encode() in body  # its links point into the archive
    # a post id the archive does not hold is not served from another record
    missing = posts[0][1].rsplit("/", 1)[0] + "/999999"
    status, _ = get(f"{base}/fromwarc/{posts[0][2]}id_/{missing}")
    assert status == 404


def synthetic_png() -> bytes:
    """A tiny valid PNG made here (2×1 grey pixels)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80\x80"))
        + chunk(b"IEND", b"")
    )


def test_pywb_serves_a_screenshot_and_two_posts_of_one_page_apart(pywb: Path, wayback: tuple[Path, str]) -> None:
    """Two bubbles cut from one fetch and that page's header: three records, three URIs, one request;
    a screenshot replays as the PNG it is, with its type."""
    from datetime import UTC, datetime

    from crawler.captures.warc import Screenshot, WebCapture, write_warc

    at = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    page = "https://t.me/s/korea_now?before=12"
    parts = [(b"<div class=header>korea_now</div>", None), ("<div>첫 글</div>".encode(), "https://t.me/korea_now/10"),
             (b"<div>second post</div>", "https://t.me/korea_now/11")]  # fmt: skip
    caps = [WebCapture(url=page, fetched_at=at, sha256=hashlib.sha256(b).hexdigest(), content=b, post=post)
            for b, post in parts]  # fmt: skip
    png = synthetic_png()
    shot = Screenshot(
        url="https://t.me/korea_now/10?embed=1", taken_at=at, sha256=hashlib.sha256(png).hexdigest(), png=png
    )
    warc = write_warc(caps, [shot])
    kinds = Counter(r.rec_type for r in ArchiveIterator(io.BytesIO(warc)))
    assert kinds["request"] == 1 and kinds["response"] == 1 and kinds["resource"] == 3

    root, base = wayback
    (root / "s.warc.gz").write_bytes(warc)
    for args in (["init", "s"], ["add", "s", "s.warc.gz"]):
        run = subprocess.run([str(pywb / "wb-manager"), *args], cwd=root, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    wait_up(base)
    want = {page: parts[0][0], "urn:tgwatch:post:https://t.me/korea_now/10": parts[1][0],
            "urn:tgwatch:post:https://t.me/korea_now/11": parts[2][0], shot.url: png}  # fmt: skip
    for uri, body in want.items():
        assert get(f"{base}/s/20260301120005id_/{uri}") == (200, body), uri
    with urllib.request.urlopen(f"{base}/s/20260301120005id_/{shot.url}", timeout=30) as reply:  # loopback pywb only
        assert reply.headers["Content-Type"] == "image/png"
