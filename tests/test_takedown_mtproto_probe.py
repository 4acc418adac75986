"""The MTProto takedown probe against the fake Telegram (real ``TelegramClient`` code, real pool):
present / deleted messages, blocked, unknown and private channels, flood-wait storms, input order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from telethon.tl import functions

from crawler.takedowns.models import ItemKind, ItemStatus, ProbeItem, ProbeResult
from crawler.takedowns.probe import Probe
from foundation.models import Source
from telegram_watch.fake.faults import request_channel_id
from telegram_watch.fake.model import FakeChannel, FakeUser
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from telegram_watch.takedown_probe import MtprotoProbe
from tests.test_tg_support import pool_over

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GET_MESSAGES = "GetMessagesRequest"


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="takedown-probe")


@pytest.fixture
def accounts(world: FakeTelegram) -> list[FakeUser]:
    return [world.add_account("alice"), world.add_account("bob")]


@pytest.fixture
async def pool(world: FakeTelegram, accounts: list[FakeUser]) -> AsyncIterator[AccountPool]:
    p = pool_over(world, *accounts)
    yield p
    await p.close()


def channel_with(world: FakeTelegram, username: str, count: int) -> FakeChannel:
    ch = world.add_channel(username.title(), username=username)
    world.fill_history(ch, count)
    return ch


def msg(ch: FakeChannel, msg_id: int, *, username: str | None = "", tg_id: int | None = -1) -> ProbeItem:
    """A message item as MTProto found it (id and username known unless told otherwise)."""
    return ProbeItem(
        item_id=f"message:id{ch.id}/{msg_id}",
        kind=ItemKind.MESSAGE,
        channel=f"id{ch.id}",
        username=ch.username if username == "" else username,
        tg_id=ch.id if tg_id == -1 else tg_id,
        msg_id=msg_id,
        source=Source.MTPROTO,
    )


def chan(ch: FakeChannel, *, username: str | None = "", tg_id: int | None = -1) -> ProbeItem:
    return ProbeItem(
        item_id=f"channel:id{ch.id}",
        kind=ItemKind.CHANNEL,
        channel=f"id{ch.id}",
        username=ch.username if username == "" else username,
        tg_id=ch.id if tg_id == -1 else tg_id,
        source=Source.MTPROTO,
    )


def verdicts(results: list[ProbeResult]) -> list[tuple[str, str, str]]:
    return [(r.item_id, str(r.status), r.reason) for r in results]


def calls(world: FakeTelegram, request: str) -> int:
    return sum(n for (_, kind), n in world.calls.items() if kind == request)


async def test_present_and_deleted_messages_in_input_order(world: FakeTelegram, pool: AccountPool) -> None:
    ch = channel_with(world, "reported_news", 5)
    world.delete(ch, [2])
    items = [msg(ch, 3), msg(ch, 2), chan(ch), msg(ch, 1), msg(ch, 99)]
    probe: Probe = MtprotoProbe(pool, clock=fixed_clock)
    results = await probe.check(items)
    assert verdicts(results) == [
        (items[0].item_id, "online", "present"),
        (items[1].item_id, "removed", "message_deleted"),
        (items[2].item_id, "online", "present"),
        (items[3].item_id, "online", "present"),
        (items[4].item_id, "removed", "message_deleted"),  # never existed: Telegram answers MessageEmpty too
    ]
    assert {(r.method, r.checked_at) for r in results} == {("mtproto", NOW)}
    assert results[0].url == f"channels.GetMessages(id{ch.id}, [3, 2, 1, 99])"
    assert results[1].detail == "MessageEmpty"
    assert calls(world, GET_MESSAGES) == 1, "one channel, four ids: one request"


async def test_ids_are_asked_in_chunks_of_at_most_100(world: FakeTelegram, pool: AccountPool) -> None:
    ch = channel_with(world, "big_channel", 260)
    world.delete(ch, [250])
    items = [msg(ch, i) for i in range(30, 261)]
    results = await MtprotoProbe(pool, clock=fixed_clock).check(items)
    assert len(results) == len(items) and [r.item_id for r in results] == [i.item_id for i in items]
    removed = [r.item_id for r in results if r.status is ItemStatus.REMOVED]
    assert removed == [f"message:id{ch.id}/250"]
    assert all(r.status is ItemStatus.ONLINE for r in results if r.item_id not in removed)
    assert calls(world, GET_MESSAGES) == 3, "231 ids: 100 + 100 + 31"
    assert results[-1].url is not None and results[-1].url.endswith("… 31 ids])")


async def test_a_banned_channel_is_blocked_with_telegrams_notice(world: FakeTelegram, pool: AccountPool) -> None:
    ok = channel_with(world, "still_here", 3)
    gone = channel_with(world, "gone_channel", 3)
    notice = "This channel can't be displayed because it violated Telegram's Terms of Service."
    world.ban_channel(gone, text=notice)
    items = [msg(gone, 1), msg(ok, 1), chan(gone), msg(gone, 2)]
    results = await MtprotoProbe(pool, clock=fixed_clock).check(items)
    assert [(str(r.status), r.reason) for r in results] == [
        ("removed", "channel_blocked"),
        ("online", "present"),
        ("removed", "channel_blocked"),
        ("removed", "channel_blocked"),
    ]
    assert {r.detail for r in results if r.reason == "channel_blocked"} == {notice}


async def test_a_read_answered_channel_banned_is_blocked(world: FakeTelegram, pool: AccountPool) -> None:
    """Resolution may still show a plain entity (a cached one, a race): CHANNEL_BANNED on the read decides."""
    ch = channel_with(world, "banned_later", 3)
    world.faults.add("CHANNEL_BANNED", request_type=functions.channels.GetMessagesRequest, times=None)
    results = await MtprotoProbe(pool, clock=fixed_clock).check([msg(ch, 1), chan(ch)])
    assert [(r.reason, r.detail) for r in results] == [("channel_blocked", "CHANNEL_BANNED")] * 2


async def test_unknown_username_is_channel_not_found(world: FakeTelegram, pool: AccountPool) -> None:
    ghost = world.add_channel("Ghost", username="ghost_channel")
    items = [
        msg(ghost, 1, username="nobody_owns_this", tg_id=None),
        chan(ghost, username="nobody_owns_this", tg_id=None),
    ]
    results = await MtprotoProbe(pool, clock=fixed_clock).check(items)
    assert [(str(r.status), r.reason, r.detail) for r in results] == [
        ("removed", "channel_not_found", "USERNAME_NOT_OCCUPIED")
    ] * 2
    assert results[0].url == "contacts.ResolveUsername(nobody_owns_this)"


async def test_a_username_now_naming_another_channel_is_unknown(world: FakeTelegram, pool: AccountPool) -> None:
    """Renamed, and someone took the old name: that channel's messages say nothing about ours."""
    ch = channel_with(world, "old_name", 3)
    world.change_username(ch, "new_name")
    other = channel_with(world, "old_name", 3)
    results = await MtprotoProbe(pool, clock=fixed_clock).check([msg(ch, 1, username="old_name")])
    assert (str(results[0].status), results[0].reason) == ("unknown", "fetch_failed")
    assert results[0].detail is not None and f"id{other.id}" in results[0].detail
    assert calls(world, GET_MESSAGES) == 0


