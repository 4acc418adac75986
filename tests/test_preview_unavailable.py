"""When the web preview cannot be had: "No posts found", an unreachable host, a bot, no preview at all.

A local aiohttp t.me look-alike (synthetic pages) serves the channel ``chanx``; ``quiet`` has no
preview (``/s/quiet`` redirects to its profile page), ``synth_bot`` is a bot. Crawls run through the
real spider, ingest and store; the preview-less target goes through the scheduler's real web runner
(``run_web``) with the account pool as the store holds it.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

import config
from config import Settings
from config.targets import TargetsConfig
from crawler.crawl_web import StoreRunRecorder, crawl_channel
from crawler.ingest import Ingest
from crawler.scheduling.plan import build_schedules
from crawler.scheduling.runners import RunContext, run_web
from crawler.scheduling.tasks import TaskSpec
from foundation.models import ChannelState
from spiders.tme_channel import stream_name
from storage.client import Store
from storage.repos.accounts import AccountRepo
from storage.repos.runs import RunRepo
from storage.repos.targets import TargetRepo
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from tests.loopback_site import serve_tme
from tests.test_scheduling_support import env_for, tgwatch
from tests.test_tg_support import pool_over
from tests.test_tme_spider import FAST, PROFILE, render_page

NO_POSTS = (
    '<!DOCTYPE html><html><head><title>chanx</title></head><body><section class="tgme_channel_history '
    'js-message_history"><div class="tme_no_messages_found">No posts found</div></section></body></html>'
)
BOT_PROFILE = """<!DOCTYPE html><html><head><title>Telegram: Launch @{name}</title></head><body>
<div class="tgme_page"><div class="tgme_page_title"><span dir="auto">Synth Helper</span></div>
<div class="tgme_page_extra">48 210 monthly users</div><div class="tgme_page_description">A helper bot.</div>
<div class="tgme_page_action"><a href="tg://resolve?domain={name}">Start Bot</a></div></div></body></html>"""


@dataclass
class Site:
    no_posts: int = 0  # how many top-page answers say "No posts found" before the real page
    undated: bool = False  # messages without their date footer (the 2026 markup)
    hits: list[str] = field(default_factory=list)
    base_url: str = ""

    async def preview(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(request.path_qs)
        if name != "chanx":
            raise web.HTTPFound(f"/{name}")
        if self.no_posts > 0:
            self.no_posts -= 1
            return web.Response(text=NO_POSTS, content_type="text/html")
        html = render_page("chanx", [(1, "one"), (2, "two")], None)
        if self.undated:
            html = re.sub(r'<span class="tgme_widget_message_meta">.*?</span>', "", html)
        return web.Response(text=html, content_type="text/html")

    async def profile(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = BOT_PROFILE if name.endswith("_bot") else PROFILE
        if name.startswith("sensitive"):
            body = body.replace("A quiet channel.", "This channel may contain sensitive content.")
        return web.Response(text=body.format(name=name), content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    fixture = Site()
    async with serve_tme(fixture.preview, fixture.profile) as base_url:
        fixture.base_url = base_url
        yield fixture


def _closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the spider -----------------------------------------------------------------------------------


async def test_no_posts_found_is_a_possible_throttle_retried_later(ingest: Ingest, store: Store, site: Site) -> None:
    site.no_posts = 1
    settings = config.load(log_level="WARNING")
    recorder = StoreRunRecorder(store)
    first = await crawl_channel(
        settings, ingest, "chanx", base_url=site.base_url, recorder=recorder, scrapy_overrides=FAST
    )
    assert first.status == "partial" and first.messages == 0
    assert [e["kind"] for e in first.errors] == ["possible_throttle"]
    assert first.errors[0]["retry_after"] > 0
    checkpoint = await ingest.checkpoint(stream_name("chanx"))
    assert checkpoint is None or not (checkpoint.complete or checkpoint.extra.get("empty"))  # not "empty"
    run = await RunRepo(store).get(str(first.run_id))
    assert run is not None and run["errors"] == 1
    errors = await store["errors"].find({"run_id": first.run_id}).to_list(None)
    assert [e["kind"] for e in errors] == ["possible_throttle"]

    second = await crawl_channel(settings, ingest, "chanx", base_url=site.base_url, scrapy_overrides=FAST)
    assert second.status == "ok" and second.new == 2  # the next run reads the channel


async def test_undated_messages_are_stored_and_counted_on_the_run(ingest: Ingest, store: Store, site: Site) -> None:
    site.undated = True
    settings = config.load(log_level="WARNING")
    recorder = StoreRunRecorder(store)
    summary = await crawl_channel(
        settings, ingest, "chanx", base_url=site.base_url, recorder=recorder, scrapy_overrides=FAST
    )
    assert (summary.status, summary.new, summary.undated) == ("ok", 2, 2)
    docs = await store["messages"].find({"channel": "chanx"}).sort("msg_id", 1).to_list(None)
    assert [(d["msg_id"], d["text"], d["date"]) for d in docs] == [(1, "one", None), (2, "two", None)]
    run = await RunRepo(store).get(str(summary.run_id))
    assert run is not None and run["counts"]["undated"] == 2


async def test_unreachable_host_falls_back_to_the_next(ingest: Ingest, store: Store, site: Site) -> None:
    dead = _closed_port_url()
    settings = config.load(log_level="WARNING")
    summary = await crawl_channel(
        settings, ingest, "chanx", base_url=dead, fallback_bases=[site.base_url],
        scrapy_overrides={**FAST, "RETRY_TIMES": 0},
    )  # fmt: skip
    assert summary.status == "ok" and summary.new == 2
    assert site.hits == ["/s/chanx"]


def test_t_me_falls_back_to_telegram_me_and_test_bases_to_nothing() -> None:
    assert Settings().web_fallbacks() == ["https://telegram.me"]
    assert Settings(telegram_web_base="http://127.0.0.1:9").web_fallbacks() == []
    assert Settings(telegram_web_fallbacks=["https://mirror.example"]).web_fallbacks() == ["https://mirror.example"]


async def test_bot_profile_monthly_users_reach_the_channel_snapshot(ingest: Ingest, store: Store, site: Site) -> None:
    settings = config.load(log_level="WARNING")
    summary = await crawl_channel(settings, ingest, "synth_bot", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.state is ChannelState.INVALID
    snap = await store["channel_snapshots"].find_one({})
    assert snap is not None and snap["kind"] == "bot"
    assert snap["counters"]["monthly_users"] == 48_210


async def test_sensitive_redirect_is_a_previewless_state_with_its_reason(
    ingest: Ingest, store: Store, site: Site
) -> None:
    settings = config.load(log_level="WARNING")
    summary = await crawl_channel(settings, ingest, "sensitive_room", base_url=site.base_url, scrapy_overrides=FAST)
    assert summary.state is ChannelState.NO_PREVIEW and summary.status == "ok"
    assert summary.state_reason is not None and "sensitive content" in summary.state_reason


# --- a target without a preview -------------------------------------------------------------------


def _settings(base_url: str, tmp_path: Path, **more: object) -> Settings:
    return Settings(
        telegram_web_base=base_url, data_dir=tmp_path, http={"autothrottle": False, "retry_times": 1}, **more
    )


async def _run_quiet(
    store: Store, ingest: Ingest, settings: Settings, pool: AccountPool | None = None
) -> tuple[str, dict[str, object]]:
    await TargetRepo(store).add("quiet", method="web", every="1h")
    task = TaskSpec("https://t.me/quiet/1", "https://t.me/quiet", "quiet", "web", 1)
    ctx = RunContext(settings, store, ingest, consumer="t", scrapy_overrides=FAST, account_pool=pool)
    try:
        outcome = await run_web(ctx, task)
    finally:
        await ctx.aclose()
    run = await RunRepo(store).get(str(outcome.run_id))
    assert run is not None
    return outcome.status, run


async def test_previewless_target_switches_to_mtproto_when_an_account_can_read_it(
    store: Store, ingest: Ingest, site: Site, tmp_path: Path
) -> None:
    await AccountRepo(store).add("acct1", session_enc="sealed-session", phone_enc=None, user_id=1, proxy=None)
    settings = _settings(site.base_url, tmp_path, telegram={"api_id": 1, "api_hash": "synthetic-hash"})
    world = FakeTelegram(seed="quiet")
    world.add_channel("Quiet", username="quiet")  # the account can read it: the switch is verified first
    status, run = await _run_quiet(store, ingest, settings, pool_over(world, world.add_account("acct1")))
    assert status == "ok"
    doc = await TargetRepo(store).get_key("https://t.me/quiet")
    assert doc is not None and doc["method"] == "mtproto"
    (change,) = doc["method_changes"]
    assert (change["from"], change["to"], change["state"]) == ("web", "mtproto", "no_preview")
    assert "redirects" in change["reason"] and change["run_id"] == run["_id"]
    assert run["method_switch"]["action"] == "switched"
    (schedule,) = build_schedules(TargetsConfig(), await TargetRepo(store).list())
    assert schedule.method == "mtproto"  # the next due run reads it over MTProto


async def test_previewless_target_without_accounts_is_reported_unreachable(
    store: Store, ingest: Ingest, site: Site, tmp_path: Path
) -> None:
    settings = _settings(site.base_url, tmp_path, telegram={"api_id": 1, "api_hash": "synthetic-hash"})
    status, run = await _run_quiet(store, ingest, settings)
    assert status == "unreachable"
    doc = await TargetRepo(store).get_key("https://t.me/quiet")
    assert doc is not None and doc["method"] == "web" and "method_changes" not in doc
    assert "no usable MTProto account" in doc["unreachable"]["reason"]
    assert run["method_switch"] == {"action": "unreachable", "reason": doc["unreachable"]["reason"]}


async def test_auto_mtproto_off_keeps_the_target_on_the_web(
    store: Store, ingest: Ingest, site: Site, tmp_path: Path
) -> None:
    await AccountRepo(store).add("acct1", session_enc="sealed-session", phone_enc=None, user_id=1, proxy=None)
    settings = _settings(
        site.base_url, tmp_path, telegram={"api_id": 1, "api_hash": "synthetic-hash"},
        target_policy={"auto_mtproto": False},
    )  # fmt: skip
    status, _ = await _run_quiet(store, ingest, settings)
    doc = await TargetRepo(store).get_key("https://t.me/quiet")
    assert status == "unreachable" and doc is not None and doc["method"] == "web"
    assert "auto_mtproto is off" in doc["unreachable"]["reason"]


@pytest.mark.slow
async def test_targets_list_shows_why_a_target_is_unreachable(
    store: Store, embedded_uri: str, site: Site, tmp_path: Path
) -> None:
    env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
    for args in (("targets", "add", "quiet", "--every", "1h"), ("run-now", "quiet")):
        proc = await asyncio.create_subprocess_exec(
            *tgwatch(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
    proc = await asyncio.create_subprocess_exec(
        *tgwatch("targets", "list"), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    (line,) = out.decode().splitlines()
    assert line.startswith("https://t.me/quiet") and " web " in line
    assert "UNREACHABLE: " in line and "no usable MTProto account in the pool" in line
