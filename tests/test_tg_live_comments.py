"""Comments live: a watched channel's discussion group is watched too (fake Telegram, real Telethon).

A comment posted while the watcher runs is stored with its thread root by the thread's checkpointed
walk; an edited comment becomes a new version; a deleted one gets ``deleted_at``. Before this, the
watcher followed only the channel itself, and comments waited for the next catch-up or resync.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from crawler.ingest import Ingest
from storage.client import Store
from storage.repos import MessageRepo
from telegram_watch import threads
from telegram_watch.backfill import Backfill
from telegram_watch.entities import Target
from telegram_watch.fake import extras as X
from telegram_watch.fake.model import FakeChannel, FakeUser
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.live import Watcher
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="live-comments")


@pytest.fixture
def watcher_account(world: FakeTelegram) -> FakeUser:
    return world.add_account("watcher")


@pytest.fixture
def chat(world: FakeTelegram, watcher_account: FakeUser) -> tuple[FakeChannel, FakeChannel]:
    """A public channel whose comments live in a private discussion group both joined by the watcher."""
    ch = world.add_channel("Leaks", username="leaks_live")
    group = world.add_channel("Leaks chat", megagroup=True, private=True, username=None)
    X.link_discussion(ch, group)
    world.join(watcher_account, ch)
    world.join(watcher_account, group)
    return ch, group


@pytest.fixture
async def pool(world: FakeTelegram, watcher_account: FakeUser, chat: Any) -> AsyncIterator[AccountPool]:
    p = pool_over(world, watcher_account)
    yield p
    await p.close()


async def docs(store: Store, key: str) -> dict[int, dict[str, Any]]:
    return {d["msg_id"]: d for d in await MessageRepo(store).query(channel=key, limit=10_000)}


async def settle_until(watcher: Watcher, condition: Callable[[], Any], rounds: int = 300) -> None:
    """Let update delivery and the watcher's work run until ``condition()`` holds (bounded, not timed)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
        await watcher.drain()
        got = condition()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        await asyncio.sleep(0.01)


async def test_a_live_comment_is_stored_with_its_thread_root_and_its_edit_and_deletion_recorded(
    world: FakeTelegram, chat: tuple[FakeChannel, FakeChannel], pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = chat
    gina = world.add_user("Gina", username="gina_g")
    old_post = world.add_message(ch, "older post")
    X.add_comment(world, ch, old_post, "early comment", sender=gina)
    watcher = Watcher(pool, ingest, [Target.parse("leaks_live")])
    group_key = f"id{group.id}"
    try:
        await watcher.start()
        assert group.id in watcher.discussions
        assert sorted(d["text"] for d in (await docs(store, group_key)).values()) == ["early comment", "older post"]
        catch_ups = watcher.counts["catch_ups"]

        # 1. a comment under an existing post: no channel message comes with it, only the group's update
        live = X.post_comment(world, ch, old_post, "live comment", sender=gina)
        await settle_until(watcher, lambda: _has(store, group_key, live.id))
        stored = (await docs(store, group_key))[live.id]
        assert (stored["text"], stored["thread_root"]) == ("live comment", old_post.extra.discussion[1])
        assert watcher.counts["comment_signals"] >= 1 and watcher.counts["catch_ups"] == catch_ups

        # 2. the first comment of a post published live: the group's copy arrives first, then the comment
        new_post = world.post(ch, "new post")
        first = X.post_comment(world, ch, new_post, "first!", sender=gina)
        reply = X.post_comment(world, ch, new_post, "answering first", sender=gina, reply_to=first.id)
        await settle_until(watcher, lambda: _has(store, group_key, reply.id))
        got = await docs(store, group_key)
        root = new_post.extra.discussion[1]
        assert (got[first.id]["thread_root"], got[reply.id]["thread_root"], got[reply.id]["reply_to"]) == (
            root, root, first.id,
        )  # fmt: skip
        assert got[root]["thread_root"] == root  # the copy of the post, stored as the thread's root
        cp = await ingest.checkpoint(threads.thread_stream(ch.id, new_post.id))
        assert cp is not None and cp.newest_id == reply.id  # the thread's own checkpoint moved

        # 3. a plain group message (no thread) is not followed, as in backfill
        plain = world.post(group, "hello group", sender=gina)
        await settle_until(watcher, lambda: watcher.counts["comment_signals"] >= 3)
        await watcher.drain()
        assert plain.id not in await docs(store, group_key)

        # 4. an edit of a comment: a new version with its thread root
        world.edit(group, live.id, "live comment (edited)")
        await settle_until(watcher, lambda: _versions(store, f"{group_key}/{live.id}", 2))
        versions = await MessageRepo(store).versions(f"{group_key}/{live.id}")
        assert [v["text"] for v in versions] == ["live comment", "live comment (edited)"]
        assert (await docs(store, group_key))[live.id]["thread_root"] == old_post.extra.discussion[1]

        # 5. a deletion in the group marks the comment deleted (nothing removed)
        world.delete(group, [first.id])
        await settle_until(watcher, lambda: _deleted(store, f"{group_key}/{first.id}"))
        gone = await MessageRepo(store).get(f"{group_key}/{first.id}")
        assert gone is not None and gone["deleted_at"] is not None and gone["text"] == "first!"
    finally:
        await watcher.stop()


async def test_live_thread_walks_are_capped_between_resyncs_and_the_rest_stays_pending(
    world: FakeTelegram, chat: tuple[FakeChannel, FakeChannel], pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = chat
    gina = world.add_user("Gina", username="gina_g")
    posts = [world.add_message(ch, f"post {i}") for i in range(3)]
    watcher = Watcher(pool, ingest, [Target.parse("leaks_live")], backfill=Backfill(pool, ingest, max_threads=1))
    try:
        await watcher.start()
        assert watcher.client is not None
        await watcher.client.disconnect()  # the comments pile up while nobody listens …
        comments = [X.post_comment(world, ch, p, f"comment {i}", sender=gina) for i, p in enumerate(posts)]
        watcher.client = None
        for c in comments:  # … and arrive together as signals (the live path, one window)
            watcher.signal_thread(ch.id, int(c.extra.thread_root), c.id)
        await watcher.drain()
        stored = await docs(store, f"id{group.id}")
        assert sum(c.id in stored for c in comments) == 1
        assert (watcher.counts["thread_walks"], watcher.counts["comments_deferred"]) == (1, 2)
        cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
        assert cp is not None and len(cp.extra[threads.PENDING]) == 2  # read by the resync's catch-up
    finally:
        await watcher.stop()


async def _has(store: Store, key: str, msg_id: int) -> bool:
    return msg_id in await docs(store, key)


async def _versions(store: Store, key: str, n: int) -> bool:
    return len(await MessageRepo(store).versions(key)) >= n


async def _deleted(store: Store, key: str) -> bool:
    doc = await MessageRepo(store).get(key)
    return doc is not None and doc.get("deleted_at") is not None
