"""Web archives: pages crawled from the sample site become WARC records that round-trip through
warcio and carry the ledger's digests and fetch times; a case bundle's WACZ verifies (with the
bundled stdlib-only verifier too), and a record the ledger does not hold is refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

import config
import crawler.evidence.verify_bundle as vb
from crawler.captures.warc import WebCapture, hex_of_label, pages_of, sha256_label, write_wacz, write_warc
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


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


@pytest.fixture
def ledger(store: Store, tmp_path: Path) -> Ledger:
    return signed_ledger(store, tmp_path)


def read_warc(data: bytes) -> list[tuple[str, str, str, bytes]]:
    """(type, target URI, date, payload) of every record, digests checked by warcio as it reads."""
    out = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests="raise"):
        out.append(
            (
                record.rec_type,
                record.rec_headers.get_header("WARC-Target-URI") or "",
                record.rec_headers.get_header("WARC-Date") or "",
                record.content_stream().read(),
            )
        )
    return out


async def ledger_captures(ledger: Ledger) -> dict[str, dict[str, object]]:
    """raw_sha256 (or a whole page's page_sha256) → the capture entry's payload, for every web
    capture in the ledger."""
    found = {}
    for doc in await ledger.entries():
        payload = json.loads(str(doc["payload"]))
        if payload.get("kind") == "capture" and payload.get("raw_sha256") and payload.get("source_url"):
            found[str(payload["raw_sha256"])] = payload
        if payload.get("kind") == "capture" and payload.get("item") == "page":
            found[str(payload["page_sha256"])] = payload
    return found


async def crawled(site: SampleSite, ingest: Ingest, ledger: Ledger) -> None:
    install(ingest, ledger)
    summary = await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.messages > 0


def stamp(value: object) -> str:
    return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_cli_warc_round_trips_and_matches_the_ledger(
    site: SampleSite, store: Store, ingest: Ingest, ledger: Ledger, embedded_uri: str, tmp_path: Path
) -> None:
    await crawled(site, ingest, ledger)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=store.db.name, TGWATCH_DATA_DIR=str(tmp_path / "d"))
    out = tmp_path / "korea.warc.gz"
    run = subprocess.run(
        [sys.executable, "-m", "crawler", "capture", "warc", "--channel", "korea_now", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = read_warc(out.read_bytes())
    ledger_raw = await ledger_captures(ledger)
    stored = [r for r in records if r[0] in ("response", "resource")]
    requests = {(uri, date) for kind, uri, date, _ in records if kind == "request"}
    assert len(stored) >= len(ledger_raw) > 0 and len(requests) == len([r for r in records if r[0] == "request"])
    posts = [r for r in stored if r[0] == "resource"]
    assert posts and len({(uri, date) for _, uri, date, _ in posts}) == len(posts)  # one URI per post and time
    for kind, uri, date, payload in stored:
        entry = ledger_raw[hashlib.sha256(payload).hexdigest()]  # every payload is a ledger digest
        if entry["item"] == "page":  # the whole page as the server sent it, at its own URL
            assert kind == "response" and uri == entry["source_url"] and uri.startswith(site.base_url)
            assert payload.rstrip().endswith(b"</html>")
        elif kind == "resource" and entry["item"] == "message":  # a bubble: the post's own URN
            assert uri == f"urn:tgwatch:post:{entry['permalink']}"
        else:  # the channel header cut from a page kept whole: a URN of its own, not the page's URL
            assert kind == "resource" and uri == f"urn:tgwatch:part:{entry['source_url']}"
        assert (str(entry["source_url"]), date) in requests  # the GET it came from
        assert date == stamp(entry["captured_at"])
    assert sum(1 for *_, p in stored if ledger_raw[hashlib.sha256(p).hexdigest()]["item"] == "page") == len(requests)
    responses = stored
    assert any("안녕" in p.decode() or max(p.decode()) >= "\uac00" for *_, p in responses)


async def test_case_bundle_carries_a_wacz_that_verifies_and_a_gap_report(
    site: SampleSite, store: Store, ingest: Ingest, ledger: Ledger, tmp_path: Path
) -> None:
    await crawled(site, ingest, ledger)
    await Cases(ledger).add("C-WEB", channel="korea_now", actor="officer")
    public = load_public_key((tmp_path / "keys" / "evidence-ed25519.pub.pem").read_bytes())
    out = tmp_path / "C-WEB.zip"
    await Exporter(ledger, public, signer=ledger.signer).export("C-WEB", out, actor="officer", role="investigator")
    check = vb.verify_bundle(out)
    assert check.ok, check.summary()
    assert check.web_records > 0 and "web archive" in check.summary()

    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        wacz = zf.read(vb.WEB_ARCHIVE)
        gaps = json.loads(zf.read(vb.GAP_REPORT))
        (tmp_path / "alone").mkdir()
        (tmp_path / "alone" / "verify_bundle.py").write_bytes(zf.read("verify_bundle.py"))
    assert manifest["web_archive"]["sha256"] == hashlib.sha256(wacz).hexdigest()
    assert [c["channel"] for c in gaps["channels"]] == ["korea_now"] and gaps["channels"][0]["held"] > 0
    with zipfile.ZipFile(io.BytesIO(wacz)) as inner:
        assert {"archive/data.warc.gz", "indexes/index.cdx", "pages/pages.jsonl", "datapackage.json"} <= set(
            inner.namelist()
        )
        package = json.loads(inner.read("datapackage.json"))
        for res in package["resources"]:
            assert res["hash"] == "sha256:" + hashlib.sha256(inner.read(res["path"])).hexdigest()
        index = inner.read("indexes/index.cdx").decode().splitlines()
        warc = inner.read("archive/data.warc.gz")
    assert index == sorted(index) and all(" {" in line for line in index)
    first = json.loads(index[0].split(" ", 2)[2])
    assert warc[int(first["offset"]) : int(first["offset"]) + 2] == b"\x1f\x8b"  # a record starts there
    ledger_raw = await ledger_captures(ledger)
    assert all(hashlib.sha256(p).hexdigest() in ledger_raw for kind, _, _, p in read_warc(warc) if kind == "response")

    # the bundled verifier, alone, with nothing of tgwatch importable
    alone = subprocess.run(
        [sys.executable, "-I", "verify_bundle.py", str(out)], cwd=tmp_path / "alone", capture_output=True, text=True
    )
    assert alone.returncode == 0 and "web archive" in alone.stdout, alone.stderr

    # a WACZ swapped for another: caught by its digest
    swapped = tmp_path / "swapped.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(swapped, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\0" if info.filename == vb.WEB_ARCHIVE else data)
    bad = vb.verify_bundle(swapped)
    assert not bad.ok and bad.item == vb.WEB_ARCHIVE


def test_a_record_the_ledger_does_not_hold_is_refused(tmp_path: Path) -> None:
    html = b"<div>not in any ledger entry</div>"
    sha = hashlib.sha256(html).hexdigest()
    cap = WebCapture(url="https://t.me/s/x", fetched_at=datetime(2026, 3, 1, tzinfo=UTC), sha256=sha, content=html)
    warc = write_warc([cap])
    assert hex_of_label(sha256_label(sha)) == sha == hex_of_label("sha256:" + sha)
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr(vb.WEB_ARCHIVE, write_wacz(warc, pages_of([cap]), title="t"))
    with zipfile.ZipFile(bundle) as zf:
        with pytest.raises(vb.BundleError, match="recorded by no bundled ledger entry"):
            vb._web_archive(zf, {0: (b"", {"raw_sha256": "0" * 64})})
        assert vb._web_archive(zf, {0: (b"", {"raw_sha256": sha})}) == 1
