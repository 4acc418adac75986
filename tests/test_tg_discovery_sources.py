"""Discovery from Telegram itself: channel recommendations and global search become candidates with
their provenance, at most one call per account per interval (kept across processes)."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from telethon.tl import functions

from config.discovery import DiscoverySettings
from crawler.cli.discovery import discover_group
from crawler.discovery.service import DiscoveryService
from foundation.errors import RateLimited
from foundation.models import utcnow
from storage.client import Store
from storage.repos.accounts import AccountRepo
from telegram_watch.accounts import Accounts
from telegram_watch.client import fake_client_factory
from telegram_watch.crypto import SecretBox, generate_key
from telegram_watch.discover import Discoverer
from telegram_watch.fake.discovery_handlers import recommend
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool

SearchGlobal = functions.messages.SearchGlobalRequest


@pytest.fixture
def world() -> FakeTelegram:
    w = FakeTelegram(seed="discovery-sources")
    seed = w.add_channel("Seed", username="seedchan")
    recommend(
        w, seed, w.add_channel("Twin", username="twinchan", participants=900), w.add_channel("Hidden", private=True)
    )
    hot = w.add_channel("Hot", username="hotchan")
    w.add_message(hot, "new drop #leakedpics here")
    w.add_message(w.add_channel("Cold", username="coldchan"), "weather report")
    banned = w.add_channel("Gone", username="gonechan")
    w.add_message(banned, "#leakedpics mirror")
    w.ban_channel(banned)
    return w


@pytest.fixture
async def accounts(store: Store, world: FakeTelegram) -> Accounts:
    accounts = Accounts(AccountRepo(store), SecretBox.from_key_text(generate_key()))
    for name in ("agent1", "agent2"):
        user = world.add_account(name)
        await accounts.add(name, session=world.session_string(user), phone=None, user_id=user.id)
    return accounts


async def test_recommendations_and_search_become_candidates_with_provenance(
    world: FakeTelegram, accounts: Accounts, store: Store
) -> None:
    pool = await AccountPool.load(accounts, fake_client_factory(world), pacing=0)
    service = DiscoveryService(store, DiscoverySettings())
    try:
        finder = Discoverer(pool, interval=3600, store=accounts)
        recommended = await finder.recommendations("seedchan")
        found = await finder.search("#leakedpics")
    finally:
        await pool.close()
    assert [f.username for f in recommended] == ["twinchan"]  # the private one is not readable
    assert [f.username for f in found] == ["hotchan"]  # banned channels are not searched
    assert finder.calls == ["agent1", "agent2"]  # one discovery call per account per interval

    result = await service.record_mtproto([*recommended, *found], utcnow())
    assert result.new == 2
    twin = await service.repo.get("https://t.me/twinchan")
    assert twin is not None
    [prov] = twin["provenance"]
    assert (prov["source_kind"], prov["source"]) == ("mtproto", "mtproto_recommendation")
    assert prov["page_url"] == "https://t.me/seedchan" and prov["note"] == "account agent1"
    hot = await service.repo.get("https://t.me/hotchan")
    assert hot is not None
    [prov] = hot["provenance"]
    assert prov["source"] == "mtproto_search:#leakedpics" and prov["page_url"].startswith("https://t.me/hotchan/")
    assert "#leakedpics" in prov["context"]["text"]


async def test_discovery_is_rate_limited_per_account_across_processes(world: FakeTelegram, accounts: Accounts) -> None:
    pool = await AccountPool.load(accounts, fake_client_factory(world), pacing=0)
    try:
        first = Discoverer(pool, interval=3600, store=accounts)
        await first.search("drop")
        await first.search("drop")
        assert first.calls == ["agent1", "agent2"]
        # a second process (a new Discoverer over the same store) finds both gates closed and waits
        later = Discoverer(pool, interval=3600, store=accounts)
        waiting = asyncio.create_task(later.search("drop"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        assert sum(n for (_, kind), n in world.calls.items() if kind == "SearchGlobalRequest") == 2
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await pool.close()


async def test_a_flood_wait_on_search_parks_the_account_and_the_other_answers(
    world: FakeTelegram, accounts: Accounts
) -> None:
    agent1 = next(u for u in world.users.values() if u.username == "agent1")
    world.faults.flood_wait(agent1, SearchGlobal, 3000)
    pool = await AccountPool.load(accounts, fake_client_factory(world), pacing=0, max_wait=60)
    try:
        finder = Discoverer(pool, interval=0, store=accounts)
        assert [f.username for f in await finder.search("drop")] == ["hotchan"]
        assert finder.calls == ["agent2"] and pool.stats["flood_waits"] == 1
        world.faults.flood_wait(None, SearchGlobal, 3000)
        with pytest.raises(RateLimited):
            await finder.search("drop")
    finally:
        await pool.close()
    doc = await accounts.repo.get("agent1")
    assert doc is not None and doc["flood_until"] > 0


def test_discover_commands_have_help() -> None:
    for name in ("recommendations", "search"):
        result = CliRunner().invoke(discover_group, [name, "--help"])
        assert result.exit_code == 0 and "rate-limited per account" in " ".join(result.output.split())
