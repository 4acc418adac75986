"""``watch`` with an account whose session another process holds: the watcher receives live updates on
the next account instead of stopping (fake Telegram, real Telethon clients, leases in the store)."""

from __future__ import annotations

import asyncio
import time

import pytest

from crawler.ingest import Ingest
from storage.client import Store
from storage.repos import MessageRepo
from storage.repos.accounts import AccountRepo
from telegram_watch.accounts import Accounts
from telegram_watch.client import fake_client_factory
from telegram_watch.crypto import SecretBox, generate_key
from telegram_watch.entities import Target
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.live import Watcher
from telegram_watch.pool import AccountLeased, AccountPool


async def _pool(store: Store, world: FakeTelegram, names: list[str], *, leased: list[str]) -> AccountPool:
    accounts = Accounts(AccountRepo(store), SecretBox.from_key_text(generate_key()))
    channel = world.add_channel("Live news", username="live_news")
    for name in names:
        user = world.add_account(name)
        world.join(user, channel)
        await accounts.add(name, session=world.session_string(user), phone=None, user_id=user.id)
    for name in leased:  # another process (a worker) is using these sessions right now
        assert await accounts.repo.take_lease(name, "other-process", seconds=600, now=time.time()) is not None
    return await AccountPool.load(accounts, fake_client_factory(world), pacing=0, holder="watcher")


async def test_watch_receives_on_the_next_account_when_the_first_is_leased(store: Store, ingest: Ingest) -> None:
    world = FakeTelegram(seed="watch-leases")
    pool = await _pool(store, world, ["first", "second"], leased=["first"])
    watcher = Watcher(pool, ingest, [Target.parse("live_news")])
    try:
        await watcher.start()
        assert watcher.member is not None and watcher.member.name == "second"
        channel = next(c for c in world.channels.values() if c.username == "live_news")
        posted = world.post(channel, "a live post")
        key = f"id{channel.id}"
        for _ in range(200):
            await asyncio.sleep(0.01)
            await watcher.drain()
            if await MessageRepo(store).query(channel=key, limit=10):
                break
        stored = await MessageRepo(store).query(channel=key, limit=10)
        assert [d["msg_id"] for d in stored] == [posted.id]
    finally:
        await watcher.stop()
        await pool.close()
    assert (await AccountRepo(store).get("first") or {})["lease_holder"] == "other-process"  # never taken over


async def test_watch_waits_like_a_flood_wait_when_every_account_is_leased(store: Store, ingest: Ingest) -> None:
    world = FakeTelegram(seed="watch-all-leased")
    pool = await _pool(store, world, ["only"], leased=["only"])
    watcher = Watcher(pool, ingest, [])
    try:
        with pytest.raises(AccountLeased):
            await watcher.start()
    finally:
        await pool.close()


async def test_a_lease_taken_on_one_account_never_lands_on_another(store: Store) -> None:
    """The embedded server drops ``_id`` from an ``{_id, $or}`` update filter: the lease of an account
    held elsewhere must not be 'taken' by updating another account this holder already has."""
    repo = AccountRepo(store)
    for name in ("busy", "mine"):
        await repo.add(name, session_enc="sealed", phone_enc=None, user_id=1, proxy=None)
    now = time.time()
    assert await repo.take_lease("busy", "other-process", seconds=600, now=now) is not None
    assert await repo.take_lease("mine", "watcher", seconds=600, now=now) is not None
    assert await repo.take_lease("busy", "watcher", seconds=600, now=now + 1) is None
    assert (await repo.get("busy") or {})["lease_holder"] == "other-process"
    mine = await repo.get("mine") or {}
    assert mine["lease_holder"] == "watcher" and mine["lease_until"] == pytest.approx(now + 600)  # untouched
