"""The web probe re-checks reported items against the real sample site (and a real t.me page).

Each test serves pages over loopback, changes the served world between checks where the story
needs it (a message removed, a channel blocked), and reads what ``WebProbe.check`` answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import config
from crawler.takedowns.models import ItemKind, ItemStatus, ProbeItem, ProbeResult
from crawler.takedowns.probe import Probe
from crawler.takedowns.web import WebProbe
from foundation.models import Source, utcnow
from spiders.sample_site import ChannelKind, SampleSite

FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "TGWATCH_RETRY_BASE_DELAY": 0.05,
    "TGWATCH_RETRY_MAX_DELAY": 0.2,
    "TGWATCH_MAX_RETRY_AFTER": 5.0,
    "RETRY_TIMES": 1,
}
BLOCK_NOTICE = "This channel can't be displayed because it violated Telegram's Terms of Service."
ONLINE, REMOVED, UNKNOWN = ItemStatus.ONLINE, ItemStatus.REMOVED, ItemStatus.UNKNOWN


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


def message(username: str, msg_id: int, *, source: Source = Source.WEB) -> ProbeItem:
    return ProbeItem(
        item_id=f"message:{username}/{msg_id}",
        kind=ItemKind.MESSAGE,
        channel=username,
        username=username,
        msg_id=msg_id,
        source=source,
    )


def channel(username: str) -> ProbeItem:
    return ProbeItem(item_id=f"channel:{username}", kind=ItemKind.CHANNEL, channel=username, username=username)


async def check(base_url: str, items: list[ProbeItem], **overrides: Any) -> list[ProbeResult]:
    probe: Probe = WebProbe(config.load(), base_url=base_url, scrapy_overrides={**FAST, **overrides})
    assert probe.method == "web"
    results = await probe.check(items)
    assert [r.item_id for r in results] == [i.item_id for i in items], "one result per item, in input order"
    assert all(r.method == "web" for r in results)
    return results


def by_id(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    return {r.item_id: r for r in results}


def shown_ids(site: SampleSite, username: str, count: int) -> list[int]:
    ch = site.world.channel(username)
    assert ch is not None
    return list(ch.ids[-count:])


async def test_present_message_and_channel_are_online(site: SampleSite) -> None:
    before = utcnow()
    msg_id = shown_ids(site, "daily_brief", 1)[0]
    got = await check(site.base_url, [message("daily_brief", msg_id), channel("daily_brief")])
    post, room = got
    assert (post.status, post.reason, post.detail) == (ONLINE, "present", None)
    assert post.url == site.url(f"/daily_brief/{msg_id}?embed=1")
    assert (room.status, room.reason, room.url) == (ONLINE, "present", site.url("/daily_brief"))
    assert all(before <= r.checked_at <= utcnow() for r in got)
    assert site.hits_for("/daily_brief") and not site.hits_for("/s/daily_brief"), "one profile fetch, no preview walk"


async def test_message_removed_from_the_served_world_is_post_not_found(site: SampleSite) -> None:
    kept, gone = shown_ids(site, "korea_now", 2)
    items = [message("korea_now", kept), message("korea_now", gone)]
    first = await check(site.base_url, items)
    assert [r.status for r in first] == [ONLINE, ONLINE]

    site.set_world(site.world.without_message("korea_now", gone))
    second = by_id(await check(site.base_url, items))
    assert second[f"message:korea_now/{kept}"].status is ONLINE
    removed = second[f"message:korea_now/{gone}"]
    assert (removed.status, removed.reason, removed.detail) == (REMOVED, "post_not_found", "Post not found")
    assert removed.url == site.url(f"/korea_now/{gone}?embed=1")
    assert not site.hits_for("/korea_now"), "a post-not-found widget decides without the profile page"


async def test_blocked_channel_removes_its_messages_and_itself(site: SampleSite) -> None:
    ids = shown_ids(site, "media_lab", 3)
    other = shown_ids(site, "daily_brief", 1)[0]
    items = [*(message("media_lab", i) for i in ids), channel("media_lab"), message("daily_brief", other)]
    site.set_world(site.world.with_kind("media_lab", ChannelKind.BLOCKED))
    got = by_id(await check(site.base_url, items))
    for item in items[:4]:
        result = got[item.item_id]
        assert (result.status, result.reason, result.detail) == (REMOVED, "channel_blocked", BLOCK_NOTICE), item
        assert result.url == site.url("/media_lab")
    assert got[f"message:daily_brief/{other}"].status is ONLINE, "other channels are untouched"
    assert len(site.hits_for("/media_lab")) == 1, "the profile page is fetched once and answers every item"
    assert {h.path_qs for h in site.hits if h.path_qs.startswith("/media_lab/")} == {
        f"/media_lab/{i}?embed=1" for i in ids
    }


async def test_channel_without_web_preview_and_private_channel(site: SampleSite) -> None:
    got = by_id(
        await check(
            site.base_url,
            [channel("quiet_room"), message("quiet_room", 5), channel("closed_club"), message("closed_club", 2)],
        )
    )
    # neither is proof the platform removed anything: the owner switched the preview off or closed it
    assert (got["channel:quiet_room"].status, got["channel:quiet_room"].reason) == (ONLINE, "present")
    assert (got["message:quiet_room/5"].status, got["message:quiet_room/5"].reason) == (UNKNOWN, "no_web_preview")
    for item_id in ("channel:quiet_room", "message:quiet_room/5"):
        assert got[item_id].url == site.url("/quiet_room")
    for item_id in ("channel:closed_club", "message:closed_club/2"):
        assert (got[item_id].status, got[item_id].reason) == (UNKNOWN, "channel_private")


async def test_unknown_username_is_channel_not_found(site: SampleSite) -> None:
    got = by_id(await check(site.base_url, [channel("gone_room_2024"), message("gone_room_2024", 7)]))
    for result in got.values():
        assert (result.status, result.reason) == (REMOVED, "channel_not_found")
        assert result.url == site.url("/gone_room_2024")
    assert len(site.hits_for("/gone_room_2024")) == 1


async def test_username_taken_by_a_bot_is_channel_not_found(site: SampleSite) -> None:
    (result,) = await check(site.base_url, [channel("room_finder_bot")])
    assert (result.status, result.reason) == (REMOVED, "channel_not_found")
    assert result.detail is not None and "bot" in result.detail


async def test_persistent_failures_are_unknown_and_the_rest_still_answered(site: SampleSite) -> None:
    ids = shown_ids(site, "daily_brief", 3)
    site.faults.server_error(f"/daily_brief/{ids[0]}", times=None, status=503)
    site.faults.rate_limit(f"/daily_brief/{ids[1]}", times=None, retry_after=120)  # longer than we wait
    site.faults.server_error("/quiet_room", times=None, status=500)
    items = [*(message("daily_brief", i) for i in ids), channel("quiet_room"), message("quiet_room", 3)]
    got = by_id(await check(site.base_url, items))

    failed = got[f"message:daily_brief/{ids[0]}"]
    assert (failed.status, failed.reason) == (UNKNOWN, "fetch_failed")
    assert failed.detail is not None and "503" in failed.detail
    assert failed.url == site.url(f"/daily_brief/{ids[0]}?embed=1")
    assert [h.status for h in site.hits_for(f"/daily_brief/{ids[0]}?embed=1")] == [503, 503], "retried, then given up"
    limited = got[f"message:daily_brief/{ids[1]}"]
    assert (limited.status, limited.reason) == (UNKNOWN, "rate_limited")
    assert limited.detail is not None and "120" in limited.detail
    assert got[f"message:daily_brief/{ids[2]}"].status is ONLINE
    for item_id in ("channel:quiet_room", "message:quiet_room/3"):  # the profile page failed for both
        assert (got[item_id].status, got[item_id].reason) == (UNKNOWN, "fetch_failed")

    site.faults.clear()  # the next check, once the site behaves, decides them
    again = by_id(await check(site.base_url, items))
    assert again[f"message:daily_brief/{ids[0]}"].status is ONLINE
    assert again["channel:quiet_room"].status is ONLINE


async def test_items_without_a_username_are_not_checkable_and_cost_no_request(site: SampleSite) -> None:
    mtproto_only = ProbeItem(
        item_id="message:id1234567/9", kind=ItemKind.MESSAGE, channel="id1234567", tg_id=1234567, msg_id=9,
        source=Source.MTPROTO,
    )  # fmt: skip
    no_id = ProbeItem(
        item_id="message:daily_brief/x", kind=ItemKind.MESSAGE, channel="daily_brief", username="daily_brief"
    )
    got = await check(site.base_url, [mtproto_only, no_id])
    assert [(r.status, r.reason, r.url) for r in got] == [(UNKNOWN, "not_checkable", None)] * 2
    assert site.hits == []


async def test_empty_and_repeated_items(site: SampleSite) -> None:
    assert await WebProbe(config.load(), base_url=site.base_url).check([]) == []
    msg_id = shown_ids(site, "daily_brief", 1)[0]
    item = message("daily_brief", msg_id)
    got = await check(site.base_url, [item, channel("daily_brief"), item])
    assert got[0] == got[2] and got[0].status is ONLINE
    assert len(site.hits_for(f"/daily_brief/{msg_id}?embed=1")) == 1


async def test_a_run_that_cannot_start_answers_unknown_for_every_item(site: SampleSite) -> None:
    # a pipeline that cannot be imported fails the whole crawl: the contract still wants one answer per item
    items = [channel("daily_brief"), message("daily_brief", 1)]
    got = await check(site.base_url, items, ITEM_PIPELINES={"no.such.module.Pipeline": 300})
    assert [(r.status, r.reason) for r in got] == [(UNKNOWN, "fetch_failed")] * 2
    assert all(r.detail is not None and r.detail.startswith("no answer") for r in got)


# -- pages the sample site does not make ------------------------------------------------------------


@asynccontextmanager
async def serve_pages(pages: Mapping[str, Callable[[], str]]) -> AsyncIterator[str]:
    """A tiny site answering ``pages[path]()`` as HTML (404 for any other path)."""

    async def handler(request: web.Request) -> web.Response:
        make = pages.get(request.path)
        if make is None:
            raise web.HTTPNotFound()
        return web.Response(text=make(), content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.corpus
async def test_real_post_not_found_widget(corpus_dir: Path) -> None:
    page = corpus_dir / "post" / "embed-post-not-found.html"
    if not page.is_file():
        pytest.skip(f"corpus page {page} absent (the corpus lives in ../shared/corpus beside the repo)")
    async with serve_pages({"/somechannel/4242": lambda: page.read_text(encoding="utf-8")}) as base:
        (result,) = await check(base, [message("somechannel", 4242)])
    assert (result.status, result.reason, result.detail) == (REMOVED, "post_not_found", "Post not found")
    assert result.url == f"{base}/somechannel/4242?embed=1"


async def test_unfamiliar_pages_are_unknown_never_removed() -> None:
    odd = "<html><body><h1>Please wait</h1><p>Checking your browser.</p></body></html>"
    async with serve_pages({"/oddroom/3": lambda: odd, "/oddroom": lambda: odd}) as base:
        got = await check(base, [message("oddroom", 3), channel("oddroom")])
    for result in got:
        assert (result.status, result.reason) == (UNKNOWN, "unrecognised_page")
        assert result.url == f"{base}/oddroom"
    assert got[0].detail is not None and "no post" in got[0].detail


def test_checked_at_is_recent_utc() -> None:
    # ProbeResult keeps UTC-aware times (the ledger and the store rely on it)
    result = ProbeResult(item_id="x", status=ONLINE, reason="present", checked_at=utcnow(), method="web")
    assert result.checked_at.utcoffset() == timedelta(0)
