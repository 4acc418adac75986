"""MTProto reach against hostile or private data: members' private fields are never kept, and a
channel stuffing its buttons with bot links cannot turn one run into a flood of resolve requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telethon.tl import types

from crawler.ingest import Ingest
from foundation.models import ChannelRef
from storage.client import Store
from telegram_watch.backfill import Backfill
from telegram_watch.bots import MAX_NEW_BOTS_PER_RUN
from telegram_watch.fake import extras as X
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="reach-limits")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("alice", phone="15550009876"))
    yield p
    await p.close()


async def everything(store: Store) -> str:
    out: list[Any] = []
    for name in await store.db.list_collection_names():
        out.extend(await store.db[name].find({}).to_list(None))
    return json.dumps(out, default=str, ensure_ascii=False)


async def test_a_members_phone_and_bio_are_never_stored(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    """Telegram sends a user's phone to the account itself (and to contacts): the author record takes
    the display name, username and id only, and the raw capture is the message, not its author."""
    alice = next(u for u in world.users.values() if u.username == "alice")
    alice.about = "private bio line"
    group = world.add_channel("Open group", username="open_group2", megagroup=True)
    world.add_message(group, "written by the watching account itself", sender=alice)

    await Backfill(pool, ingest).run("open_group2")

    dump = await everything(store)
    assert "written by the watching account itself" in dump
    assert "15550009876" not in dump and "private bio line" not in dump


async def test_bot_links_are_resolved_at_a_bounded_rate(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    total = MAX_NEW_BOTS_PER_RUN + 10
    names = [f"spam{i:02d}_bot" for i in range(total)]
    for name in names:
        X.add_bot(world, name, name, description="spam")
    ch = world.add_channel("Spam", username="spam_chan")
    post = world.add_message(ch, "click")
    X.add_buttons(post, [[(n, f"https://t.me/{n}")] for n in names])

    first = await Backfill(pool, ingest).run("spam_chan")
    assert len(first.bots) == MAX_NEW_BOTS_PER_RUN
    assert sum(n for (_, k), n in world.calls.items() if k == "GetFullUserRequest") == MAX_NEW_BOTS_PER_RUN

    again = await Backfill(pool, ingest).run("spam_chan")  # the post is not read again: the rest were kept
    assert len(again.bots) == total - MAX_NEW_BOTS_PER_RUN
    for name in names:
        assert await ingest.resolve_channel(ChannelRef(username=name)) is not None
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert cp is not None and cp.extra["bots_pending"] == []


async def test_a_private_forums_topics_are_not_read_before_the_authorization_gate(
    world: FakeTelegram, ingest: Ingest, store: Store
) -> None:
    from foundation.errors import NotAuthorized

    agent = world.add_account("agent1")
    room = world.add_channel("Private forum", megagroup=True, private=True)
    world.join(agent, room)
    X.add_topic(world, room, "Secret topic")
    refused: list[str] = []

    async def gate(channel_key: str, accounts: list[str]) -> None:
        refused.append(channel_key)
        raise NotAuthorized("no authorization covers this chat")

    agent_pool = pool_over(world, agent)
    peer = types.InputPeerChannel(room.id, world.access_hash("channel", room.id, agent.id))
    try:
        await agent_pool.run(None, lambda c: c.get_entity(peer))  # the member's session knows the chat
        with pytest.raises(NotAuthorized):
            await Backfill(agent_pool, ingest, private_gate=gate).run(f"id{room.id}")
    finally:
        await agent_pool.close()
    assert refused == [f"id{room.id}"]
    assert world.calls[("agent1", "GetForumTopicsRequest")] == 0
    assert "Secret topic" not in await everything(store)


async def test_comment_threads_are_walked_at_a_bounded_rate_and_none_is_starved(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    """A channel with many commented posts: each run walks at most ``max_threads`` threads (the threads
    already read do not count), and every thread is read within a few runs."""
    ch = world.add_channel("Busy", username="busy_chan")
    group = world.add_channel("Busy chat", megagroup=True, private=True, username=None)
    X.link_discussion(ch, group)
    dora = world.add_user("Dora", username="dora_d")
    posts = [world.add_message(ch, f"post {i}") for i in range(8)]
    for i, p in enumerate(posts):
        X.add_comment(world, ch, p, f"comment under {i}", sender=dora)

    walked = [(await Backfill(pool, ingest, max_threads=3).run("busy_chan")).threads for _ in range(4)]

    assert walked == [3, 3, 2, 0]
    assert world.calls[("alice", "GetDiscussionMessageRequest")] == 8
    texts = {d["text"] for d in await store.db["messages"].find({"channel_key": f"id{group.id}"}).to_list(None)}
    assert {f"comment under {i}" for i in range(8)} <= texts
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert cp is not None and not cp.extra.get("comments_pending")


async def test_a_person_named_like_a_bot_leaves_no_trace_not_even_in_the_logs(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    import io

    from foundation import logs
    from telegram_watch.bots import track_bots

    world.add_user("Abbot", username="friar_abbot")  # a person whose username happens to end in "bot"
    out = io.StringIO()
    logs.configure("DEBUG", "json", out)
    try:
        tracked, left = await track_bots(pool, ingest, ["friar_abbot"])
    finally:
        logs.configure()
    assert tracked == [] and left == []
    assert "friar_abbot" not in out.getvalue()
    assert "friar_abbot" not in await everything(store)


async def test_a_reply_feed_that_never_goes_down_ends_with_a_recorded_error(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    """A server (or a bug) answering every getReplies page with the same messages must not keep a run
    asking forever: the walk stops with an error after the first page that does not go down."""
    from datetime import UTC, datetime

    from foundation.errors import SourceError
    from telegram_watch.backfill import BackfillResult, Feed, _Walk

    asked: list[int] = []
    page = [
        types.Message(id=i, peer_id=types.PeerChannel(777), date=datetime(2026, 1, 1, tzinfo=UTC), message=f"m{i}")
        for i in range(200, 100, -1)
    ]

    async def same_page(client: Any, offset_id: int, floor: int, limit: int) -> list[Any]:
        asked.append(offset_id)
        if len(asked) > 20:
            raise AssertionError("still asking: the walk does not end")
        return page[:limit]

    feed = Feed("mtproto:id777:comments:1", ChannelRef(tg_id=777), "id777", same_page, request="messages.getReplies")
    walk = _Walk(
        Backfill(pool, ingest), feed, BackfillResult(channel="id777", stream=feed.stream), limit=None, since=None
    )
    with pytest.raises(SourceError, match="did not go down"):
        try:
            await walk.top()
        finally:
            await walk.settle()
    assert len(asked) == 2


async def test_the_pending_comment_threads_are_capped_and_the_drop_is_counted(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest
) -> None:
    """The pending threads live in one checkpoint document: past ``max_pending`` posts the newest are
    kept and how many were given up is counted (on the checkpoint and in the run's result)."""
    ch = world.add_channel("Loud", username="loud_chan")
    group = world.add_channel("Loud chat", megagroup=True, private=True, username=None)
    X.link_discussion(ch, group)
    dora = world.add_user("Dora", username="dora_d")
    posts = [world.add_message(ch, f"post {i}") for i in range(12)]
    for p in posts:
        X.add_comment(world, ch, p, f"on {p.id}", sender=dora)

    result = await Backfill(pool, ingest, max_threads=0, max_pending=5, recent_posts=1).run("loud_chan")

    cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert cp is not None
    pending = cp.extra["comments_pending"]
    assert sorted(pending, key=int) == [str(p.id) for p in posts[-5:]]  # the newest posts
    assert cp.extra["comments_dropped"] == 7 and result.threads_dropped == 7


async def test_a_cut_forum_topic_list_says_so_on_the_channel_record(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    forum = world.add_channel("Endless forum", username="endless_forum", megagroup=True)
    for i in range(150):
        X.add_topic(world, forum, f"topic {i}")

    result = await Backfill(pool, ingest, max_topic_pages=1).run("endless_forum")

    assert result.topics == 100
    latest = (await store.db["channels"].find_one({"_id": f"id{forum.id}"}))["latest"]
    assert len(latest["topics"]) == 100
    assert latest["notices"] == ["topics: the list did not end after 1 pages; the first 100 kept"]
    await Backfill(pool, ingest).run("endless_forum")  # the whole list: no notice any more
    latest = (await store.db["channels"].find_one({"_id": f"id{forum.id}"}))["latest"]
    assert len(latest["topics"]) == 150 and latest["notices"] == []


async def test_one_thread_is_read_at_most_max_thread_messages_per_run_and_resumes(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    """A post with a huge thread cannot hold a run: each run reads at most ``max_thread_messages`` of it,
    keeps the post pending, and the next run goes on from the thread's checkpoint."""
    ch = world.add_channel("Popular", username="popular_chan")
    group = world.add_channel("Popular chat", megagroup=True, private=True, username=None)
    X.link_discussion(ch, group)
    dora = world.add_user("Dora", username="dora_d")
    post = world.add_message(ch, "a popular post")
    for i in range(250):
        X.add_comment(world, ch, post, f"comment {i}", sender=dora)

    def run() -> Backfill:
        return Backfill(pool, ingest, batch_size=100, max_thread_messages=100)

    read = []
    for _ in range(4):
        result = await run().run("popular_chan")
        read.append((result.comments, result.threads_cut))
        main_cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
        assert main_cp is not None
        if result.threads_cut:
            assert str(post.id) in main_cp.extra["comments_pending"]

    assert read == [(100, 1), (100, 1), (50, 0), (0, 0)]  # nothing read twice, nothing skipped
    stored = await store.db["messages"].find({"channel_key": f"id{group.id}"}).to_list(None)
    assert len(stored) == 251  # the root and every comment
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}:comments:{post.id}")
    assert cp is not None and cp.complete and cp.walk_top is None
    assert not (await ingest.checkpoint(f"mtproto:id{ch.id}")).extra.get("comments_pending")
