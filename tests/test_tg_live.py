"""Live watching on the fake Telegram: new messages, edits → versions, deletions, catch-up after a disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from crawler.ingest import Ingest
from storage.client import Store
from storage.repos import MessageRepo
from telegram_watch.entities import Target
from telegram_watch.fake.model import FakeChannel
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.live import Watcher
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="live-tests")


@pytest.fixture
def channel(world: FakeTelegram) -> FakeChannel:
    ch = world.add_channel("Live", username="live_chan")
    world.fill_history(ch, 10)
    return ch


@pytest.fixture
async def pool(world: FakeTelegram, channel: FakeChannel) -> AsyncIterator[AccountPool]:
    watcher_account = world.add_account("watcher")
    world.join(watcher_account, channel)
    p = pool_over(world, watcher_account)
    yield p
    await p.close()


async def settle(watcher: Watcher, condition: object, rounds: int = 200) -> None:
    """Let update delivery and catch-ups run until ``condition()`` holds (bounded, not timed)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
        await watcher.drain()
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)


async def test_new_edit_delete_land_once(
    world: FakeTelegram, channel: FakeChannel, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    watcher = Watcher(pool, ingest, [Target.parse("live_chan")])
    await watcher.start()
    key = f"id{channel.id}"
    assert len(await MessageRepo(store).query(channel=key, limit=100)) == 10  # start-up catch-up
    world.post(channel, "breaking: first live post")
    await settle(watcher, lambda: watcher.counts["new_signals"] >= 1)
    await watcher.drain()
    doc = await MessageRepo(store).get(f"{key}/11")
    assert doc is not None and doc["text"] == "breaking: first live post"
    world.edit(channel, 11, "breaking: corrected post")
    await settle(watcher, lambda: watcher.counts["edits"] >= 1)
    await asyncio.sleep(0.05)
    versions = await MessageRepo(store).versions(f"{key}/11")
    assert [v["text"] for v in versions] == ["breaking: first live post", "breaking: corrected post"]
    assert versions[-1]["edited"] is True
    world.delete(channel, [3, 11])
    await settle(watcher, lambda: watcher.counts["deletions"] >= 2)
    await asyncio.sleep(0.05)
    for msg_id in (3, 11):
        gone = await MessageRepo(store).get(f"{key}/{msg_id}")
        assert gone is not None and gone["deleted_at"] is not None
    cp = await ingest.checkpoint(f"mtproto:id{channel.id}")
    assert cp is not None and cp.newest_id == 11
    await watcher.stop()


async def test_gap_after_disconnect_is_filled_by_catch_up(
    world: FakeTelegram, channel: FakeChannel, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    watcher = Watcher(pool, ingest, [Target.parse("live_chan")])
    await watcher.start()
    assert watcher.client is not None
    await watcher.client.disconnect()
    for i in range(130):  # posted while nobody listens: no update reaches us
        world.post(channel, f"missed {i}")
    await watcher.reconnect()
    key = f"id{channel.id}"
    ids = sorted(d["msg_id"] for d in await MessageRepo(store).query(channel=key, limit=1000))
    assert ids == list(range(1, 141))
    cp = await ingest.checkpoint(f"mtproto:id{channel.id}")
    assert cp is not None and (cp.newest_id, cp.walk_top) == (140, None)
    await watcher.stop()
