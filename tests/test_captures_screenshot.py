"""Screenshots: a sample-site post rendered by headless Chromium through the real CLI, stored
encrypted, recorded in the ledger with its SHA-256, handed over in a case bundle (and its WACZ);
without Chromium the capture is recorded as unavailable. Skipped, with the reason, without Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

import config
import crawler.evidence.verify_bundle as vb
from crawler.captures.screenshot import find_browser
from crawler.crawl_web import crawl_channel
from crawler.detection.quarantine import Quarantine
from crawler.evidence.capture import install
from crawler.evidence.cases import Cases
from crawler.evidence.export import Exporter, QuarantineMediaSource
from crawler.evidence.heads import HeadSigner
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import generate_key, load_private_key, load_public_key
from crawler.ingest import Ingest
from crawler.pipeline import open_pipeline
from foundation import keys
from spiders.sample_site import SampleSite
from storage.client import Store
from storage.repos.messages import MessageRepo

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}
BROWSER = find_browser()


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


async def cli(uri: str, database: str, data_dir: Path, *args: str, path: str | None = None) -> Run:
    """The real CLI, awaited (the sample site is served by this test's own event loop)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=uri, TGWATCH_DATABASE=database, TGWATCH_DATA_DIR=str(data_dir))
    if path is not None:
        env["PATH"] = path
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    return Run(int(proc.returncode or 0), out.decode(), err.decode())


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


async def screenshot_entries(ledger: Ledger) -> list[dict[str, object]]:
    payloads = [json.loads(str(d["payload"])) for d in await ledger.entries()]
    return [p for p in payloads if p.get("item") == "screenshot"]


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (scripts/install-browser.sh)")
async def test_a_post_screenshot_is_taken_stored_recorded_and_bundled(
    site: SampleSite, store: Store, ingest: Ingest, embedded_uri: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    generate_key(tmp_path / "keys")
    private = load_private_key(tmp_path / "keys" / "evidence-ed25519.pem")
    ledger = Ledger(store, signer=HeadSigner(private, every_entries=10_000, every_seconds=3600))
    install(ingest, ledger)
    assert (
        await crawl_channel(config.load(), ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
    ).messages
    newest = (await MessageRepo(store).query(channel="korea_now", limit=1))[0]
    post = f"korea_now/{newest['msg_id']}"

    run = await cli(embedded_uri, store.db.name, data_dir, "capture", "screenshot", post, "--base-url", site.base_url)
    assert run.returncode == 0, run.stderr
    assert f"screenshot of {post}: sha256 " in run.stdout, run.stdout
    shots = await screenshot_entries(ledger)
    assert len(shots) == 1 and shots[0]["unavailable"] is None and shots[0]["message"] == post
    sha = str(shots[0]["sha256"])
    assert shots[0]["url"] == f"{site.base_url}/korea_now/{newest['msg_id']}?embed=1"
    assert any(h.path_qs.startswith(f"/korea_now/{newest['msg_id']}") for h in site.hits)

    # stored encrypted like media: the file on disk is not the PNG, the quarantine gives it back
    quarantine = Quarantine(data_dir / "quarantine", keys.load_or_create(None, data_dir, "quarantine"))
    assert b"\x89PNG" not in quarantine.path(sha).read_bytes()
    png = quarantine.get(sha)
    assert hashlib.sha256(png).hexdigest() == sha
    with Image.open(io.BytesIO(png)) as img:
        low, high = img.convert("L").getextrema()
        assert img.size[0] > 100 and high - low > 50  # a rendered page, not a blank
    media = await store["media"].find_one({"_id": sha})
    assert media is not None and media["media_kind"] == "screenshot" and media["screenshot_of"] == post
    assert await store["sightings"].find_one({"sha256": sha, "message": post}) is not None

    # in a case bundle: the PNG under the media rules, and a resource record in the WACZ
    await Cases(ledger).add("C-SHOT", message=post, actor="officer")
    public = load_public_key((tmp_path / "keys" / "evidence-ed25519.pub.pem").read_bytes())
    out = tmp_path / "C-SHOT.zip"
    exporter = Exporter(ledger, public, signer=ledger.signer, media=QuarantineMediaSource(quarantine))
    await exporter.export("C-SHOT", out, actor="officer", role="investigator")
    check = vb.verify_bundle(out)
    assert check.ok, check.summary()
    with zipfile.ZipFile(out) as zf:
        assert zf.read(f"captures/media/{sha}") == png
        with zipfile.ZipFile(io.BytesIO(zf.read(vb.WEB_ARCHIVE))) as inner:
            warc = inner.read("archive/data.warc.gz")
    resources = [
        (r.rec_headers.get_header("Content-Type"), r.rec_headers.get_header("WARC-Target-URI"))
        for r in ArchiveIterator(io.BytesIO(warc), check_digests="raise")  # (reads each record as it goes)
        if r.rec_type == "resource"
    ]
    assert [uri for kind, uri in resources if kind == "image/png"] == [shots[0]["url"]]  # the screenshot
    assert all(uri.startswith("urn:tgwatch:post:") for kind, uri in resources if kind != "image/png")  # the post

    auditor = tmp_path / "auditor.zip"
    await exporter.export("C-SHOT", auditor, actor="officer", role="auditor")
    with zipfile.ZipFile(auditor) as zf:
        assert f"captures/media/{sha}" not in zf.namelist()  # the media rules: an auditor gets digests only


async def test_without_chromium_the_capture_is_recorded_as_unavailable(
    store: Store, ingest: Ingest, embedded_uri: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from foundation.models import ChannelRef, Message, Source

    ledger = Ledger(store)
    install(ingest, ledger)
    msg = Message(ref=ChannelRef(username="shotless"), msg_id=3, source=Source.WEB, text="x",
                  date=datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    await ingest.submit([msg])
    run = await cli(embedded_uri, store.db.name, tmp_path / "data", "capture", "screenshot", "shotless/3",
              "--base-url", "http://127.0.0.1:9", path="/nonexistent")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "no screenshot of shotless/3: no Chromium" in run.stdout
    shots = await screenshot_entries(ledger)
    assert len(shots) == 1 and shots[0]["sha256"] is None and "no Chromium" in str(shots[0]["unavailable"])
    assert await store["media"].count_documents({"media_kind": "screenshot"}) == 0

    bad = await cli(embedded_uri, store.db.name, tmp_path / "data", "capture", "screenshot", "shotless/x")
    assert bad.returncode == 2 and "CHANNEL/ID" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (scripts/install-browser.sh)")
async def test_an_alert_raised_during_ingest_gets_its_post_screenshotted(
    site: SampleSite, store: Store, tmp_path: Path
) -> None:
    from foundation.models import Alert, AlertKind, utcnow
    from storage.repos.alerts import AlertRepo

    settings = config.load(
        data_dir=tmp_path / "data", telegram_web_base=site.base_url,
        media={"fetch": False, "screenshot_on_alert": True, "screenshot_timeout_seconds": 60},
    )  # fmt: skip
    async with open_pipeline(store, settings) as ingest:
        found = await crawl_channel(settings, ingest, "korea_now", base_url=site.base_url, scrapy_overrides=FAST)
        assert found.messages
        newest = (await MessageRepo(store).query(channel="korea_now", limit=1))[0]
        post = f"korea_now/{newest['msg_id']}"
        alert = Alert(key="detection/test/1", kind=AlertKind.DETECTION, summary="test", raised_at=utcnow(),
                      details={"message": post}, channels=["korea_now"])  # fmt: skip
        assert await AlertRepo(store).raise_alert(alert)
    # leaving the pipeline waits for the screenshot under way
    shots = await screenshot_entries(Ledger(store))
    assert [(s["message"], s["reason"], s["actor"]) for s in shots] == [
        (post, "alert detection/test/1", "system:alert")
    ]
    assert isinstance(shots[0]["sha256"], str) and shots[0]["unavailable"] is None