async def test_kicked_accounts_hand_over_then_channel_private(
    world: FakeTelegram, pool: AccountPool, accounts: list[FakeUser]
) -> None:
    alice, bob = accounts
    ch = channel_with(world, "kicks_people", 4)
    items = [msg(ch, 4), chan(ch)]
    probe = MtprotoProbe(pool, clock=fixed_clock)
    world.kick(alice, ch)
    assert [r.reason for r in await probe.check(items)] == ["present", "present"], "bob can still read it"
    world.kick(bob, ch)
    for _ in range(2):  # asked again: lock-outs from the last check do not turn into "no account"
        results = await probe.check(items)
        assert [(str(r.status), r.reason, r.detail) for r in results] == [
            ("unknown", "channel_private", "CHANNEL_PRIVATE")
        ] * 2


async def test_private_channel_by_id_needs_an_account_that_knows_it(
    world: FakeTelegram, pool: AccountPool, accounts: list[FakeUser]
) -> None:
    alice, _ = accounts
    secret = world.add_channel("Closed", private=True)
    world.fill_history(secret, 3)
    invite = world.add_invite(secret)
    # alice joins through the pool, as invites.py does: her client now holds the access hash
    await pool.run(None, lambda c: c(functions.messages.ImportChatInviteRequest(invite.hash)), only={"alice"})
    items = [msg(secret, 3, username=None), chan(secret, username=None)]
    probe = MtprotoProbe(pool, clock=fixed_clock)
    assert [r.reason for r in await probe.check(items)] == ["present", "present"]

    world.kick(alice, secret)
    results = await probe.check(items)
    assert [(r.reason, r.detail) for r in results] == [("channel_private", "CHANNEL_PRIVATE")] * 2, (
        "bob's 'unknown id' must not hide alice's CHANNEL_PRIVATE"
    )

    fresh = pool_over(world, *accounts)
    try:
        results = await MtprotoProbe(fresh, clock=fixed_clock).check(items)
    finally:
        await fresh.close()
    assert {(str(r.status), r.reason) for r in results} == {("unknown", "fetch_failed")}
    assert all(r.detail and "not known to this account" in r.detail for r in results)


