"""Retroactive matching: a list imported (or enabled) after the crawl finds what is already stored."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import config
from config import Settings
from crawler.hashing import synthetic
from crawler.hashing import video as vpdq
from crawler.hashing.images import hash_image
from crawler.hashing.index import brute_force
from crawler.hashing.pdqbits import hex_to_words, words_to_hex
from crawler.media.retro import RetroMatcher
from crawler.pipeline import open_pipeline
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store, open_store
from storage.repos.hashlists import HashListRepo
from storage.repos.media import MediaRepo
from tests.media_host import LOOPBACK_HTTP, MediaServer

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(
        data_dir=tmp_path / "data",
        media={"hash_workers": 1},
        limits={"max_media_bytes": 4_000_000},
        http=LOOPBACK_HTTP,
    )


def msg(i: int, *refs: MediaRef, channel: str = "retro_lab") -> Message:
    return Message(
        ref=ChannelRef(username=channel), msg_id=i, source=Source.WEB, date=T0, text=f"post {i}", media=list(refs)
    )


def ref(url: str, kind: MediaKind = MediaKind.PHOTO) -> MediaRef:
    return MediaRef(kind=kind, url=url)


def flip(hex_pdq: str, bits: int, seed: int = 0) -> str:
    """The PDQ with exactly ``bits`` distinct bits flipped."""
    words = hex_to_words(hex_pdq)[0].copy()
    for b in np.random.default_rng(seed).choice(256, bits, replace=False):
        words[b // 64] ^= np.uint64(1) << np.uint64(63 - int(b) % 64)
    return words_to_hex(words[None, :])[0]


async def alerts(store: Store) -> dict[str, dict]:
    return {d["_id"]: d async for d in store["alerts"].find()}


async def crawl(store: Store, settings: Settings, messages: list[Message]) -> None:
    async with open_pipeline(store, settings) as ingest:
        await ingest.submit(messages)


@pytest.fixture(scope="module")
def clip() -> bytes:
    return synthetic.video(seed=4, seconds=4)


async def test_each_signal_type_matches_media_stored_before_the_list(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str], clip: bytes
) -> None:
    server, base = media_server
    by_sha = synthetic.encode(synthetic.scene(21), "PNG")
    by_md5 = synthetic.encode(synthetic.scene(22), "PNG")
    original = synthetic.scene(23)
    reencoded = synthetic.encode(synthetic.half_size(original), "JPEG", quality=55)
    unrelated = synthetic.encode(synthetic.scene(24), "PNG")
    for name, data, mime in [("a.png", by_sha, "image/png"), ("b.png", by_md5, "image/png"),
                             ("c.jpg", reencoded, "image/jpeg"), ("d.png", unrelated, "image/png"),
                             ("v.mp4", clip, "video/mp4")]:  # fmt: skip
        server.files[name] = (data, mime)
    await crawl(store, settings, [msg(1, ref(base + "a.png")), msg(2, ref(base + "b.png"), ref(base + "c.jpg"))])
    await crawl(store, settings, [msg(3, ref(base + "d.png")), msg(4, ref(base + "v.mp4", MediaKind.VIDEO))])
    await crawl(store, settings, [msg(9, ref(base + "a.png"), channel="elsewhere")])  # seen again, later
    assert await alerts(store) == {}

    original_pdq = hash_image(synthetic.encode(original, "PNG")).pdq.hash  # type: ignore[union-attr]
    clip_vpdq = vpdq.frames_to_json(vpdq.hash_video(clip))
    rows = [("sha256", hashlib.sha256(by_sha).hexdigest(), "s"), ("md5", hashlib.md5(by_md5).hexdigest(), "m"),
            ("pdq", original_pdq, "p"), ("vpdq", clip_vpdq, "v")]  # fmt: skip
    await HashListRepo(store).add_entries("late", "csv", rows)
    result = await RetroMatcher(store, settings).retro_match("late", trigger="import")

    assert result.status == "ok" and result.entries == 4 and result.media_scanned == 5
    assert result.media_matched == 4 and result.alerts_raised == 4
    found = await alerts(store)
    sha = {n: hashlib.sha256(d).hexdigest() for n, d in [("a", by_sha), ("b", by_md5), ("c", reencoded), ("v", clip)]}
    assert set(found) == {f"match/late/{s}" for s in sha.values()}, "the unrelated image matched nothing"
    kinds = {a["sha256"]: a["details"]["signal_type"] for a in found.values()}
    assert kinds == {sha["a"]: "sha256", sha["b"]: "md5", sha["c"]: "pdq", sha["v"]: "vpdq"}
    assert 0 < found[f"match/late/{sha['c']}"]["details"]["distance"] <= 31, "re-encoded: a near, not exact, match"
    for alert in found.values():
        assert alert["kind"] == "hash_match" and alert["details"]["retroactive"] is True
        sightings = await store["sightings"].find({"sha256": alert["sha256"]}).to_list(None)
        times = sorted(s["seen_at"] for s in sightings)
        assert alert["details"]["first_seen_at"] == times[0] and alert["details"]["last_seen_at"] == times[-1]
    media = await store["media"].find_one({"_id": sha["c"]})
    assert media is not None and media["matched"] and media["matches"][0]["retroactive"] is True
    twice = found[f"match/late/{sha['a']}"]
    assert twice["details"]["sightings"] == 2 and twice["channels"] == ["elsewhere", "retro_lab"]
    assert twice["details"]["first_seen_at"] < twice["details"]["last_seen_at"]
    assert twice["details"]["message"] == "retro_lab/1"
    run = await store["runs"].find_one({"_id": result.run_id})
    assert run is not None and run["kind"] == "retro_match" and run["status"] == "ok" and run["trigger"] == "import"
    assert run["counts"] == {"entries": 4, "media_scanned": 5, "media_matched": 4, "alerts_raised": 4}

    # the same file again: no new entry, nothing matched, no new alert
    assert await HashListRepo(store).add_entries("late", "csv", rows) == {}
    again = await RetroMatcher(store, settings).retro_match("late")
    assert (again.entries, again.media_scanned, again.alerts_raised) == (0, 0, 0)
    # media stored from now on are the crawl's: matched once, at crawl time, and not marked retroactive
    copy = synthetic.encode(synthetic.brighter(original), "JPEG", quality=80)
    server.files["e.jpg"] = (copy, "image/jpeg")
    await crawl(store, settings, [msg(5, ref(base + "e.jpg"))])
    live = (await alerts(store))[f"match/late/{hashlib.sha256(copy).hexdigest()}"]
    assert "retroactive" not in live["details"] and live["details"]["message"] == "retro_lab/5"
    assert (await RetroMatcher(store, settings).retro_match("late")).alerts_raised == 0
    assert len(await alerts(store)) == 5


async def test_enabling_a_list_catches_up_on_what_happened_while_it_was_off(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    first, second, third = (synthetic.encode(synthetic.scene(s), "PNG") for s in (31, 32, 33))
    for name, data in [("1.png", first), ("2.png", second), ("3.png", third)]:
        server.files[name] = (data, "image/png")
    repo = HashListRepo(store)
    retro = RetroMatcher(store, settings)
    await crawl(store, settings, [msg(1, ref(base + "1.png")), msg(2, ref(base + "2.png"))])
    await repo.add_entries("toggle", "csv", [("sha256", hashlib.sha256(first).hexdigest(), None),
                                             ("sha256", hashlib.sha256(third).hexdigest(), None)])  # fmt: skip
    assert (await retro.retro_match("toggle")).alerts_raised == 1
    await repo.set_enabled("toggle", False)
    # while off: an entry for media already stored, and new media matching an older entry
    await repo.add_entries("toggle", "csv", [("md5", hashlib.md5(second).hexdigest(), None)])
    assert (await retro.retro_match("toggle")).status == "disabled"
    await crawl(store, settings, [msg(3, ref(base + "3.png"))])
    assert len(await alerts(store)) == 1, "a disabled list matches nothing"
    await repo.set_enabled("toggle", True)
    caught_up = await retro.retro_match("toggle", trigger="enable")
    assert caught_up.alerts_raised == 2
    assert caught_up.entries == 1 + 2, "the new entry against all media; the old ones against media since disable"
    assert set(await alerts(store)) == {f"match/toggle/{hashlib.sha256(d).hexdigest()}" for d in (first, second, third)}
    done = await retro.retro_match("toggle")
    assert (done.entries, done.alerts_raised) == (0, 0)


async def test_pdq_threshold_is_the_lists_rule(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    server.files["x.png"] = (synthetic.encode(synthetic.scene(41), "PNG"), "image/png")
    await crawl(store, settings, [msg(1, ref(base + "x.png"))])
    stored = await store["media"].find_one({})
    assert stored is not None
    await HashListRepo(store).add_entries("at31", "csv", [("pdq", flip(stored["pdq"], 31), None)])
    await HashListRepo(store).add_entries("at32", "csv", [("pdq", flip(stored["pdq"], 32), None)])
    retro = RetroMatcher(store, settings)
    assert (await retro.retro_match("at31")).alerts_raised == 1
    assert (await retro.retro_match("at32")).alerts_raised == 0
    assert set(await alerts(store)) == {f"match/at31/{stored['_id']}"}


async def test_random_pdqs_match_exactly_what_brute_force_finds(store: Store, settings: Settings) -> None:
    rng = np.random.default_rng(18)
    stored = rng.integers(0, 2**64, (3000, 4), dtype=np.uint64, endpoint=False)
    listed = rng.integers(0, 2**64, (300, 4), dtype=np.uint64, endpoint=False)
    for i in range(120):  # planted copies of listed hashes at 0..39 bits
        bits = rng.choice(256, i % 40, replace=False)
        stored[i] = listed[i]
        for b in bits:
            stored[i, b // 64] ^= np.uint64(1) << np.uint64(63 - int(b) % 64)
    media = MediaRepo(store)
    shas = [hashlib.sha256(f"m{i}".encode()).hexdigest() for i in range(len(stored))]
    for sha, pdq in zip(shas, words_to_hex(stored), strict=True):
        await media.insert({"_id": sha, "md5": sha[:32], "kind": "image", "media_kind": "photo", "pdq": pdq,
                            "pdq_quality": 100, "frame_pdqs": [], "vpdq": None, "first_seen_at": T0})  # fmt: skip
    await HashListRepo(store).add_entries("random", "csv", [("pdq", h, None) for h in words_to_hex(listed)])
    result = await RetroMatcher(store, settings, batch_size=700).retro_match("random")
    q, _, _ = brute_force(listed, stored, 31)
    expected = {f"match/random/{shas[i]}" for i in set(q.tolist())}
    assert len(expected) >= 80 and result.media_scanned == 3000
    assert set(await alerts(store)) == expected


def _tgwatch(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip


@pytest.mark.slow
async def test_cli_import_enable_and_rematch_match_stored_media(
    tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    data_dir = tmp_path / "cli"
    settings = config.load(data_dir=data_dir, media={"hash_workers": 1}, http=LOOPBACK_HTTP)
    png = synthetic.encode(synthetic.scene(51), "PNG")
    other = synthetic.encode(synthetic.scene(52), "PNG")
    server.files["p.png"] = (png, "image/png")
    server.files["o.png"] = (other, "image/png")
    async with open_store(settings) as store:
        await crawl(store, settings, [msg(1, ref(base + "p.png"), ref(base + "o.png"))])
    csv = tmp_path / "list.csv"
    csv.write_text(f"signal_type,signal,label\nsha256,{hashlib.sha256(png).hexdigest()},victim-1\n")
    out = _tgwatch(data_dir, "hashes", "import", str(csv), "--list", "vic")
    assert out.returncode == 0, out.stderr
    assert "retroactive: 1 entries against 2 stored media, 1 matched, 1 new alerts" in out.stdout
    again = _tgwatch(data_dir, "hashes", "import", str(csv), "--list", "vic")
    assert "retroactive: 0 entries against 0 stored media, 0 matched, 0 new alerts" in again.stdout
    assert _tgwatch(data_dir, "hashes", "disable", "vic").returncode == 0
    csv.write_text(f"signal_type,signal,label\nmd5,{hashlib.md5(other).hexdigest()},victim-2\n")
    off = _tgwatch(data_dir, "hashes", "import", str(csv), "--list", "vic")
    assert "is disabled: no retroactive matching until it is enabled" in off.stdout
    on = _tgwatch(data_dir, "hashes", "enable", "vic")
    assert on.returncode == 0 and "1 matched, 1 new alerts" in on.stdout, on.stdout + on.stderr
    manual = _tgwatch(data_dir, "hashes", "rematch", "vic", "--json")
    assert manual.returncode == 0 and json.loads(manual.stdout)["entries"] == 0
    missing = _tgwatch(data_dir, "hashes", "rematch", "nope")
    assert missing.returncode != 0 and "no hash list 'nope'" in missing.stderr and "Traceback" not in missing.stderr
