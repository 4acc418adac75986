"""Invites behind the authorization gate, media download with caps and expired references,
account log-in by session string, and no secret in any log line."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator

import pytest

from crawler.ingest import Ingest
from foundation import logs
from foundation.errors import NotAuthorized, TooLarge
from foundation.models import ChannelState
from storage.client import Store
from storage.repos import ErrorRepo, MessageRepo
from storage.repos.accounts import AccountRepo
from storage.repos.authorizations import AuthorizationRepo, invite_scope
from telegram_watch.accounts import Accounts, check_account, import_session, login_interactive
from telegram_watch.backfill import Backfill
from telegram_watch.client import fake_client_factory
from telegram_watch.crypto import SecretBox, generate_key
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.invites import Invites
from telegram_watch.media import MediaFetcher
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="invite-media-tests")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("agent1"), world.add_account("agent2"))
    yield p
    await p.close()


async def test_check_is_free_join_needs_authorization(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    room = world.add_channel("Closed room", private=True, participants=12)
    good = world.add_invite(room, hash="AbCdEfGh12345678")
    expired = world.add_invite(room, hash="OldOldOld0000000", expires=int(time.time()) - 60)
    auths = AuthorizationRepo(store)
    invites = Invites(pool, ingest, auths)
    info = await invites.check("https://t.me/+AbCdEfGh12345678")
    assert (info.state, info.title, info.members, info.kind) == (ChannelState.OK, "Closed room", 12, "channel")
    assert (await invites.check(f"t.me/+{expired.hash}")).state is ChannelState.NOT_FOUND
    assert (await invites.check("t.me/+NoSuchInvite0000")).state in {ChannelState.INVALID, ChannelState.NOT_FOUND}

    with pytest.raises(NotAuthorized):
        await invites.join(f"t.me/+{good.hash}")
    [refusal] = await ErrorRepo(store).recent()
    assert refusal["kind"] == "not_authorized" and refusal["invite"] == good.hash
    assert world.calls[("agent1", "ImportChatInviteRequest")] == 0  # refused before any request

    await auths.add(
        case_id="C-9",
        warrant_ref="W-1",
        approver="lead",
        scope=[invite_scope(good.hash)],
        accounts=["agent2"],
        valid_until=time.time() + 600,
    )
    with pytest.raises(NotAuthorized):
        await invites.join(f"t.me/+{good.hash}", account="agent1")  # not an authorized account
    channel = await invites.join(f"t.me/+{good.hash}")
    assert channel.title == "Closed room" and channel.ref.tg_id == room.id
    assert world.calls[("agent2", "ImportChatInviteRequest")] == 1


async def test_media_download_caps_and_refreshes_expired_references(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Media", username="media_chan")
    small = bytes(range(256)) * 40  # 10 KiB, synthetic
    big = b"\x00\x11" * 150_000  # 300 KB
    f_small = world.photo(small, 64, 48)
    world.add_message(ch, "pic", media=f_small)
    world.add_message(ch, "file", media=world.document(big, "application/octet-stream", file_name="blob.bin"))
    await Backfill(pool, ingest).run("media_chan")
    docs = {d["msg_id"]: d for d in await MessageRepo(store).query(channel=f"id{ch.id}")}
    from foundation.models import MediaRef

    photo = MediaRef.model_validate(docs[1]["media"][0])
    blob = MediaRef.model_validate(docs[2]["media"][0])
    fetcher = MediaFetcher(pool, max_bytes=100_000)
    assert await fetcher.fetch(photo) == small
    with pytest.raises(TooLarge):
        await fetcher.fetch(blob)
    unknown_size = blob.model_copy(update={"size": None})
    with pytest.raises(TooLarge):  # the cap holds while streaming, too
        await fetcher.fetch(unknown_size)
    world.expire_file_reference(f_small)
    assert await fetcher.fetch(photo) == small  # refetched the message, retried once


async def test_session_import_check_and_login_never_log_secrets(world: FakeTelegram, store: Store) -> None:
    buf = io.StringIO()
    logs.configure("DEBUG", "json", stream=buf)
    accounts = Accounts(AccountRepo(store), SecretBox.from_key_text(generate_key()))
    factory = fake_client_factory(world)
    alice = world.add_account("alice", phone="15550009876")
    session = world.session_string(alice)
    assert await import_session(accounts, factory, "alice", session) == alice.id
    assert await check_account(accounts, factory, await accounts.get("alice")) == "active"
    world.revoke(alice)
    assert await check_account(accounts, factory, await accounts.get("alice")) == "deauthorized"

    bob = world.add_account("bob", phone="15550001111", login_code="24680")
    user_id = await login_interactive(
        accounts, factory, "bob", phone=lambda: "+15550001111", code=lambda: "24680", password=lambda: ""
    )
    assert user_id == bob.id
    stored = await accounts.get("bob")
    assert stored.phone == "+15550001111"
    pool = AccountPool(await accounts.active(), factory, store=accounts, pacing=0)
    ch = world.add_channel("Logged", username="logged_chan")
    world.fill_history(ch, 3)
    await Backfill(pool, Ingest(store)).run("logged_chan")
    await pool.close()
    out = buf.getvalue()
    assert "account added" in out and "alice" in out
    for secret in (session, stored.session, "15550001111", "15550009876", "fake-api-hash"):
        assert secret not in out
    for line in out.splitlines():
        if line.startswith("{"):
            json.loads(line)
