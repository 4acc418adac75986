"""The evidence ledger's authorization gate on the MTProto paths: private joins and private reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.evidence.authorizations import Authorizations
from crawler.evidence.ledger import Ledger
from crawler.ingest import Ingest
from foundation.errors import NotAuthorized
from storage.client import Store
from storage.repos import MessageRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope, invite_scope
from telegram_watch.backfill import Backfill
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.invites import Invites
from tests.test_tg_support import pool_over

LATER = datetime.now(UTC) + timedelta(hours=1)


async def _kinds(store: Store) -> list[str]:
    return [e["kind"] for e in await store["ledger"].find().sort("seq", 1).to_list(None)]


async def test_join_refusal_and_join_are_ledger_entries(store: Store, ingest: Ingest) -> None:
    world = FakeTelegram(seed="gate-join")
    room = world.add_channel("Closed room", private=True, participants=5)
    invite = world.add_invite(room, hash="ZyXwVuTs98765432")
    pool = pool_over(world, world.add_account("agent1"))
    gate = Authorizations(Ledger(store))
    invites = Invites(pool, ingest, AuthorizationRepo(store), ledger_gate=gate)
    try:
        with pytest.raises(NotAuthorized):
            await invites.join(f"https://t.me/+{invite.hash}")
        assert await _kinds(store) == ["refusal"]
        assert world.calls[("agent1", "ImportChatInviteRequest")] == 0
        await gate.grant(
            case_id="C-1", warrant="W-77", approved_by="judge", scope=[invite_scope(invite.hash)],
            accounts=["agent1"], valid_until=LATER, actor="lead",
        )  # fmt: skip
        channel = await invites.join(f"https://t.me/+{invite.hash}")
        assert channel.title == "Closed room"
        kinds = await _kinds(store)
        assert kinds[:2] == ["refusal", "authorization"] and "join" in kinds
        join = await store["ledger"].find_one({"kind": "join"})
        assert join is not None and "C-1" in join["payload"]
    finally:
        await pool.close()


async def test_reading_a_private_chat_needs_an_authorization(store: Store, ingest: Ingest) -> None:
    world = FakeTelegram(seed="gate-read")
    room = world.add_channel("Private group", private=True)
    world.fill_history(room, 30)
    invite = world.add_invite(room, hash="ReadGate00000001")
    pool = pool_over(world, world.add_account("agent1"))
    gate = Authorizations(Ledger(store))

    async def private_gate(key: str, accounts: list[str]) -> None:
        await gate.require([channel_scope(key)], accounts, action="read", target=key)

    try:
        # a join authorization alone does not allow reading the chat's history
        await gate.grant(
            case_id="C-2", warrant="W-2", approved_by="judge", scope=[invite_scope(invite.hash)],
            accounts=["agent1"], valid_until=LATER, actor="lead",
        )  # fmt: skip
        await Invites(pool, ingest, AuthorizationRepo(store), ledger_gate=gate).join(f"t.me/+{invite.hash}")
        with pytest.raises(NotAuthorized):
            await Backfill(pool, ingest, private_gate=private_gate).run(f"id{room.id}")
        assert await MessageRepo(store).query(channel=f"id{room.id}") == []
        await gate.grant(
            case_id="C-2", warrant="W-2", approved_by="judge", scope=[channel_scope(f"id{room.id}")],
            accounts=["agent1"], valid_until=LATER, actor="lead",
        )  # fmt: skip
        result = await Backfill(pool, ingest, private_gate=private_gate).run(f"id{room.id}")
        assert result.fetched == 30
        assert (await _kinds(store)).count("refusal") == 1
    finally:
        await pool.close()
