"""Live comments pass the same gate as the channel: the discussion group of a private channel the
gate refuses is not watched, and a comment posted in it live is not stored (nothing of it is kept)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from telethon.tl import types

from crawler.ingest import Ingest
from foundation.errors import NotAuthorized
from storage.client import Store
from telegram_watch.backfill import Backfill
from telegram_watch.entities import Target
from telegram_watch.fake import extras as X
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.live import Watcher
from tests.test_tg_support import pool_over


class Refusing:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, channel_key: str, accounts: list[str]) -> None:
        self.asked.append(channel_key)
        raise NotAuthorized("no authorization covers this chat")


async def everything(store: Store) -> str:
    out: list[Any] = []
    for name in await store.db.list_collection_names():
        out.extend(await store.db[name].find({}).to_list(None))
    return json.dumps(out, default=str, ensure_ascii=False)


async def test_the_discussion_group_of_a_refused_private_channel_is_not_watched(ingest: Ingest, store: Store) -> None:
    world = FakeTelegram(seed="gate-live-comments")
    ch = world.add_channel("Private channel", private=True)
    group = world.add_channel("Its chat", megagroup=True, private=True)
    X.link_discussion(ch, group)
    post = world.add_message(ch, "a post")
    agent = world.add_account("agent1")
    world.join(agent, ch)
    world.join(agent, group)
    pool = pool_over(world, agent)
    peer = types.InputPeerChannel(ch.id, world.access_hash("channel", ch.id, agent.id))
    await pool.run(None, lambda c: c.get_entity(peer))  # the member's session knows the chat
    gate = Refusing()
    watcher = Watcher(pool, ingest, [Target.parse(f"id{ch.id}")], backfill=Backfill(pool, ingest, private_gate=gate))
    try:
        await watcher.start()
        assert watcher.discussions == {} and watcher.watched == {}
        X.post_comment(world, ch, post, "private live comment", sender=world.add_user("Hal"))
        for _ in range(20):
            await asyncio.sleep(0.01)
            await watcher.drain()
        await watcher.stop()
    finally:
        await pool.close()
    assert gate.asked == [f"id{ch.id}"] and watcher.counts["comment_signals"] == 0
    assert world.calls[("agent1", "GetRepliesRequest")] == 0
    assert "private live comment" not in await everything(store)
