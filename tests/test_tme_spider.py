"""The channel spider end to end: a local aiohttp t.me look-alike → Scrapy → pipeline → real ingest/store.

The fixture server here is deliberately tiny (plain ids and texts, pages of 5) so each test can say
exactly which ids must be stored; the rich synthetic site lives in ``spiders.sample_site``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import config
from crawler.crawl_web import CrawlSummary, StoreRunRecorder, crawl_channel
from crawler.ingest import Ingest
from foundation.models import ChannelState, Checkpoint
from spiders.middlewares import retry_after_seconds
from spiders.tme_channel import STOP, TOP, CrawlMode, Walker, resolve_username
from storage.client import Store
from tests.loopback_site import serve_tme

PAGE = 5
T0 = datetime(2025, 3, 1, tzinfo=UTC)
FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "TGWATCH_RETRY_BASE_DELAY": 0.05,
    "TGWATCH_RETRY_MAX_DELAY": 0.2,
    "DOWNLOAD_TIMEOUT": 1.0,
}


def _message(name: str, msg_id: int, text: str) -> str:
    iso = (T0 + timedelta(minutes=msg_id)).isoformat()
    return (
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'js-widget_message" data-post="{name}/{msg_id}"><div class="tgme_widget_message_bubble">'
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>'
        f'<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info">'
        f'<span class="tgme_widget_message_views">1.2K</span><span class="tgme_widget_message_meta">'
        f'<a class="tgme_widget_message_date" href="https://t.me/{name}/{msg_id}">'
        f'<time datetime="{iso}" class="time">x</time></a></span></div></div></div></div></div>'
    )


def render_page(name: str, messages: list[tuple[int, str]], older: int | None) -> str:
    more = (
        f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/{name}?before={older}" '
        f'class="tme_messages_more js-messages_more" data-before="{older}"></a></div>'
        if older is not None
        else ""
    )
    body = "".join(_message(name, i, t) for i, t in messages)
    return (
        f'<!DOCTYPE html><html><head><title>{name}</title></head><body><header><div class="tgme_channel_info">'
        f'<div class="tgme_channel_info_header"><div class="tgme_channel_info_header_title"><span dir="auto">'
        f'{name} title</span></div><div class="tgme_channel_info_header_username"><a href="https://t.me/{name}">'
        f'@{name}</a></div></div><div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter">'
        f'<span class="counter_value">1.2K</span> <span class="counter_type">subscribers</span></div></div>'
        f'</div></header><main><section class="tgme_channel_history js-message_history">{more}{body}'
        f"</section></main></body></html>"
    )


PROFILE = """<!DOCTYPE html><html><head><title>Telegram: Contact @{name}</title></head><body>
<div class="tgme_page"><div class="tgme_page_title"><span dir="auto">{name} title</span></div>
<div class="tgme_page_extra">1 234 subscribers</div><div class="tgme_page_description">A quiet channel.</div>
<div class="tgme_page_action"><a class="tgme_action_button_new" href="tg://resolve?domain={name}">View in Telegram</a>
</div></div></body></html>"""
NOT_FOUND = """<!DOCTYPE html><html><head><title>Telegram: Contact @{name}</title>
<meta name="robots" content="noindex, nofollow"></head><body><div class="tgme_page"><div class="tgme_page_icon"></div>
<div class="tgme_page_action"><a class="tgme_action_button_new" href="tg://resolve?domain={name}">Send Message</a></div>
</div></body></html>"""


@dataclass
class FixtureSite:
    """One channel ``chanx`` with ``ids``; faults are queued per ``path?query``."""

    ids: list[int]
    texts: dict[int, str] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    no_preview: set[str] = field(default_factory=set)
    hits: list[str] = field(default_factory=list)
    base_url: str = ""

    def text(self, i: int) -> str:
        return self.texts.get(i, f"message {i} 메시지 #tag{i % 3}")

    async def preview(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(request.path_qs)
        fault = self.faults.get(request.path_qs) or self.faults.get("*")
        if fault:
            action = fault.pop(0)
            if action.startswith("429"):
                return web.Response(status=429, headers={"Retry-After": action.split(":")[1]})
            if action.startswith("5"):
                return web.Response(status=int(action))
            if action.startswith("slow"):
                await asyncio.sleep(float(action.split(":")[1]))
        if name in self.no_preview or name != "chanx":
            raise web.HTTPFound(f"/{name}")
        before = int(request.query.get("before", "0") or 0) or None
        older = [i for i in self.ids if before is None or i < before]
        page = older[-PAGE:]
        has_older = len(older) > PAGE
        html = render_page(name, [(i, self.text(i)) for i in page], page[0] if has_older and page else None)
        if fault is not None and action == "truncate":
            html = html[: int(len(html) * 0.6)]
        return web.Response(text=html, content_type="text/html")

    async def profile(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = (PROFILE if name in self.no_preview else NOT_FOUND).format(name=name)
        return web.Response(text=body, content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[FixtureSite]:
    fixture = FixtureSite(ids=list(range(1, 23)))
    async with serve_tme(fixture.preview, fixture.profile) as base_url:
        fixture.base_url = base_url
        yield fixture


async def _crawl(
    ingest: Ingest, site: FixtureSite, mode: CrawlMode | None = None, target: str = "chanx", **over: Any
) -> CrawlSummary:
    settings = config.load(log_level="WARNING")
    return await crawl_channel(
        settings, ingest, target, mode=mode, base_url=site.base_url, scrapy_overrides={**FAST, **over}
    )


async def _stored_ids(store: Store) -> list[int]:
    docs = await store["messages"].find({"channel": "chanx"}, {"msg_id": 1}).to_list(None)
    return sorted(d["msg_id"] for d in docs)


# ------------------------------------------------------------------------------------ pure parts


def test_resolve_username_accepts_every_form() -> None:
    for form in (
        "chan_name",
        "@chan_name",
        "t.me/chan_name",
        "https://t.me/s/chan_name",
        "https://telegram.me/chan_name",
    ):
        assert resolve_username(form) == "chan_name"


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds(b"3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_walker_first_crawl_walks_to_the_first_message() -> None:
    w = Walker("web:chanx", None, CrawlMode())
    assert w.start() == TOP
    cp, nxt = w.on_page([18, 19, 20, 21, 22], has_older=True)
    assert (cp.newest_id, cp.oldest_id, nxt) == (22, 18, 18)
    cp, nxt = w.on_page([1, 2], has_older=False)
    assert (cp.newest_id, cp.oldest_id, cp.complete, nxt) == (22, 1, True, STOP)


def test_walker_incremental_and_interrupted_walk() -> None:
    old = Checkpoint(stream="web:chanx", newest_id=10, oldest_id=1, complete=True)
    w = Walker("web:chanx", old, CrawlMode(pages=1))
    assert w.start() == TOP
    cp, nxt = w.on_page([26, 27, 28, 29, 30], has_older=True)
    # one page allowed, the gap 11..25 is not read: the walk is remembered, the range is not widened
    assert (cp.newest_id, cp.walk_top, cp.walk_low, nxt) == (10, 30, 26, STOP)
    w2 = Walker("web:chanx", cp, CrawlMode())
    assert w2.start() == 26  # resumes below the walk, not from the top
    cp, nxt = w2.on_page([21, 22, 23, 24, 25], has_older=True)
    assert nxt == 21 and cp.walk_low == 21
    cp, nxt = w2.on_page([9, 10, 15, 20], has_older=True)
    assert (cp.newest_id, cp.oldest_id, cp.walk_top, cp.complete) == (30, 1, None, True)
    assert nxt == TOP  # then look for messages newer than the closed walk


# ------------------------------------------------------------------------------------ against a server


async def test_full_crawl_paginates_and_recrawl_changes_nothing(
    ingest: Ingest, store: Store, site: FixtureSite
) -> None:
    first = await _crawl(ingest, site)
    assert first.status == "ok", first.errors
    assert await _stored_ids(store) == list(range(1, 23))
    assert (first.pages, first.new) == (5, 22)
    assert first.checkpoint is not None and first.checkpoint.complete
    assert (first.checkpoint.newest_id, first.checkpoint.oldest_id) == (22, 1)
    site.ids += [23, 24]
    site.texts[22] = "message 22, edited"
    again = await _crawl(ingest, site)
    assert again.pages == 1 and again.new == 2 and again.updated == 1
    assert await _stored_ids(store) == list(range(1, 25))
    doc = await store["messages"].find_one({"_id": "chanx/12"})
    assert doc is not None and doc["views"] == 1200 and doc["hashtags"] == ["tag0"]


async def test_pages_and_since_limits(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    two = await _crawl(ingest, site, CrawlMode(pages=2))
    assert two.pages == 2 and await _stored_ids(store) == list(range(13, 23))
    site.ids += list(range(23, 31))
    since = await _crawl(ingest, site, CrawlMode(since=24))
    assert since.pages == 2 and 25 in await _stored_ids(store)


async def test_429_with_retry_after_and_5xx_are_retried(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    site.faults["/s/chanx"] = ["429:1", "503", "500"]
    summary = await _crawl(ingest, site, CrawlMode(pages=1))
    assert summary.status == "ok" and summary.pages == 1
    assert site.hits.count("/s/chanx") == 4
    assert await _stored_ids(store) == list(range(18, 23))


async def test_long_retry_after_is_recorded_not_waited(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    site.faults["/s/chanx"] = ["429:3600"]
    recorder = StoreRunRecorder(store)
    summary = await crawl_channel(
        config.load(log_level="WARNING"),
        ingest,
        "chanx",
        base_url=site.base_url,
        recorder=recorder,
        scrapy_overrides={**FAST, "TGWATCH_MAX_RETRY_AFTER": 5},
    )
    assert summary.status == "partial" and summary.errors[0]["kind"] == "rate_limited"
    assert summary.errors[0]["retry_after"] == 3600.0
    run = await store["runs"].find_one({"_id": summary.run_id})
    assert run is not None and run["errors"] == 1 and run["status"] == "partial"


async def test_timeouts_are_retried_then_recorded(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    site.faults["/s/chanx"] = ["slow:3"]
    ok = await _crawl(ingest, site, CrawlMode(pages=1))
    assert ok.status == "ok" and site.hits.count("/s/chanx") == 2
    site.faults["/s/chanx"] = ["slow:3"] * 3
    failed = await _crawl(ingest, site, CrawlMode(pages=1), RETRY_TIMES=2)
    assert failed.status == "partial" and "Timeout" in str(failed.errors[0]["message"])


async def test_truncated_page_is_refetched_and_kept(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    site.faults["/s/chanx?before=18"] = ["truncate"]
    summary = await _crawl(ingest, site)
    assert summary.status == "ok" and site.hits.count("/s/chanx?before=18") == 2
    assert await _stored_ids(store) == list(range(1, 23))
    site.faults["/s/chanx?before=18"] = ["truncate"] * 3
    await store["messages"].delete_many({})
    await store["checkpoints"].delete_many({})
    bad = await _crawl(ingest, site)
    assert bad.status == "partial" and {e["kind"] for e in bad.errors} == {"bad_page"}
    assert all(e["url"] == f"{site.base_url}/s/chanx?before=18" for e in bad.errors)
    stored = await _stored_ids(store)
    assert 13 in stored and 22 in stored  # what the cut page held, and everything around it
    assert bad.checkpoint is not None and bad.checkpoint.extra.get("gaps")
    fixed = await _crawl(ingest, site)  # the recorded gap is fetched first on the next run
    assert await _stored_ids(store) == list(range(1, 23))
    assert fixed.checkpoint is not None and not fixed.checkpoint.extra.get("gaps")


async def test_no_preview_and_missing_username_states(ingest: Ingest, store: Store, site: FixtureSite) -> None:
    site.no_preview.add("quiet")
    quiet = await _crawl(ingest, site, target="quiet")
    assert quiet.status == "ok" and quiet.state is ChannelState.NO_PREVIEW and quiet.pages == 0
    doc = await store["channels"].find_one({"username": "quiet"}) or await store["channels"].find_one({"_id": "quiet"})
    assert doc is not None
    missing = await _crawl(ingest, site, target="nobody_here")
    assert missing.state is ChannelState.NOT_FOUND and missing.state_reason
    private = await _crawl(ingest, site, target="https://t.me/+AbCdEfGhIjKlMnOp")
    assert private.status == "failed" and private.errors[0]["kind"] == "access_denied"


# ------------------------------------------------------------------------------------ kill -9 and resume

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import spiders.runner
    import config
    from crawler.crawl_web import crawl_channel
    from crawler.ingest import Ingest
    from storage.client import Store
    from pymongo import AsyncMongoClient

    async def main(uri, dbname, base):
        client = AsyncMongoClient(uri, tz_aware=True)
        store = Store(client=client, db=client[dbname], uri=uri, kind="embedded")
        s = await crawl_channel(config.load(log_level="WARNING"), Ingest(store), "chanx", base_url=base,
                                scrapy_overrides={"AUTOTHROTTLE_ENABLED": False})
        print("DONE", s.pages, flush=True)

    asyncio.run(main(*sys.argv[1:4]))
    """
)


