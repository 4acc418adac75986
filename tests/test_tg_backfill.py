"""Backfill against the fake Telegram (real ``TelegramClient`` code): completeness, resume, limits,
flood-wait hand-over, albums, unavailable channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from telethon.tl import functions

from crawler.ingest import Ingest
from foundation.models import ChannelRef
from storage.client import Store
from storage.repos import ChannelRepo, MessageRepo
from telegram_watch.backfill import Backfill
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="backfill-tests")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("alice"), world.add_account("bob"))
    yield p
    await p.close()


async def stored_ids(store: Store, key: str) -> list[int]:
    docs = await MessageRepo(store).query(channel=key, limit=100_000)
    return sorted(d["msg_id"] for d in docs)


async def test_full_backfill_then_rerun_is_a_no_op(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("News", username="news_chan")
    world.fill_history(ch, 730)
    result = await Backfill(pool, ingest, batch_size=200).run("https://t.me/news_chan")
    assert result.complete and result.stored.new == 730
    key = f"id{ch.id}"
    assert await stored_ids(store, key) == list(range(1, 731))
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert cp is not None and (cp.oldest_id, cp.newest_id, cp.walk_top) == (1, 730, None)
    world.fill_history(ch, 5)
    again = await Backfill(pool, ingest, batch_size=200).run("news_chan")
    assert (again.stored.new, again.fetched) == (5, 5)
    assert await stored_ids(store, key) == list(range(1, 736))


async def test_limit_then_resume_downwards_and_since_date(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Daily", username="daily_chan")
    world.fill_history(ch, 300, start_date=1_700_000_000, step=3600)
    first = await Backfill(pool, ingest, batch_size=50).run("daily_chan", limit=120)
    assert first.stored.new == 120 and not first.complete
    assert await stored_ids(store, f"id{ch.id}") == list(range(181, 301))
    since = datetime.fromtimestamp(1_700_000_000 + 99 * 3600, UTC)  # the date of message 100
    second = await Backfill(pool, ingest, batch_size=50).run("daily_chan", since=since)
    assert await stored_ids(store, f"id{ch.id}") == list(range(100, 301))
    assert not second.complete
    third = await Backfill(pool, ingest, batch_size=50).run("daily_chan")
    assert third.complete and await stored_ids(store, f"id{ch.id}") == list(range(1, 301))


async def test_flood_wait_parks_the_account_and_hands_over(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Busy", username="busy_chan")
    world.fill_history(ch, 450)
    alice = world.users[next(u for u in world.users if world.users[u].username == "alice")]
    world.faults.flood_wait(alice, functions.messages.GetHistoryRequest, 600, times=None)
    result = await Backfill(pool, ingest, batch_size=100).run("busy_chan")
    assert result.complete and await stored_ids(store, f"id{ch.id}") == list(range(1, 451))
    assert pool.stats["flood_waits"] == 1 and pool.stats["handovers"] == 1
    parked = {m.name: m.flood_until for m in pool.members}
    assert parked["alice"] > parked["bob"]
    assert world.calls[("bob", "GetHistoryRequest")] >= 5


async def test_albums_are_merged_across_batch_boundaries(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Pics", username="pics_chan")
    world.fill_history(ch, 8)  # ids 1..8
    for i in range(4):  # album ids 9..12, cut by a page/batch of 5 from the top
        media = world.photo(bytes([i]) * 64, 40, 30)
        world.add_message(ch, "album caption" if i == 0 else "", media=media, grouped_id=777)
    world.fill_history(ch, 3)  # ids 13..15
    await Backfill(pool, ingest, batch_size=5, page_size=5).run("pics_chan")
    docs = await MessageRepo(store).query(channel=f"id{ch.id}", limit=100)
    ids = sorted(d["msg_id"] for d in docs)
    assert ids == [*range(1, 10), 13, 14, 15]
    album = next(d for d in docs if d["msg_id"] == 9)
    assert album["text"] == "album caption" and len(album["media"]) == 4 and album["grouped_id"] == "777"


async def test_unavailable_channels_get_a_clear_state(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    results = {}
    for name in ("nobody_here", "x!"):
        try:
            results[name] = (await Backfill(pool, ingest).run(name)).state
        except Exception as exc:  # the invalid name is refused before any request
            results[name] = getattr(exc, "rpc", repr(exc))
    assert results == {"nobody_here": "not_found", "x!": "USERNAME_INVALID"}
    secret = world.add_channel("Closed", private=True)
    world.fill_history(secret, 3)
    res = await Backfill(pool, ingest).run(f"id{secret.id}")
    assert res.state in {"private", "not_found"}
    banned = world.add_channel("Gone", username="gone_chan")
    world.fill_history(banned, 3)
    world.ban_channel(banned)
    assert (await Backfill(pool, ingest).run("gone_chan")).state == "banned"
    doc = await ChannelRepo(store).get("nobody_here")
    assert doc is not None and doc["latest"]["state"] == "not_found"


async def test_renamed_channel_keeps_its_old_username(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Renamed", username="old_name")
    world.fill_history(ch, 4)
    await Backfill(pool, ingest).run("old_name")
    world.change_username(ch, "new_name")
    world.fill_history(ch, 2)
    await Backfill(pool, ingest).run("new_name")
    key = await ChannelRepo(store).resolve(ChannelRef(username="old_name"))
    assert key == await ChannelRepo(store).resolve(ChannelRef(username="new_name")) == f"id{ch.id}"
    channel = await ChannelRepo(store).get(key)
    assert channel is not None and set(channel["usernames"]) == {"old_name", "new_name"}
    assert await stored_ids(store, key) == list(range(1, 7))


async def test_migrated_group_is_followed_to_its_supergroup(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    sg = world.add_channel("Upgraded", username="upgraded_sg", megagroup=True)
    world.fill_history(sg, 3)
    old = world.add_basic_group("Old group", migrated_to=sg)
    for account in list(world.users.values()):
        world.join(account, old)
    result = await Backfill(pool, ingest).run(f"id{old.id}")
    assert result.state == "ok" and result.channel == f"id{sg.id}"
    assert await stored_ids(store, f"id{sg.id}") == [1, 2, 3]


async def test_revoked_account_is_retired_and_work_moves_on(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest
) -> None:
    ch = world.add_channel("Steady", username="steady_chan")
    world.fill_history(ch, 120)
    alice = next(u for u in world.users.values() if u.username == "alice")
    world.revoke(alice)
    result = await Backfill(pool, ingest).run("steady_chan")
    assert result.complete and result.stored.new == 120
    assert [m.name for m in pool.members if m.dead] == ["alice"]
    assert pool.stats["accounts_deauthorized"] == 1


async def test_when_every_account_is_parked_the_work_waits_and_resumes(world: FakeTelegram, ingest: Ingest) -> None:
    ch = world.add_channel("Calm", username="calm_chan")
    world.fill_history(ch, 30)
    solo = world.add_account("solo")
    pool = pool_over(world, solo)
    world.faults.flood_wait(solo, functions.messages.GetHistoryRequest, 1, times=1)
    result = await Backfill(pool, ingest).run("calm_chan")
    await pool.close()
    assert result.complete and result.stored.new == 30
    assert pool.stats["flood_waits"] == 1 and pool.stats["pool_waits"] >= 1
    short = pool_over(world, world.add_account("short"), max_wait=5)
    world.faults.flood_wait(None, functions.messages.GetHistoryRequest, 600, times=1)
    from foundation.errors import RateLimited

    with pytest.raises(RateLimited):
        await Backfill(short, ingest).run("calm_chan")
    await short.close()
