"""Accounts that survive real Telegram: frozen accounts parked, one process per session (leases),
and large downloads that resume from the bytes on disk after a flood wait, a dropped connection,
an expired file reference or a killed process."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crawler.ingest import Ingest
from foundation.errors import SourceError
from foundation.models import MediaRef
from storage.client import Store
from storage.repos import MessageRepo
from storage.repos.accounts import AccountRepo
from telegram_watch.accounts import Accounts, SessionInUse, check_account, summary
from telegram_watch.backfill import Backfill
from telegram_watch.client import fake_client_factory
from telegram_watch.crypto import SecretBox, generate_key
from telegram_watch.fake.account_handlers import freeze, unfreeze
from telegram_watch.fake.download_faults import cut_download, duplicate_sessions, tap_file_offsets
from telegram_watch.fake.model import FakeFile
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.media import CHUNK, MediaFetcher
from telegram_watch.partial import SealedPart
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over

SIZE = 5 * CHUNK + 1000  # six getFile chunks, the last one short


def synthetic(seed: int, size: int = SIZE) -> bytes:
    """Deterministic, non-repeating test bytes (no real media)."""
    out = bytearray()
    block = seed.to_bytes(4, "little")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="accounts-survive")


@pytest.fixture
async def accounts(store: Store) -> Accounts:
    return Accounts(AccountRepo(store), SecretBox.from_key_text(generate_key()))


async def add(world: FakeTelegram, accounts: Accounts, name: str) -> None:
    user = world.add_account(name)
    await accounts.add(name, session=world.session_string(user), phone=None, user_id=user.id)


# --- frozen accounts ------------------------------------------------------------------------------


async def test_frozen_account_is_parked_and_shown_by_check(world: FakeTelegram, accounts: Accounts) -> None:
    await add(world, accounts, "alice")
    await add(world, accounts, "bob")
    alice = next(u for u in world.users.values() if u.username == "alice")
    world.add_channel("News", username="examplenews")
    freeze(world, alice)
    factory = fake_client_factory(world)
    pool = await AccountPool.load(accounts, factory, pacing=0)
    try:
        entity = await pool.run(None, lambda c: c.get_entity("examplenews"))
    finally:
        await pool.close()
    assert entity.username == "examplenews"
    assert world.calls[("alice", "ResolveUsernameRequest")] == 1  # refused: FROZEN_METHOD_INVALID
    assert world.calls[("bob", "ResolveUsernameRequest")] == 1  # the work moved on
    doc = await accounts.repo.get("alice")
    assert doc is not None and (doc["state"], doc["state_reason"]) == ("frozen", "FROZEN_METHOD_INVALID")
    row = summary(doc)
    assert row["frozen"] and row["parked"]
    assert [a.name for a in await accounts.active()] == ["bob"]  # parked: not loaded into pools

    # `accounts check` reads the freeze from the app config (a frozen account still logs in)
    assert await check_account(accounts, factory, await accounts.get("alice")) == "frozen"
    doc = await accounts.repo.get("alice")
    assert doc is not None and str(doc["state_reason"]).startswith("FROZEN (since ")
    unfreeze(world, alice)  # an appeal succeeded
    assert await check_account(accounts, factory, await accounts.get("alice")) == "active"


def test_every_frozen_error_parks_the_account() -> None:
    from telethon import errors as tle

    from telegram_watch.errors import AccountUnusable, translate

    for exc in (
        tle.FrozenMethodInvalidError(None),
        tle.FrozenParticipantMissingError(None),
        tle.BadRequestError(None, "FROZEN_SOMETHING_NEW"),
    ):
        out = translate(exc)
        assert isinstance(out, AccountUnusable) and out.state == "frozen", exc


# --- one session, one process ---------------------------------------------------------------------


async def test_two_workers_competing_for_one_account_never_share_its_session(
    world: FakeTelegram, accounts: Accounts
) -> None:
    await add(world, accounts, "solo")
    world.add_channel("News", username="examplenews")
    duplicate_sessions(world)  # Telegram: one auth key on two connections → AUTH_KEY_DUPLICATED
    factory = fake_client_factory(world)
    first = await AccountPool.load(accounts, factory, pacing=0, lease_seconds=3, holder="worker-1")
    second = await AccountPool.load(accounts, factory, pacing=0, lease_seconds=3, holder="worker-2")
    try:
        await first.run(None, lambda c: c.get_entity("examplenews"))
        waiting = asyncio.create_task(second.run(None, lambda c: c.get_entity("examplenews")))
        while second.stats["leased_elsewhere"] == 0:
            await asyncio.sleep(0.01)
        await first.run(None, lambda c: c.get_input_entity("examplenews"))  # the first still works alone
        assert not waiting.done()
        with pytest.raises(SessionInUse):  # `accounts check` does not open a session in use either
            await check_account(accounts, factory, await accounts.get("solo"))
        row = summary(await accounts.repo.get("solo") or {})
        assert row["leased_by"] == "worker-1" and row["state"] == "active"
        await first.close()  # gives the lease back
        entity = await waiting
        assert entity.username == "examplenews"
        assert (await accounts.repo.get("solo") or {})["lease_holder"] == "worker-2"
    finally:
        await first.close()
        await second.close()
    doc = await accounts.repo.get("solo")
    assert doc is not None and doc["state"] == "active" and doc["lease_holder"] is None
    assert world.faults.rules[-1].fired == 0  # AUTH_KEY_DUPLICATED never happened


async def test_the_lease_is_atomic_and_expires(store: Store, accounts: Accounts, world: FakeTelegram) -> None:
    await add(world, accounts, "solo")
    repo = AccountRepo(store)
    won = await asyncio.gather(*(repo.take_lease("solo", f"w{i}", seconds=10, now=1000.0) for i in range(8)))
    assert len([d for d in won if d is not None]) == 1
    holder = next(d for d in won if d is not None)["lease_holder"]
    assert await repo.take_lease("solo", "late", seconds=10, now=1009.0) is None
    assert (await repo.take_lease("solo", holder, seconds=10, now=1009.0) or {})["lease_until"] == 1019.0  # renewed
    taken = await repo.take_lease("solo", "late", seconds=10, now=1020.0)  # the holder died: expired
    assert taken is not None and taken["lease_holder"] == "late"
    await repo.release_lease("solo", holder)  # a stale holder cannot release someone else's lease
    assert (await repo.get("solo") or {})["lease_holder"] == "late"


# --- resumable downloads --------------------------------------------------------------------------


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("agent1"), world.add_account("agent2"))
    yield p
    await p.close()


async def stored_ref(world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, f: FakeFile) -> MediaRef:
    ch = world.add_channel(f"Files {f.id}", username=f"files_{f.id % 100_000}")
    msg = world.add_message(ch, "file", media=f)
    await Backfill(pool, ingest).run(str(ch.username))
    [doc] = [d for d in await MessageRepo(store).query(channel=f"id{ch.id}") if d["msg_id"] == msg.id]
    return MediaRef.model_validate(doc["media"][0])


async def test_flood_wait_mid_download_resumes_on_another_account_from_the_last_byte(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    data = synthetic(1)
    ref = await stored_ref(world, pool, ingest, store, world.document(data, "video/mp4", file_name="a.mp4"))
    offsets = tap_file_offsets(world)
    cut_download(world, 2 * CHUNK, flood_seconds=30)
    fetcher = MediaFetcher(pool, max_bytes=10 * CHUNK, partial_dir=tmp_path)
    got = await fetcher.fetch(ref)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    c = CHUNK
    assert offsets == [0, c, 2 * c, 2 * c, 3 * c, 4 * c, 5 * c]  # the cut chunk, then on: never from zero
    assert fetcher.resumed_from == [0, 2 * c]
    assert world.calls[("agent1", "GetFileRequest")] == 3 and world.calls[("agent2", "GetFileRequest")] == 4
    assert pool.stats["flood_waits"] == 1
    assert list(tmp_path.glob("*.part")) == []


async def test_disconnect_and_expired_reference_mid_download_resume(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    data = synthetic(2)
    f = world.document(data, "application/octet-stream", file_name="b.bin")
    ref = await stored_ref(world, pool, ingest, store, f)
    c = CHUNK
    offsets = tap_file_offsets(world)
    cut_download(world, 3 * c)  # the connection drops when the download reaches 3 chunks
    rotated: list[int] = []

    def rotate_at_four_chunks(request: object) -> bool:
        if getattr(request, "offset", 0) >= 4 * c and not rotated:
            rotated.append(1)
            world.expire_file_reference(f)  # hours pass: the reference in hand goes stale
        return False

    world.faults.add("NEVER", predicate=rotate_at_four_chunks, times=None)
    fetcher = MediaFetcher(pool, max_bytes=10 * c, partial_dir=tmp_path)
    got = await fetcher.fetch(ref)
    assert got == data
    assert offsets == [0, c, 2 * c, 3 * c, 3 * c, 4 * c, 4 * c, 5 * c]
    assert fetcher.resumed_from == [0, 3 * c, 4 * c]
    assert sum(n for (_, kind), n in world.calls.items() if kind == "GetMessagesRequest") >= 1  # refetched


async def test_a_killed_process_resumes_from_disk_and_a_bad_part_is_never_trusted(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    data = synthetic(3)
    ref = await stored_ref(world, pool, ingest, store, world.document(data, "video/mp4", file_name="c.mp4"))
    c = CHUNK
    key = os.urandom(32)
    fetcher = MediaFetcher(pool, max_bytes=10 * c, partial_dir=tmp_path, key=key)
    part = fetcher.part_path(ref.locator or {})
    sealed = SealedPart(part, key, c)
    with sealed.open_at(0) as out:  # what a killed process left: two sealed chunks and a torn third
        out.write(sealed.seal(0, data[:c]) + sealed.seal(1, data[c : 2 * c]) + b"torn")
    assert data[:c] not in part.read_bytes()  # media bytes are never on disk in the clear
    offsets = tap_file_offsets(world)
    assert await fetcher.fetch(ref) == data
    assert offsets[0] == 2 * c and min(offsets) == 2 * c  # resumed; the torn chunk fetched again
    assert not part.exists()

    # a part sealed under another key (or tampered with) is not trusted: the download starts over
    other = SealedPart(part, os.urandom(32), c)
    with other.open_at(0) as out:
        out.write(other.seal(0, b"\x00" * c) + other.seal(1, b"\x00" * c))
    offsets.clear()
    assert await fetcher.fetch(ref) == data
    assert offsets[0] == 0

    # a finished file that is not the media already hashed is thrown away, never returned
    wrong = ref.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(SourceError, match="SHA-256"):
        await fetcher.fetch(wrong)
    assert not part.exists()