async def test_flood_storm_on_one_channel_keeps_the_other_channels_answers(
    world: FakeTelegram, accounts: list[FakeUser]
) -> None:
    calm = channel_with(world, "calm_channel", 3)
    stormy = channel_with(world, "stormy_channel", 3)
    later = channel_with(world, "later_channel", 3)
    world.delete(calm, [2])
    # every account flood-waits 10 minutes on any request about the stormy channel
    world.faults.add("FLOOD_WAIT_600", predicate=lambda r: request_channel_id(r) == stormy.id, times=None)
    pool = pool_over(world, *accounts, max_wait=5)
    items = [msg(calm, 1), msg(stormy, 1), msg(calm, 2), chan(stormy), msg(stormy, 2), msg(later, 1)]
    try:
        results = await MtprotoProbe(pool, clock=fixed_clock).check(items)
    finally:
        await pool.close()
    assert verdicts(results) == [
        (items[0].item_id, "online", "present"),
        (items[1].item_id, "unknown", "rate_limited"),
        (items[2].item_id, "removed", "message_deleted"),
        (items[3].item_id, "unknown", "rate_limited"),
        (items[4].item_id, "unknown", "rate_limited"),
        # every account is now parked beyond max_wait: the pool refuses before any request is sent
        (items[5].item_id, "unknown", "rate_limited"),
    ]
    assert all(r.detail and "flood-waiting" in r.detail for r in results if r.reason == "rate_limited")
    assert pool.stats["flood_waits"] == 2, "each account parked once, then the storm was reported"
    assert calls(world, GET_MESSAGES) == 3, "calm once, stormy once per account, later never"


async def test_no_usable_account_and_items_without_a_channel(world: FakeTelegram) -> None:
    ch = channel_with(world, "lonely_channel", 2)
    empty = pool_over(world)
    nameless = msg(ch, 1, username=None, tg_id=None).model_copy(update={"channel": "somewhere", "item_id": "x"})
    results = await MtprotoProbe(empty, clock=fixed_clock).check([msg(ch, 1), nameless, chan(ch)])
    assert [(str(r.status), r.reason) for r in results] == [
        ("unknown", "no_account"),
        ("unknown", "not_checkable"),
        ("unknown", "no_account"),
    ]
    assert all(r.detail for r in results)


async def test_no_items_no_requests(world: FakeTelegram, pool: AccountPool) -> None:
    assert await MtprotoProbe(pool).check([]) == []
    assert pool.stats["requests"] == 0
