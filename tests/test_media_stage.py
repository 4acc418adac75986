"""The media stage in the real ingest door: fetch, hash once, quarantine, sightings, matching, alerts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import config
from config import Settings
from crawler.hashing import synthetic
from crawler.hashing.images import hash_image
from crawler.ingest import Ingest
from crawler.pipeline import STAGES, open_pipeline
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store
from storage.repos import ErrorRepo, MessageRepo
from storage.repos.hashlists import HashListRepo
from tests.media_host import LOOPBACK_HTTP, MediaServer

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(
        data_dir=tmp_path / "data",
        media={"hash_workers": 1},
        limits={"max_media_bytes": 2_000_000},
        http=LOOPBACK_HTTP,
    )


def msg(i: int, *refs: MediaRef, channel: str = "media_lab") -> Message:
    return Message(
        ref=ChannelRef(username=channel), msg_id=i, source=Source.WEB, date=T0, text=f"post {i}", media=list(refs)
    )


def photo(url: str) -> MediaRef:
    return MediaRef(kind=MediaKind.PHOTO, url=url)


async def test_media_is_hashed_once_quarantined_and_sighted(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    png = synthetic.encode(synthetic.scene(1), "PNG")
    server.files["a.png"] = (png, "image/png")
    server.files["a-copy.png"] = (png, "image/png")
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit(
            [msg(1, photo(base + "a.png")), msg(2, photo(base + "a-copy.png"), channel="other")]
        )
        assert result.new == 2 and result.media_hashed == 1 and result.media_errors == 0
        sha = hashlib.sha256(png).hexdigest()
        media = await store["media"].find_one({"_id": sha})
        assert media is not None and media["kind"] == "image" and len(media["pdq"]) == 64
        assert media["md5"] == hashlib.md5(png).hexdigest() and media["pdq_usable"] is True
        sightings = await store["sightings"].find({"sha256": sha}).to_list(None)
        assert sorted((s["channel"], s["msg_id"]) for s in sightings) == [("media_lab", 1), ("other", 2)]
        stored = await MessageRepo(store).get("media_lab/1")
        assert stored is not None and stored["media"][0]["sha256"] == sha and stored["media_digests"] == [sha]
        # the same message crawled again is not fetched again (signed URLs change, digests carry over)
        again = await ingest.submit([msg(1, photo(base + "a.png?sig=new"))])
        assert again.unchanged == 1 and server.hits["a.png"] == 1
    from crawler.detection.service import DetectionService

    svc = DetectionService(store, settings)
    assert svc.quarantine.get(sha) == png
    job = await store["detection_jobs"].find_one({"_id": f"{sha}/default"})
    assert job is not None and job["priority"] == 0 and job["payload"]["context"]["matched"] is False


async def test_listed_variants_raise_alerts_and_unrelated_do_not(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str], tmp_path: Path
) -> None:
    server, base = media_server
    original = synthetic.scene(7)
    listed_pdq = hash_image(synthetic.encode(original, "PNG")).pdq.hash  # type: ignore[union-attr]
    await HashListRepo(store).add_entries("known-test", "csv", [("pdq", listed_pdq, "case-17")])
    server.files["variant.jpg"] = (synthetic.encode(synthetic.half_size(original), "JPEG", quality=55), "image/jpeg")
    server.files["unrelated.png"] = (synthetic.encode(synthetic.scene(99), "PNG"), "image/png")
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit([msg(10, photo(base + "variant.jpg")), msg(11, photo(base + "unrelated.png"))])
    assert result.matches == 1
    alerts = await store["alerts"].find().to_list(None)
    assert len(alerts) == 1
    alert = alerts[0]
    variant_sha = hashlib.sha256(server.files["variant.jpg"][0]).hexdigest()
    assert alert["_id"] == f"match/known-test/{variant_sha}" and alert["kind"] == "hash_match"
    assert alert["details"]["label"] == "case-17" and alert["details"]["distance"] <= 31
    assert alert["channels"] == ["media_lab"] and alert["details"]["message"] == "media_lab/10"
    job = await store["detection_jobs"].find_one({"_id": f"{variant_sha}/default"})
    assert job is not None and job["priority"] == 100, "a hash match is detected first"
    media = await store["media"].find_one({"_id": variant_sha})
    assert media is not None and media["matched"] and media["matches"][0]["list"] == "known-test"


async def test_bad_media_get_clear_errors_and_the_rest_is_kept(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    good = synthetic.encode(synthetic.scene(3), "PNG")
    server.files["good.png"] = (good, "image/png")
    server.files["truncated.png"] = (good[: len(good) // 2], "image/png")
    server.files["page.jpg"] = (b"<html><body>not an image</body></html>", "image/jpeg")
    server.files["huge.png"] = (b"\x89PNG" + os.urandom(2_100_000), "image/png")
    refs = [photo(base + n) for n in ("good.png", "truncated.png", "page.jpg", "huge.png", "missing.png")]
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit([msg(20, *refs)])
        assert result.new == 1, "the message is stored whatever its media did"
        stored = await MessageRepo(store).get("media_lab/20")
        assert stored is not None
        kinds = [(m.get("sha256") is not None, (m.get("error") or {}).get("kind")) for m in stored["media"]]
        assert kinds[0] == (True, None)
        assert kinds[1] == (True, "undecodable"), "truncated image: digest kept, decoding refused"
        assert kinds[2][1] in {"undecodable"}, "an HTML page is not an image, whatever its Content-Type says"
        assert kinds[3] == (False, "too_large")
        assert kinds[4] == (False, "not_found")
        errors = await ErrorRepo(store).recent(limit=20)
        assert {e["kind"] for e in errors} >= {"undecodable", "too_large", "not_found"}
        assert all(e["record"] == "media_lab/20" for e in errors)


async def test_without_lists_nothing_matches_and_ingest_without_media_is_untouched(
    store: Store, settings: Settings
) -> None:
    async with open_pipeline(store, settings) as ingest:
        names = [s.name for s in ingest.stages]
        assert names == [
            "normalize",
            "media",
            "version",
            "persist",
            "snowball",
            "ledger",
            "reupload",
            "takedown_policy",
        ]
        result = await ingest.submit([msg(30)])
        assert result.new == 1 and result.media_hashed == 0
    off = settings.model_copy(update={"media": settings.media.model_copy(update={"fetch": False})})
    async with open_pipeline(store, off) as bare:
        assert isinstance(bare, Ingest) and "media" not in [s.name for s in bare.stages]


async def test_the_assembled_chain_is_the_declared_list(store: Store, settings: Settings) -> None:
    async with open_pipeline(store, settings) as ingest:
        assert [(s.name, s.essential) for s in ingest.stages] == list(STAGES)


def _tgwatch(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip


@pytest.mark.slow
def test_hashes_cli_import_lists_match(tmp_path: Path) -> None:
    data = tmp_path / "data"
    original = synthetic.scene(11)
    (tmp_path / "orig.png").write_bytes(synthetic.encode(original, "PNG"))
    (tmp_path / "variant.jpg").write_bytes(synthetic.encode(synthetic.brighter(original), "JPEG", quality=80))
    (tmp_path / "rotated.png").write_bytes(synthetic.encode(original.rotate(90, expand=True), "PNG"))
    (tmp_path / "other.png").write_bytes(synthetic.encode(synthetic.scene(12), "PNG"))
    (tmp_path / "notes.txt").write_text("plain text, not media")
    pdq = hash_image(tmp_path / "orig.png").pdq.hash  # type: ignore[union-attr]
    csv = tmp_path / "list.csv"
    csv.write_text(f"signal_type,signal,label\npdq,{pdq},orig\nmd5,nothex,bad\nsha256,{'a' * 64},x\nfoo,bar,\n")
    out = _tgwatch(data, "hashes", "import", str(csv), "--list", "demo", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert "2 valid rows, 2 new" in out.stdout and "2 rejected" in out.stdout
    assert f"{csv}:3:" in out.stderr and f"{csv}:5:" in out.stderr
    lists = _tgwatch(data, "hashes", "lists")
    assert "demo" in lists.stdout and "pdq=1" in lists.stdout and "sha256=1" in lists.stdout
    files = [str(tmp_path / n) for n in ("variant.jpg", "other.png", "notes.txt", "rotated.png")]
    res = _tgwatch(data, "hashes", "match", "--json", *files)
    assert res.returncode == 0, res.stderr
    lines = {Path(j["path"]).name: j for j in map(json.loads, res.stdout.splitlines())}
    assert set(lines["variant.jpg"]) == {"path", "sha256", "md5", "pdq", "pdq_quality", "error", "matches"}
    assert [m["list"] for m in lines["variant.jpg"]["matches"]] == ["demo"]
    assert lines["variant.jpg"]["matches"][0]["label"] == "orig"
    assert lines["other.png"]["matches"] == [] and lines["rotated.png"]["matches"] == []
    assert lines["notes.txt"]["pdq"] is None and lines["notes.txt"]["pdq_quality"] is None
    dihedral = _tgwatch(data, "hashes", "match", "--json", "--dihedral", str(tmp_path / "rotated.png"))
    assert json.loads(dihedral.stdout)["matches"][0]["list"] == "demo"
    assert _tgwatch(data, "hashes", "disable", "demo").returncode == 0
    res = _tgwatch(data, "hashes", "match", "--json", files[0])
    assert json.loads(res.stdout)["matches"] == []