@pytest.mark.slow
async def test_resume_after_kill_9_loses_and_duplicates_nothing(
    ingest: Ingest, store: Store, site: FixtureSite, embedded_uri: str, tmp_path: Path
) -> None:
    site.ids = list(range(1, 61))  # 12 pages
    for page_before in (46, 41, 36, 31, 26, 21, 16, 11, 6):
        site.faults[f"/s/chanx?before={page_before}"] = ["slow:0.3"]
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    args = [sys.executable, str(script), embedded_uri, store.db.name, site.base_url]
    child = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180  # hang guard only: the child's own progress is what we wait for
        while True:  # until a few pages are stored, then kill mid-walk
            await asyncio.sleep(0.05)
            cp = await ingest.checkpoint("web:chanx")
            if cp is not None and cp.oldest_id is not None and cp.oldest_id <= 36:
                break
            assert child.poll() is None, f"the crawl ended before the kill: {child.communicate()[1].decode()[-800:]}"
            assert time.monotonic() < deadline, "the crawl stored no pages within 180 s"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    killed_at = await ingest.checkpoint("web:chanx")
    assert killed_at is not None and not killed_at.complete
    before_kill = await _stored_ids(store)
    assert before_kill and before_kill[-1] == 60
    site.faults.clear()
    # the fixture server runs on this loop: the rerun must not block it
    rerun = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(rerun.communicate(), timeout=180)
    finally:  # the guard fired: do not leave the rerun behind
        if rerun.returncode is None:
            rerun.kill()
            await rerun.wait()
    assert rerun.returncode == 0, err.decode()[-2000:]
    assert await _stored_ids(store) == list(range(1, 61))  # nothing missing, no duplicate _id possible
    assert await store["messages"].count_documents({"channel": "chanx"}) == 60
    done = await ingest.checkpoint("web:chanx")
    assert done is not None and done.complete and (done.oldest_id, done.newest_id) == (1, 60)
    # the rerun resumed: it did not walk the already stored newest pages again
    resumed_hits = [h for h in site.hits if h.startswith("/s/chanx")]
    assert resumed_hits.count("/s/chanx?before=56") <= 2


def test_pages_mode_rereads_stored_pages_to_catch_edits() -> None:
    """--pages N reads N pages from the top even where a complete checkpoint already covers them."""
    from foundation.models import Checkpoint
    from spiders.tme_channel import STOP, TOP

    cp = Checkpoint(stream="web:chanx", newest_id=100, oldest_id=1, complete=True)
    w = Walker("web:chanx", cp, CrawlMode(pages=3))
    assert w.start() == TOP
    cp1, nxt = w.on_page(list(range(81, 101)), has_older=True)
    assert nxt == 81 and cp1.newest_id == 100 and cp1.complete
    cp2, nxt = w.on_page(list(range(61, 81)), has_older=True)
    assert nxt == 61 and cp2.newest_id == 100 and cp2.oldest_id == 1
    _, nxt = w.on_page(list(range(41, 61)), has_older=True)
    assert nxt == STOP
    default = Walker("web:chanx", cp, CrawlMode())
    assert default.start() == TOP
    assert default.on_page(list(range(81, 101)), has_older=True)[1] == STOP, "without --pages: only what is new"
