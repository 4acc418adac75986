"""Issue #19's "Done when", end to end through the scheduler: targets without a web preview are switched
to MTProto by a scheduled web run, then followed by the scheduler's MTProto runs with their comments and
forum topics; a bot named in a post's button is tracked and proposed as a web target of its own (the
snowball stage of ingest, as ``open_pipeline`` installs it), crawled only once approved, and each of its
runs records its "monthly users" on a channel snapshot (the series the growth chart is drawn from).

Real parts only: a loopback aiohttp t.me look-alike (synthetic pages: every ``/s/NAME`` redirects to
the profile page, which is how t.me answers for a channel without a preview), the real spider and
ingest, the scheduler (``Daemon`` on an injected clock, ``Worker`` with the product runners), the fake
Telegram behind real Telethon clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from config import Settings
from config.targets import TargetsConfig
from crawler.audit import AuditLog
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage
from crawler.ingest import Ingest
from crawler.scheduling import manage
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.runners import RunContext
from crawler.scheduling.worker import Worker
from foundation.models import ChannelRef
from storage.client import Store
from storage.repos import ChannelRepo, MessageRepo
from storage.repos.accounts import AccountRepo
from storage.repos.targets import TargetRepo
from telegram_watch.fake import extras as X
from telegram_watch.fake.model import FakeUser
from telegram_watch.fake.world import FakeTelegram
from tests.loopback_site import serve_tme
from tests.test_scheduling_support import env_for, tgwatch
from tests.test_tg_support import pool_over
from tests.test_tme_spider import FAST, PROFILE

START = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC).timestamp()
SIX_HOURS = 6 * 3600.0
BOT_PAGE = """<!DOCTYPE html><html><head><title>Telegram: Launch @{name}</title></head><body>
<div class="tgme_page"><div class="tgme_page_title"><span dir="auto">Vault</span></div>
<div class="tgme_page_extra">{users} monthly users</div><div class="tgme_page_description">Sends the files.</div>
<div class="tgme_page_action"><a href="tg://resolve?domain={name}">Start Bot</a></div></div></body></html>"""


@dataclass
class NoPreviewSite:
    """t.me without previews: ``/s/NAME`` → ``/NAME``; a bot's page shows its monthly users."""

    monthly_users: int = 48_210
    hits: list[str] = field(default_factory=list)
    base_url: str = ""

    async def preview(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        raise web.HTTPFound(f"/{request.match_info['name']}")

    async def profile(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits.append(request.path)
        users = f"{self.monthly_users:,}".replace(",", " ")
        body = BOT_PAGE.format(name=name, users=users) if name.endswith("_bot") else PROFILE.format(name=name)
        return web.Response(text=body, content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[NoPreviewSite]:
    fixture = NoPreviewSite()
    async with serve_tme(fixture.preview, fixture.profile) as base_url:
        fixture.base_url = base_url
        yield fixture


def settings_for(base_url: str, data_dir: Path, **more: Any) -> Settings:
    return Settings(
        telegram_web_base=base_url, data_dir=data_dir, http={"autothrottle": False, "retry_times": 1},
        telegram={"api_id": 1, "api_hash": "synthetic-hash"}, **more,
    )  # fmt: skip


class Scheduler:
    """The daemon on a clock the test moves, and one worker draining what is due."""

    def __init__(self, store: Store, ctx: RunContext) -> None:
        self.now = START
        self.store = store
        self.ctx = ctx
        self.daemon = Daemon(store, TargetsConfig, clock=lambda: self.now)

    async def cycle(self, advance: float = 0.0) -> None:
        self.now += advance
        await self.daemon.sync()  # picks up method switches and new targets
        await self.daemon.tick(self.daemon.now())  # enqueues every target's latest due time
        await self.store["crawl_tasks"].update_many({"state": "ready"}, {"$set": {"available_at": 0}})  # no jitter
        report = await Worker(self.ctx, poll_seconds=0.05).run(asyncio.Event(), until_idle=True)
        assert report.nacked == 0


async def runs_of(store: Store, target: str) -> list[dict[str, Any]]:
    return sorted(await store["runs"].find({"target": target}).to_list(None), key=lambda r: r["started_at"])


async def register_account(store: Store, user: FakeUser) -> None:
    """The store's view of the account the pool logs in with (what the switch's policy looks at)."""
    await AccountRepo(store).add(str(user.username), session_enc="sealed", phone_enc=None, user_id=user.id, proxy=None)


async def test_a_previewless_channel_and_forum_are_followed_over_mtproto_and_a_bot_is_charted(
    store: Store, ingest: Ingest, site: NoPreviewSite, tmp_path: Path
) -> None:
    world = FakeTelegram(seed="reach-end-to-end")
    alice = world.add_account("alice")
    carol = world.add_user("Carol", username="carol_c")
    ch = world.add_channel("Leaks", username="leaks_chan")
    group = world.add_channel("Leaks chat", megagroup=True, private=True, username=None)
    X.link_discussion(ch, group)
    posts = [world.add_message(ch, f"post {i}") for i in range(1, 4)]
    X.add_buttons(posts[1], [[("Full video", "https://t.me/Vault_DL_bot?start=abc")]])
    X.add_bot(world, "Vault", "vault_dl_bot", description="Sends the files")
    first = X.add_comment(world, ch, posts[0], "where is the rest?", sender=carol)
    last = X.add_comment(world, ch, posts[2], "me too", sender=carol)
    forum = world.add_channel("Swap forum", username="swap_forum", megagroup=True)
    topic = X.add_topic(world, forum, "Requests", creator=carol)
    in_topic = X.add_topic_message(world, forum, topic, "anyone?", sender=carol)
    await register_account(store, alice)
    targets = TargetRepo(store)
    for name in ("leaks_chan", "swap_forum"):
        await targets.add(name, method="web", every="6h", jitter="0s")

    ingest.add_stage(SnowballStage(DiscoveryService(store)), after="persist")  # as ``open_pipeline`` does
    ctx = RunContext(settings_for(site.base_url, tmp_path), store, ingest, consumer="w", scrapy_overrides=FAST)
    ctx.account_pool = pool_over(world, alice)
    scheduler = Scheduler(store, ctx)
    try:
        # 1. the scheduled web runs find no preview and switch both targets to MTProto
        await scheduler.cycle()
        for key in ("https://t.me/leaks_chan", "https://t.me/swap_forum"):
            (web_run,) = await runs_of(store, key)
            assert (web_run["method"], web_run["method_switch"]["action"]) == ("web", "switched")
            doc = await targets.get_key(key)
            assert doc is not None and doc["method"] == "mtproto" and "unreachable" not in doc
        assert await store["messages"].count_documents({}) == 0

        # 2. the next due runs are MTProto runs: posts, comments with their thread root, topic messages, the bot
        await scheduler.cycle(SIX_HOURS)
        _, chan_run = await runs_of(store, "https://t.me/leaks_chan")
        assert (chan_run["method"], chan_run["status"]) == ("mtproto", "ok")
        counts = chan_run["counts"]
        assert (counts["comments"], counts["threads"], counts["bots"]) == (2, 2, 1)
        _, forum_run = await runs_of(store, "https://t.me/swap_forum")
        assert (forum_run["method"], forum_run["status"], forum_run["counts"]["topics"]) == ("mtproto", "ok", 1)

        messages = MessageRepo(store)
        chan_key = await ingest.resolve_channel(ChannelRef(username="leaks_chan", tg_id=ch.id))
        forum_key = await ingest.resolve_channel(ChannelRef(username="swap_forum", tg_id=forum.id))
        assert chan_key is not None and forum_key is not None  # the web run's record, now known by id too
        chan_docs = {d["msg_id"]: d for d in await messages.query(channel=chan_key, limit=100)}
        assert sorted(chan_docs) == sorted(p.id for p in posts)
        comments = {d["msg_id"]: d for d in await messages.query(channel=f"id{group.id}", limit=100)}
        assert comments[first.id]["thread_root"] == posts[0].extra.discussion[1]
        assert comments[last.id]["thread_root"] == posts[2].extra.discussion[1]
        forum_docs = {d["msg_id"]: d for d in await messages.query(channel=forum_key, limit=100)}
        assert forum_docs[in_topic.id]["topic_id"] == topic.id
        latest = (await ChannelRepo(store).get(forum_key))["latest"]
        assert [t["title"] for t in latest["topics"]] == ["Requests"]

        bot_key = await ingest.resolve_channel(ChannelRef(username="vault_dl_bot"))
        assert bot_key is not None
        assert (await ChannelRepo(store).get(bot_key))["latest"]["kind"] == "bot"
        bot_target = await targets.get_key("https://t.me/vault_dl_bot")
        assert bot_target is not None
        assert (bot_target["method"], bot_target["source"], bot_target["status"], bot_target["found_in"]) == (
            "web", "bot", "proposed", chan_key,
        )  # fmt: skip
        assert bot_target["proposed"]["message"] == f"{chan_key}/{posts[1].id}"
        assert bot_target["proposed"]["button_text"] == "Full video"
        await scheduler.cycle(SIX_HOURS)  # proposed: not crawled
        assert await runs_of(store, "https://t.me/vault_dl_bot") == []
        await manage.review_target(store, AuditLog(store), manage.Actor("cli:t", "cli", "cli"), "vault_dl_bot",
                                   approve=True)  # fmt: skip

        # 3. each scheduled run of the bot records its monthly users on a snapshot of the same channel
        await scheduler.cycle(SIX_HOURS)
        site.monthly_users = 52_400
        await scheduler.cycle(SIX_HOURS)
        bot_runs = await runs_of(store, "https://t.me/vault_dl_bot")
        assert [r["method"] for r in bot_runs] == ["web", "web"]
        snaps = await store["channel_snapshots"].find({"channel": bot_key}).sort("seen_at", 1).to_list(None)
        figures = [s["counters"]["monthly_users"] for s in snaps if (s.get("counters") or {}).get("monthly_users")]
        assert figures == [48_210, 52_400]
        assert (await targets.get_key("https://t.me/vault_dl_bot") or {}).get("method") == "web"  # not switched
    finally:
        await ctx.aclose()


async def test_a_previewless_target_mtproto_cannot_read_is_unreachable_with_the_mtproto_error(
    store: Store, ingest: Ingest, site: NoPreviewSite, tmp_path: Path
) -> None:
    """The switch is verified first: an account exists, but MTProto finds no such channel."""
    world = FakeTelegram(seed="reach-unreadable")
    alice = world.add_account("alice")
    await register_account(store, alice)
    targets = TargetRepo(store)
    await targets.add("gone_chan", method="web", every="6h", jitter="0s")
    ctx = RunContext(settings_for(site.base_url, tmp_path), store, ingest, consumer="w", scrapy_overrides=FAST)
    ctx.account_pool = pool_over(world, alice)
    try:
        await Scheduler(store, ctx).cycle()
    finally:
        await ctx.aclose()
    (run,) = await runs_of(store, "https://t.me/gone_chan")
    assert run["status"] == "unreachable" and run["method_switch"]["action"] == "unreachable"
    doc = await targets.get_key("https://t.me/gone_chan")
    assert doc is not None and doc["method"] == "web" and "method_changes" not in doc
    assert "MTProto cannot read it" in doc["unreachable"]["reason"]
    assert "redirects" in doc["unreachable"]["reason"]  # what the web run saw stays in the reason


async def test_a_switched_target_whose_mtproto_read_fails_is_marked_unreachable(
    store: Store, ingest: Ingest, site: NoPreviewSite, tmp_path: Path, embedded_uri: str
) -> None:
    """Readable at the switch, banned by the next run: the MTProto run says so on the target."""
    world = FakeTelegram(seed="reach-banned-later")
    alice = world.add_account("alice")
    ch = world.add_channel("Soon gone", username="soon_gone")
    world.fill_history(ch, 3)
    await register_account(store, alice)
    targets = TargetRepo(store)
    await targets.add("soon_gone", method="web", every="6h", jitter="0s")
    ctx = RunContext(settings_for(site.base_url, tmp_path), store, ingest, consumer="w", scrapy_overrides=FAST)
    ctx.account_pool = pool_over(world, alice)
    scheduler = Scheduler(store, ctx)
    try:
        await scheduler.cycle()
        assert (await targets.get_key("https://t.me/soon_gone") or {})["method"] == "mtproto"
        world.ban_channel(ch)
        await scheduler.cycle(SIX_HOURS)
    finally:
        await ctx.aclose()
    _, mtproto_run = await runs_of(store, "https://t.me/soon_gone")
    assert mtproto_run["method"] == "mtproto" and mtproto_run["status"] != "ok"
    doc = await targets.get_key("https://t.me/soon_gone")
    assert doc is not None and doc["unreachable"]["reason"].startswith("MTProto cannot read it")
    assert doc["unreachable"]["run_id"] == mtproto_run["_id"]
    env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *tgwatch("targets", "list"), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    (line,) = out.decode().splitlines()
    assert line.startswith("https://t.me/soon_gone") and " mtproto " in line
    assert "UNREACHABLE: MTProto cannot read it" in line


async def test_scheduled_mtproto_runs_read_stories_only_when_set(
    store: Store, ingest: Ingest, site: NoPreviewSite, tmp_path: Path
) -> None:
    from telegram_watch.fake.story_handlers import add_story

    world = FakeTelegram(seed="reach-stories")
    alice = world.add_account("alice")
    ch = world.add_channel("Storyteller", username="story_chan")
    world.fill_history(ch, 2)
    add_story(world, ch, "a story caption")
    await register_account(store, alice)
    await TargetRepo(store).add("story_chan", method="mtproto", every="6h", jitter="0s")

    async def one_run(settings: Settings, advance: float) -> dict[str, Any]:
        ctx = RunContext(settings, store, ingest, consumer="w", scrapy_overrides=FAST)
        ctx.account_pool = pool_over(world, alice)
        scheduler = Scheduler(store, ctx)
        try:
            await scheduler.cycle(advance)
        finally:
            await ctx.aclose()
        return (await runs_of(store, "https://t.me/story_chan"))[-1]

    stories: Callable[[], Any] = lambda: store["messages"].count_documents({"kind": "story"})  # noqa: E731
    off = await one_run(settings_for(site.base_url, tmp_path), 0.0)
    assert "stories" not in off["counts"] and await stories() == 0
    on = await one_run(settings_for(site.base_url, tmp_path, target_policy={"mtproto_stories": True}), SIX_HOURS)
    assert on["counts"]["stories"] == 1 and await stories() == 1


async def test_a_web_worker_without_a_pool_reports_why_its_accounts_cannot_be_opened(
    store: Store, ingest: Ingest, site: NoPreviewSite, tmp_path: Path
) -> None:
    """No pool in the process and stored sessions it cannot open (no secrets key): no switch, and why."""
    await AccountRepo(store).add("acct", session_enc="sealed", phone_enc=None, user_id=1, proxy=None)
    await TargetRepo(store).add("locked_out", method="web", every="6h", jitter="0s")
    ctx = RunContext(settings_for(site.base_url, tmp_path), store, ingest, consumer="w", scrapy_overrides=FAST)
    try:
        await Scheduler(store, ctx).cycle()
    finally:
        await ctx.aclose()
    assert ctx.account_pool is None  # the probe's pool was its own, not kept open by a web worker
    doc = await TargetRepo(store).get_key("https://t.me/locked_out")
    assert doc is not None and doc["method"] == "web"
    assert "MTProto cannot read it: telegram.secrets_key is not set" in doc["unreachable"]["reason"]
