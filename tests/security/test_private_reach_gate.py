"""#19 reach paths of a private chat pass the authorization gate: ``watch`` (history, comments, topics)
and stories read nothing of a chat without a public username unless the gate lets them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from telethon.tl import types

from crawler.ingest import Ingest
from foundation.errors import NotAuthorized
from storage.client import Store
from telegram_watch.backfill import Backfill
from telegram_watch.entities import Target
from telegram_watch.fake import extras as X
from telegram_watch.fake.story_handlers import add_story
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.live import Watcher
from telegram_watch.pool import AccountPool
from telegram_watch.stories import StoryReader
from tests.test_tg_support import pool_over


async def everything(store: Store) -> str:
    out: list[Any] = []
    for name in await store.db.list_collection_names():
        out.extend(await store.db[name].find({}).to_list(None))
    return json.dumps(out, default=str, ensure_ascii=False)


class Refusing:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, channel_key: str, accounts: list[str]) -> None:
        self.asked.append(channel_key)
        raise NotAuthorized("no authorization covers this chat")


async def _member_pool(world: FakeTelegram, room: Any) -> AccountPool:
    agent = world.add_account("agent1")
    world.join(agent, room)
    pool = pool_over(world, agent)
    peer = types.InputPeerChannel(room.id, world.access_hash("channel", room.id, agent.id))
    await pool.run(None, lambda c: c.get_entity(peer))  # the member's session knows the chat
    return pool


async def test_watch_reads_nothing_of_a_private_forum_without_an_authorization(ingest: Ingest, store: Store) -> None:
    world = FakeTelegram(seed="gate-watch")
    room = world.add_channel("Private forum", megagroup=True, private=True)
    X.add_topic(world, room, "Secret topic")
    world.add_message(room, "secret history line")
    pool = await _member_pool(world, room)
    gate = Refusing()
    watcher = Watcher(pool, ingest, [Target.parse(f"id{room.id}")], backfill=Backfill(pool, ingest, private_gate=gate))
    try:
        await watcher.start()
        await watcher.stop()
    finally:
        await pool.close()
    assert gate.asked == [f"id{room.id}"]
    assert watcher.watched == {} and watcher.counts["errors"] == 1
    assert world.calls[("agent1", "GetForumTopicsRequest")] == 0
    dump = await everything(store)
    assert "Secret topic" not in dump and "secret history line" not in dump
    assert "not_authorized" in dump  # the refusal is recorded


async def test_stories_of_a_private_chat_are_not_read_without_an_authorization(ingest: Ingest, store: Store) -> None:
    world = FakeTelegram(seed="gate-stories")
    room = world.add_channel("Private channel", private=True)
    add_story(world, room, "private story caption")
    pool = await _member_pool(world, room)
    gate = Refusing()
    try:
        with pytest.raises(NotAuthorized):
            await StoryReader(pool, ingest, private_gate=gate).read(f"id{room.id}")
    finally:
        await pool.close()
    assert gate.asked == [f"id{room.id}"]
    assert world.calls[("agent1", "GetPeerStoriesRequest")] == 0
    assert "private story caption" not in await everything(store)


async def test_a_scheduled_mtproto_run_of_a_private_chat_needs_an_authorization(
    ingest: Ingest, store: Store, tmp_path: Any
) -> None:
    from config.settings import Settings
    from crawler.scheduling.runners import RunContext, run_mtproto
    from crawler.scheduling.tasks import TaskSpec

    world = FakeTelegram(seed="gate-sched")
    room = world.add_channel("Private room", megagroup=True, private=True)
    world.add_message(room, "scheduled secret line")
    pool = await _member_pool(world, room)
    settings = Settings(data_dir=tmp_path)
    ctx = RunContext(settings=settings, store=store, ingest=ingest, account_pool=pool)
    key = f"id{room.id}"
    try:
        outcome = await run_mtproto(ctx, TaskSpec(f"{key}/1", key, key, "mtproto", 1))
    finally:
        await pool.close()
    assert outcome.errors == 1
    assert world.calls[("agent1", "GetHistoryRequest")] == 0
    dump = await everything(store)
    assert "scheduled secret line" not in dump and "not_authorized" in dump


async def test_a_reader_built_without_a_gate_refuses_private_chats(ingest: Ingest, store: Store) -> None:
    """Fail closed: a ``Backfill``, ``Watcher`` or ``StoryReader`` built without a gate (a bench, a
    future command that forgets it) may read public chats only."""
    world = FakeTelegram(seed="gate-none")
    room = world.add_channel("Private channel", private=True)
    world.add_message(room, "ungated private line")
    add_story(world, room, "ungated story caption")
    pool = await _member_pool(world, room)
    try:
        with pytest.raises(NotAuthorized):
            await Backfill(pool, ingest).run(f"id{room.id}")
        with pytest.raises(NotAuthorized):
            await StoryReader(pool, ingest).read(f"id{room.id}")
    finally:
        await pool.close()
    dump = await everything(store)
    assert "ungated private line" not in dump and "ungated story caption" not in dump
