"""Fault injection: a FloodWait storm on every account, against the fake Telegram (real Telethon code).

The pool must idle (sleep until the first account comes back) and resume, never skip or repeat a
message; ``RateLimited`` may reach the caller only when every account is parked beyond the pool's
``max_wait``, and then the checkpoint lets a later run finish the job exactly.
"""

from __future__ import annotations

import asyncio

import pytest
from telethon.tl import functions

from crawler.ingest import Ingest
from foundation.errors import RateLimited
from storage.client import Store
from storage.repos import MessageRepo
from telegram_watch.backfill import Backfill
from telegram_watch.fake.model import FakeUser
from telegram_watch.fake.world import FakeTelegram
from tests.test_tg_support import pool_over

HISTORY = functions.messages.GetHistoryRequest
GUARD_SECONDS = 60.0  # hang guard only


async def _stored_ids(store: Store, key: str) -> list[int]:
    docs = await MessageRepo(store).query(channel=key, limit=100_000)
    return [d["msg_id"] for d in docs]


def _accounts(world: FakeTelegram, n: int) -> list[FakeUser]:
    return [world.add_account(f"acct{i}") for i in range(n)]


async def test_storm_on_every_account_idles_then_completes_exactly_once(ingest: Ingest, store: Store) -> None:
    world = FakeTelegram(seed="flood-storm")
    ch = world.add_channel("Storm", username="storm_chan")
    world.fill_history(ch, 420)
    users = _accounts(world, 3)
    for user in users:  # every account: two flood waits of a second on its next history calls
        world.faults.flood_wait(user, HISTORY, 1, times=2)
    pool = pool_over(world, *users, max_wait=30)
    try:
        result = await asyncio.wait_for(Backfill(pool, ingest, batch_size=60).run("storm_chan"), GUARD_SECONDS)
    finally:
        await pool.close()
    assert result.complete and result.stored.new == 420
    ids = await _stored_ids(store, f"id{ch.id}")
    assert sorted(ids) == list(range(1, 421)) and len(ids) == len(set(ids))
    assert pool.stats["flood_waits"] == 6, "each account was parked twice"
    assert pool.stats["pool_waits"] >= 1, "with every account parked the work idled instead of failing"
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert cp is not None and (cp.oldest_id, cp.newest_id) == (1, 420)


async def test_storm_beyond_max_wait_surfaces_rate_limited_then_resumes_exactly(ingest: Ingest, store: Store) -> None:
    world = FakeTelegram(seed="flood-long")
    ch = world.add_channel("Long", username="long_chan")
    world.fill_history(ch, 300)
    users = _accounts(world, 2)
    first = users[0]

    # one account parked for ten minutes is not a reason to fail: the other one does the work
    world.faults.flood_wait(first, HISTORY, 600, times=None)
    pool = pool_over(world, *users, max_wait=5)
    try:
        partial = await asyncio.wait_for(
            Backfill(pool, ingest, batch_size=50).run("long_chan", limit=200), GUARD_SECONDS
        )
    finally:
        await pool.close()
    assert partial.stored.new == 200 and pool.stats["flood_waits"] == 1, pool.stats

    # every account parked beyond max_wait: only now does RateLimited reach the caller
    world.faults.clear()
    world.faults.flood_wait(None, HISTORY, 600, times=len(users))
    storm = pool_over(world, *users, max_wait=5)
    try:
        with pytest.raises(RateLimited) as info:
            await asyncio.wait_for(Backfill(storm, ingest, batch_size=50).run("long_chan"), GUARD_SECONDS)
    finally:
        await storm.close()
    assert info.value.retry_after is not None and info.value.retry_after > 5
    assert storm.stats["flood_waits"] == len(users)
    assert sorted(await _stored_ids(store, f"id{ch.id}")) == list(range(101, 301)), "nothing lost, nothing invented"

    # the storm is over: a fresh pool resumes from the checkpoint and completes exactly
    world.faults.clear()
    calm = pool_over(world, *users, max_wait=5)
    try:
        done = await asyncio.wait_for(Backfill(calm, ingest, batch_size=50).run("long_chan"), GUARD_SECONDS)
    finally:
        await calm.close()
    assert done.complete and done.stored.new == 100
    ids = await _stored_ids(store, f"id{ch.id}")
    assert sorted(ids) == list(range(1, 301)) and len(ids) == len(set(ids))
