"""List hygiene (per-list thresholds, allow-lists, runaway-entry quarantine, reviewers' precision)
and the HMA-compatible lookup routes answering from tgwatch's lists."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import config
from config import Settings
from crawler.api.app import build_app
from crawler.hashing import synthetic
from crawler.hashing.images import hash_image
from crawler.hashing.pool import hash_media_sync
from crawler.media.hygiene import list_row
from crawler.media.matcher import Matcher
from crawler.media.retro import RetroMatcher
from crawler.pipeline import open_pipeline
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from tests.media_host import LOOPBACK_HTTP, MediaServer

T0 = datetime(2026, 5, 1, tzinfo=UTC)
SCENE = synthetic.scene(71)
ORIGINAL = synthetic.encode(SCENE, "PNG")
#: the same picture re-encoded: distinct files (digests) with near PDQs
VARIANTS = [synthetic.encode(SCENE, "JPEG", quality=q) for q in (60, 70, 80, 90, 95)]


def pdq_of(data: bytes) -> str:
    found = hash_image(data).pdq
    assert found is not None
    return found.hash


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "d", media={"hash_workers": 1}, http=LOOPBACK_HTTP,
                       exchanges={"quarantine_after": 3})  # fmt: skip


def msg(i: int, url: str) -> Message:
    return Message(ref=ChannelRef(username="hyg_lab"), msg_id=i, source=Source.WEB, date=T0, text=f"post {i}",
                   media=[MediaRef(kind=MediaKind.PHOTO, url=url)])  # fmt: skip


async def crawl_one(store: Store, settings: Settings, message: Message) -> None:
    async with open_pipeline(store, settings) as ingest:
        await ingest.submit([message])


async def alert_ids(store: Store) -> set[str]:
    return {d["_id"] async for d in store["alerts"].find()}


async def test_a_runaway_entry_is_quarantined_staff_are_told_and_a_release_restores_it(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    repo = HashListRepo(store)
    await repo.add_entries("noisy", "csv", [("pdq", pdq_of(ORIGINAL), "overzealous")])
    shas = [hashlib.sha256(v).hexdigest() for v in VARIANTS]
    assert len(set(shas)) == 5
    for i, data in enumerate(VARIANTS):
        server.files[f"v{i}.jpg"] = (data, "image/jpeg")
        await crawl_one(store, settings, msg(i + 1, f"{base}v{i}.jpg"))  # one at a time: a fixed order

    entry = f"noisy/pdq/{pdq_of(ORIGINAL)}"
    found = await alert_ids(store)
    assert {f"match/noisy/{s}" for s in shas[:3]} <= found, "up to the limit, matches alert as usual"
    assert not {f"match/noisy/{s}" for s in shas[3:]} & found, "past it, the entry matches nothing"
    assert f"quarantine/{entry}" in found
    notice = await AlertRepo(store).get(f"quarantine/{entry}")
    assert notice is not None and notice["kind"] == "hash_list_quarantine" and notice["details"]["distinct_media"] == 4
    assert [d["_id"] for d in await repo.quarantined("noisy")] == [entry]
    assert (await repo.get("noisy") or {})["quarantined"] == 1
    matcher = Matcher(store, settings.matching)
    assert await matcher.match(hash_media_sync(ORIGINAL)) == [], "a quarantined entry is not matched"

    assert await repo.release(entry)
    assert [h.list for h in await matcher.match(hash_media_sync(ORIGINAL))] == ["noisy"]
    assert (await repo.get("noisy") or {})["quarantined"] == 0


async def test_allow_lists_suppress_and_list_thresholds_narrow(store: Store, settings: Settings) -> None:
    repo = HashListRepo(store)
    sticker, reencoded = ORIGINAL, VARIANTS[0]
    rows = [("pdq", pdq_of(sticker), None), ("md5", hashlib.md5(sticker).hexdigest(), None)]
    await repo.add_entries("victims", "csv", rows)
    matcher = Matcher(store, settings.matching)
    assert {h.list for h in await matcher.match(hash_media_sync(sticker))} == {"victims"}
    near = await matcher.match(hash_media_sync(reencoded))
    assert [h.signal_type for h in near] == ["pdq"] and near[0].distance > 0

    await repo.set_hygiene("victims", max_distance=0)
    assert await matcher.match(hash_media_sync(reencoded)) == [], "beyond the list's own threshold"
    assert {h.signal_type for h in await matcher.match(hash_media_sync(sticker))} == {"md5", "pdq"}

    await repo.add_entries("stickers", "csv", [("sha256", hashlib.sha256(sticker).hexdigest(), "common sticker")])
    await repo.set_hygiene("stickers", role="allow")
    assert await matcher.match(hash_media_sync(sticker)) == [], "a known-benign item matches no list"
    assert await matcher.allowed(hash_media_sync(sticker))


async def test_retroactive_matching_honours_allow_lists(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    server.files["logo.png"] = (ORIGINAL, "image/png")
    await crawl_one(store, settings, msg(1, base + "logo.png"))
    repo = HashListRepo(store)
    await repo.add_entries("logos", "csv", [("pdq", pdq_of(ORIGINAL), "platform logo")])
    await repo.set_hygiene("logos", role="allow")
    await repo.add_entries("late", "csv", [("md5", hashlib.md5(ORIGINAL).hexdigest(), None)])
    result = await RetroMatcher(store, settings).retro_match("late")
    assert result.media_scanned == 1 and result.alerts_raised == 0 and await alert_ids(store) == set()
    assert (await RetroMatcher(store, settings).retro_match("logos")).status == "allow_list"
    await repo.set_hygiene("logos", role="block")
    await repo.add_entries("late2", "csv", [("md5", hashlib.md5(ORIGINAL).hexdigest(), None)])
    assert (await RetroMatcher(store, settings).retro_match("late2")).alerts_raised == 1


async def test_precision_counts_reviewers_verdicts_per_list(store: Store) -> None:
    alerts = AlertRepo(store)
    from crawler.media.matcher import MatchHit, raise_match_alerts

    for i, verdict in enumerate(["confirmed", "confirmed", "rejected", None]):
        sha = f"{i:064x}"
        await raise_match_alerts(alerts, sha, [MatchHit("vic", "md5", "a" * 32, 0, None)], channels=[], context={})
        if verdict:
            await alerts.set_review(f"match/vic/{sha}", verdict, "rev")
    row = list_row({"_id": "vic", "counts": {"md5": 1}}, (await alerts.match_reviews())["vic"])
    assert (row["confirmed"], row["rejected"], row["unreviewed"]) == (2, 1, 1)
    assert row["precision"] == pytest.approx(2 / 3)


# -- the HMA-compatible lookup --------------------------------------------------------------------
@pytest.fixture
async def hma(store: Store, settings: Settings) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, str]]]:
    repo = HashListRepo(store)
    await repo.add_entries("victims", "csv", [("pdq", pdq_of(ORIGINAL), "case-7"),
                                              ("md5", hashlib.md5(ORIGINAL).hexdigest(), None)])  # fmt: skip
    await repo.add_entries("other", "csv", [("sha256", "9" * 64, None)])
    await repo.set_enabled("other", False)
    token, _ = await TokenRepo(store, server_secret(settings)).create("hma-tool", Role.INVESTIGATOR)
    async with TestClient(TestServer(build_app(store, settings, ALL_MODULES))) as client:
        yield client, {"Authorization": f"Bearer {token}"}


async def test_an_hma_client_looks_up_hashes_and_banks(hma: tuple[TestClient[Any, Any], dict[str, str]]) -> None:
    client, auth = hma
    near = pdq_of(VARIANTS[0])
    resp = await client.get("/hma/m/lookup", params={"signal_type": "pdq", "signal": near}, headers=auth)
    assert resp.status == 200 and await resp.json() == ["victims"]
    raw = await client.get("/hma/m/raw_lookup", params={"signal_type": "pdq", "signal": near}, headers=auth)
    assert await raw.json() == {"matches": [f"victims/pdq/{pdq_of(ORIGINAL)}"]}
    dist = await client.get("/hma/m/raw_lookup", headers=auth,
                            params={"signal_type": "pdq", "signal": near, "include_distance": "true"})  # fmt: skip
    [match] = (await dist.json())["matches"]
    assert match["content_id"].startswith("victims/") and 0 < float(match["distance"]) <= 31
    by_md5 = {"signal_type": "video_md5", "signal": hashlib.md5(ORIGINAL).hexdigest()}
    md5 = await client.get("/hma/m/lookup", headers=auth, params=by_md5)
    assert await md5.json() == ["victims"]
    disabled = await client.get("/hma/m/lookup", params={"signal_type": "sha256", "signal": "9" * 64}, headers=auth)
    assert await disabled.json() == [], "a disabled bank does not match"

    form = aiohttp.FormData()
    form.add_field("file", VARIANTS[1], filename="upload.jpg", content_type="image/jpeg")
    posted = await client.post("/hma/m/lookup", data=form, headers=auth)
    assert posted.status == 200 and await posted.json() == {"pdq": ["victims"], "video_md5": [], "sha256": []}

    banks = await (await client.get("/hma/c/banks", headers=auth)).json()
    assert [(b["name"], b["matching_enabled_ratio"]) for b in banks] == [("other", 0.0), ("victims", 1.0)]
    one = await client.get("/hma/c/bank/victims", headers=auth)
    assert (await one.json())["tgwatch"]["counts"] == {"pdq": 1, "video_md5": 1}
    assert (await client.get("/hma/c/bank/nope", headers=auth)).status == 404
    status = await (await client.get("/hma/m/index/status", headers=auth)).json()
    assert status["pdq"]["size"] == 1 and status["pdq"]["present"] is True


async def test_hma_routes_need_a_token_and_reject_bad_input_clearly(
    hma: tuple[TestClient[Any, Any], dict[str, str]],
) -> None:
    client, auth = hma
    anonymous = await client.get("/hma/m/lookup", params={"signal_type": "pdq", "signal": "0" * 64})
    assert anonymous.status == 401
    for params in ({"signal_type": "pdq", "signal": "xyz"}, {"signal_type": "tmk", "signal": "00"}, {}):
        resp = await client.get("/hma/m/raw_lookup", params=params, headers=auth)
        assert resp.status == 400 and "message" in await resp.json(), params
    not_multipart = await client.post("/hma/m/lookup", data=b"raw", headers=auth)
    assert not_multipart.status == 400
    ssrf = await client.get("/hma/m/lookup", params={"url": "http://169.254.169.254/latest/meta-data"}, headers=auth)
    assert ssrf.status == 400 and "refused" in (await ssrf.json())["message"]


async def test_hma_lookup_by_url(
    hma: tuple[TestClient[Any, Any], dict[str, str]], media_server: tuple[MediaServer, str]
) -> None:
    client, auth = hma
    server, base = media_server
    server.files["x.png"] = (ORIGINAL, "image/png")
    resp = await client.get("/hma/m/lookup", params={"url": base + "x.png"}, headers=auth)
    assert resp.status == 200 and await resp.json() == {"pdq": ["victims"], "video_md5": ["victims"], "sha256": []}


async def test_the_console_shows_each_lists_figures_in_korean_and_english(
    hma: tuple[TestClient[Any, Any], dict[str, str]], store: Store
) -> None:
    import re

    client, auth = hma
    repo = HashListRepo(store)
    await repo.save_sync("victims", "exchange:stopncii", {"last_sync_ts": 1_780_000_000.0, "last_status": "ok"})
    await repo.remove_entries("victims", values=[("md5", hashlib.md5(ORIGINAL).hexdigest())])
    await repo.quarantine(f"victims/pdq/{pdq_of(ORIGINAL)}", "matched 30 distinct media", 1.0)
    tok = auth["Authorization"].removeprefix("Bearer ")
    form = await client.get("/console/login", params={"next": "/console/hashes"})
    csrf = re.search(r'name="csrf_token" value="([0-9a-zA-Z_-]+)"', await form.text())
    assert csrf is not None
    await client.post("/console/login", data={"token": tok, "csrf_token": csrf.group(1), "next": "/console/hashes"})
    english = await (await client.get("/console/hashes", headers={"Accept-Language": "en"})).text()
    row = re.search(r"<tr><td>victims</td>(.*?)</tr>", english)
    assert row is not None, english
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells[0] == "exchange:stopncii" and cells[2:5] == ["1", "1", "1"], "entries, withdrawn, quarantined"
    # the last sync is a console time: the reader's zone and locale, UTC on hover
    assert cells[1].startswith('<time datetime="2026-05-28T20:26:40Z" title="2026-05-28 20:26:40 UTC">May 28, 2026')
    assert "Entries held for review" in english and f"victims/pdq/{pdq_of(ORIGINAL)}" in english
    korean = await (await client.get("/console/hashes", headers={"Accept-Language": "ko"})).text()
    assert "해시 목록" in korean and "검토 대기 중인 격리 항목" in korean and "Entries held" not in korean
