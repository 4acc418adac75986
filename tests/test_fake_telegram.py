"""The fake Telegram, driven through the real Telethon client (only the network is replaced)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from telethon import errors, events, types
from telethon.tl import functions

from telegram_watch.fake import FakeTelegram, Forward, UnsupportedRequest, detect_entities, text_url
from telegram_watch.fake.model import FakeChannel, FakeUser

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any attempt to reach the network fails the test loudly."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"the fake Telegram opened a network connection: {args[:2]!r}")

    async def refuse_async(*args: Any, **kwargs: Any) -> Any:
        return refuse(*args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse_async)
    monkeypatch.setattr(asyncio.BaseEventLoop, "sock_connect", refuse_async)
    yield attempts
    assert attempts == []


class World:
    """A small world most tests share the shape of."""

    def __init__(self) -> None:
        self.tg = FakeTelegram()
        self.alice = self.tg.add_account("alice")
        self.bob = self.tg.add_account("bob")
        self.news = self.tg.add_channel("Example News", username="examplenews", about="daily", participants=1200)


@pytest.fixture
def w() -> World:
    return World()


@pytest.fixture
async def alice(w: World) -> AsyncIterator[Any]:
    client = w.tg.client(w.alice, flood_sleep_threshold=0)
    await client.connect()
    yield client
    await client.disconnect()


async def _drain(queue: asyncio.Queue[Any], n: int) -> list[Any]:
    return [await asyncio.wait_for(queue.get(), 10) for _ in range(n)]


# ------------------------------------------------------------------ login & entities


async def test_session_string_logs_in_as_the_account(w: World, alice: Any) -> None:
    assert await alice.is_user_authorized()
    me = await alice.get_me()
    assert (me.id, me.username, me.is_self) == (w.alice.id, "alice", True)


async def test_unknown_key_is_not_authorized_and_sign_in_with_code_works(w: World) -> None:
    client = w.tg.client(None)
    await client.connect()
    try:
        assert not await client.is_user_authorized()
        with pytest.raises(errors.AuthKeyUnregisteredError):
            await client(functions.updates.GetStateRequest())
        await client.send_code_request(w.bob.phone)
        with pytest.raises(errors.PhoneCodeInvalidError):
            await client.sign_in(w.bob.phone, code="00000")
        user = await client.sign_in(w.bob.phone, code=w.bob.login_code)
        assert user.id == w.bob.id
        assert (await client.get_me()).username == "bob"
    finally:
        await client.disconnect()


async def test_revoked_and_banned_accounts_get_401_errors(w: World, alice: Any) -> None:
    w.tg.revoke(w.alice)
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await alice(functions.updates.GetStateRequest())
    bob = w.tg.client(w.bob)
    await bob.connect()
    try:
        w.tg.deactivate(w.bob)
        with pytest.raises(errors.UserDeactivatedBanError):
            await bob.get_entity("@examplenews")
    finally:
        await bob.disconnect()


async def test_get_entity_by_username_and_full_channel(w: World, alice: Any) -> None:
    entity = await alice.get_entity("@examplenews")
    assert isinstance(entity, types.Channel)
    assert (entity.id, entity.title, entity.username, entity.broadcast) == (
        w.news.id,
        "Example News",
        "examplenews",
        True,
    )
    full = await alice(functions.channels.GetFullChannelRequest(entity))
    assert full.full_chat.about == "daily"
    assert full.full_chat.participants_count == 1200
    # the client cached the access hash: lookups by id need no network now
    assert (await alice.get_input_entity(entity.id)).channel_id == w.news.id


async def test_access_hashes_are_per_account(w: World, alice: Any) -> None:
    entity = await alice.get_entity("examplenews")
    bob = w.tg.client(w.bob)
    await bob.connect()
    try:
        with pytest.raises(errors.ChannelInvalidError):
            await bob(functions.channels.GetChannelsRequest([types.InputChannel(entity.id, entity.access_hash)]))
        theirs = await bob.get_entity("examplenews")
        assert theirs.id == entity.id and theirs.access_hash != entity.access_hash
    finally:
        await bob.disconnect()


async def test_username_errors_and_username_change(w: World, alice: Any) -> None:
    with pytest.raises(errors.UsernameNotOccupiedError):
        await alice(functions.contacts.ResolveUsernameRequest("nobodyhere"))
    with pytest.raises(errors.UsernameInvalidError):
        await alice(functions.contacts.ResolveUsernameRequest("a!"))
    with pytest.raises(ValueError, match="nobodyhere"):
        await alice.get_entity("@nobodyhere")
    w.tg.change_username(w.news, "examplenews2")
    with pytest.raises(errors.UsernameNotOccupiedError):
        await alice(functions.contacts.ResolveUsernameRequest("examplenews"))
    renamed = await alice.get_entity("@examplenews2")
    assert renamed.id == w.news.id
    assert w.news.old_usernames == ["examplenews"]


async def test_migrated_basic_group_points_to_its_supergroup(w: World, alice: Any) -> None:
    group = w.tg.add_channel("Chat room", username="chatroom", megagroup=True)
    old = w.tg.add_basic_group("Chat room (old)", migrated_to=group)
    chat = (await alice(functions.messages.GetChatsRequest([old.id]))).chats[0]
    assert chat.deactivated and chat.migrated_to.channel_id == group.id
    full = await alice(functions.channels.GetFullChannelRequest(await alice.get_input_entity("chatroom")))
    assert full.full_chat.migrated_from_chat_id == old.id
    assert full.chats[0].megagroup


async def test_private_banned_and_kicked_channels(w: World, alice: Any) -> None:
    secret = w.tg.add_channel("Closed room", private=True)
    w.tg.join(w.alice, secret)
    w.tg.add_message(secret, "inside")
    invite = w.tg.add_invite(secret)
    await alice(functions.messages.CheckChatInviteRequest(invite.hash))  # caches the entity
    assert [m.text async for m in alice.iter_messages(secret.id)] == ["inside"]
    w.tg.kick(w.alice, secret)
    with pytest.raises(errors.ChannelPrivateError):
        await alice.get_messages(secret.id, limit=1)
    chats = await alice(functions.channels.GetChannelsRequest([await alice.get_input_entity(secret.id)]))
    assert isinstance(chats.chats[0], types.ChannelForbidden)

    blocked = w.tg.add_channel("Blocked", username="blockedchan")
    w.tg.ban_channel(blocked)
    entity = await alice.get_entity("blockedchan")
    assert entity.restricted and entity.restriction_reason[0].reason == "terms"
    with pytest.raises(errors.ChannelBannedError):
        await alice.get_messages(entity, limit=1)


# ------------------------------------------------------------------ history


def _build_history(tg: FakeTelegram, ch: FakeChannel) -> list[int]:
    tg.fill_history(ch, 1000, start_date=1_700_000_000, step=30)
    tg.delete(ch, range(7, 1001, 7))  # sparse ids, as real channels have
    return list(ch.history.ids)


def _expected(
    ids: list[int], *, reverse: bool, limit: int | None, offset_id: int, min_id: int, max_id: int
) -> list[int]:
    """What Telethon documents for iter_messages (ids only)."""
    if reverse:
        low = max(offset_id, min_id)
        out = [i for i in ids if i > low and (not max_id or i < max_id)]
    else:
        out = [
            i for i in reversed(ids) if i > min_id and (not max_id or i < max_id) and (not offset_id or i < offset_id)
        ]
    return out if limit is None else out[:limit]


CASES: list[dict[str, Any]] = [
    {},
    {"limit": 1},
    {"limit": 250},
    {"reverse": True},
    {"reverse": True, "limit": 150},
    {"min_id": 500},
    {"max_id": 500},
    {"min_id": 100, "max_id": 400, "limit": 120},
    {"offset_id": 700, "limit": 210},
    {"offset_id": 700, "reverse": True, "limit": 210},
    {"min_id": 990, "reverse": True},
    {"max_id": 12, "reverse": True},
    {"offset_id": 3},
    {"min_id": 999},
]


@pytest.mark.parametrize("case", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "all" for c in CASES])
async def test_iter_messages_matches_telegram_semantics(w: World, alice: Any, case: dict[str, Any]) -> None:
    ids = _build_history(w.tg, w.news)
    args = {"reverse": False, "limit": None, "offset_id": 0, "min_id": 0, "max_id": 0, **case}
    got = [m.id async for m in alice.iter_messages("examplenews", wait_time=0, **args)]
    assert got == _expected(ids, **args)


async def test_iter_messages_by_offset_date(w: World, alice: Any) -> None:
    ids = _build_history(w.tg, w.news)
    cut = dt.datetime.fromtimestamp(1_700_000_000 + 30 * 499, dt.UTC)  # message 500's date
    got = [m.id async for m in alice.iter_messages("examplenews", offset_date=cut, limit=5, wait_time=0)]
    assert got == [i for i in reversed(ids) if i < 500][:5]
    newer = [m.id async for m in alice.iter_messages("examplenews", offset_date=cut, reverse=True, limit=3)]
    assert newer == [i for i in ids if i >= 500][:3]


async def test_raw_get_history_offsets(w: World, alice: Any) -> None:
    ids = _build_history(w.tg, w.news)
    peer = await alice.get_input_entity("examplenews")

    async def history(**kw: Any) -> list[int]:
        base = {"offset_id": 0, "offset_date": None, "add_offset": 0, "limit": 100, "max_id": 0, "min_id": 0, "hash": 0}
        r = await alice(functions.messages.GetHistoryRequest(peer=peer, **{**base, **kw}))
        assert r.count == len(ids)
        return [m.id for m in r.messages]

    desc = list(reversed(ids))
    pos = desc.index(502)  # first id < 503
    assert await history(offset_id=503, limit=10) == desc[pos : pos + 10]
    assert await history(offset_id=503, add_offset=-5, limit=10) == desc[pos - 5 : pos + 5]
    assert await history(offset_id=503, add_offset=3, limit=4) == desc[pos + 3 : pos + 7]
    assert await history(add_offset=-10, limit=20) == desc[:10]  # clipped at the newest
    assert await history(limit=500) == desc[:100]  # server cap
    assert await history(min_id=995, limit=10) == [i for i in desc if i > 995]
    assert await history(max_id=5, limit=10) == [4, 3, 2, 1]


async def test_get_messages_by_ids_returns_none_for_missing(w: World, alice: Any) -> None:
    _build_history(w.tg, w.news)
    got = await alice.get_messages("examplenews", ids=[6, 7, 8])
    assert [m.id if m else None for m in got] == [6, None, 8]


async def test_message_fields_survive_to_telethon(w: World, alice: Any) -> None:
    tg = w.tg
    src = tg.add_channel("Source", username="sourcechan")
    text = "Read https://example.org/a and the guide, ask @someone #news"
    first = tg.add_message(
        w.news, text, entities=None, views=120, forwards=4, post_author="Editor", edit_date=tg.now() + 5
    )
    link = [*detect_entities(text), text_url(text, "guide", "https://example.org/g")]
    tg.add_message(w.news, text, entities=link, reply_to=first.id)
    tg.add_message(w.news, "fwd", fwd=Forward(date=tg.now(), from_channel_id=src.id, channel_post=42, post_author="X"))
    tg.add_message(w.news, "", media=tg.photo(b"p1", 10, 10), grouped_id=77)
    tg.add_message(w.news, "", media=tg.photo(b"p2", 10, 10), grouped_id=77)
    tg.add_message(w.news, "", media=tg.video(b"v", duration=3.5, w=320, h=240, file_name="clip.mp4"))
    tg.add_message(w.news, "", media=tg.video(b"r", duration=2, w=240, h=240, round=True))
    tg.add_message(w.news, "", media=tg.gif(b"g", duration=1, w=100, h=100))
    tg.add_message(w.news, "", media=tg.voice(b"o", duration=4))
    tg.add_message(w.news, "", media=tg.sticker(b"s", alt="*"))
    ms = [m async for m in alice.iter_messages("examplenews", reverse=True)]

    m = ms[0]
    kinds = [type(e).__name__ for e in m.entities]
    assert kinds == ["MessageEntityUrl", "MessageEntityMention", "MessageEntityHashtag"]
    assert [t for _, t in m.get_entities_text()] == ["https://example.org/a", "@someone", "#news"]
    assert (m.views, m.forwards, m.post_author, m.post) == (120, 4, "Editor", True)
    assert m.edit_date is not None and m.edit_date > m.date
    assert ms[1].reply_to_msg_id == first.id
    assert any(getattr(e, "url", None) == "https://example.org/g" for e in ms[1].entities)
    assert (ms[2].fwd_from.from_id.channel_id, ms[2].fwd_from.channel_post) == (src.id, 42)
    assert ms[3].photo and ms[3].grouped_id == ms[4].grouped_id == 77
    assert ms[5].video and ms[5].file.name == "clip.mp4" and ms[5].file.duration == 3.5
    assert ms[6].video_note
    assert ms[7].gif
    assert ms[8].voice and ms[8].file.duration == 4
    assert ms[9].sticker and ms[9].file.emoji == "*"


# ------------------------------------------------------------------ media


async def test_download_media_returns_exact_bytes(w: World, alice: Any) -> None:
    photo = os.urandom(70_000)
    big = os.urandom(1_300_000)  # > 1 MiB: several getFile chunks across a MiB boundary
    w.tg.add_message(w.news, "p", media=w.tg.photo(photo, 800, 600, thumbs={"m": (320, 240, b"small")}))
    w.tg.add_message(w.news, "v", media=w.tg.video(big, duration=10, w=640, h=360))
    p, v = await alice.get_messages("examplenews", ids=[1, 2])
    assert await alice.download_media(p, file=bytes) == photo
    assert await alice.download_media(p, file=bytes, thumb=0) == b"small"
    assert await alice.download_media(v, file=bytes) == big
    assert w.tg.calls[("alice", "GetFileRequest")] >= 4


async def test_expired_file_reference_paths(w: World, alice: Any) -> None:
    doc = w.tg.document(os.urandom(5000), "application/pdf", file_name="report.pdf")
    pic = w.tg.photo(os.urandom(5000), 100, 100)
    w.tg.add_message(w.news, "d", media=doc)
    w.tg.add_message(w.news, "p", media=pic)
    d, p = await alice.get_messages("examplenews", ids=[1, 2])
    w.tg.expire_file_reference(doc)
    w.tg.expire_file_reference(pic)
    # documents: Telethon refetches the message itself and retries with the new reference
    assert await alice.download_media(d, file=bytes) == doc.data
    assert w.tg.calls[("alice", "GetMessagesRequest")] == 2
    # photos: the error reaches the caller, who refetches
    with pytest.raises(errors.FileReferenceExpiredError):
        await alice.download_media(p, file=bytes)
    fresh = await alice.get_messages("examplenews", ids=2)
    assert await alice.download_media(fresh, file=bytes) == pic.sizes["y"][2]
    # scripted: one FILE_REFERENCE_EXPIRED on the next getFile
    w.tg.faults.file_reference_expired(w.alice, times=1)
    with pytest.raises(errors.FileReferenceExpiredError):
        await alice.download_media(fresh, file=bytes)
    assert await alice.download_media(fresh, file=bytes) == pic.sizes["y"][2]


async def test_get_file_enforces_chunk_rules(w: World, alice: Any) -> None:
    f = w.tg.document(os.urandom(10_000), "application/octet-stream")
    w.tg.add_message(w.news, "d", media=f)
    msg = await alice.get_messages("examplenews", ids=1)
    d = msg.media.document
    loc = types.InputDocumentFileLocation(d.id, d.access_hash, d.file_reference, "")
    chunk = await alice(functions.upload.GetFileRequest(loc, offset=4096, limit=4096))
    assert chunk.bytes == f.data[4096:8192]
    with pytest.raises(errors.LimitInvalidError):
        await alice(functions.upload.GetFileRequest(loc, offset=0, limit=3000))
    with pytest.raises(errors.OffsetInvalidError):
        await alice(functions.upload.GetFileRequest(loc, offset=100, limit=4096))


# ------------------------------------------------------------------ faults


async def test_flood_wait_propagates_and_is_per_account(w: World, alice: Any) -> None:
    w.tg.fill_history(w.news, 300)
    w.tg.faults.flood_wait(w.alice, functions.messages.GetHistoryRequest, seconds=30, times=1)
    with pytest.raises(errors.FloodWaitError) as caught:
        await alice.get_messages("examplenews", limit=10)
    assert caught.value.seconds == 30
    sent = w.tg.calls[("alice", "GetHistoryRequest")]
    # Telethon remembers the wait and refuses locally, without asking the server
    with pytest.raises(errors.FloodWaitError):
        await alice.get_messages("examplenews", limit=10)
    assert w.tg.calls[("alice", "GetHistoryRequest")] == sent
    bob = w.tg.client(w.bob, flood_sleep_threshold=0)
    await bob.connect()
    try:
        assert len(await bob.get_messages("examplenews", limit=10)) == 10
    finally:
        await bob.disconnect()


async def test_flood_wait_storm_and_scripted_channel_private(w: World, alice: Any) -> None:
    w.tg.fill_history(w.news, 10)
    rule = w.tg.faults.flood_wait(None, None, seconds=5, times=None)
    for _ in range(3):
        with pytest.raises(errors.FloodWaitError):
            await alice(functions.contacts.ResolveUsernameRequest("examplenews"))
        alice._flood_waited_requests.clear()  # what waiting 5 s would do
    assert rule.fired == 3
    w.tg.faults.clear()
    entity = await alice.get_entity("examplenews")
    w.tg.faults.channel_private(w.alice, w.news)
    with pytest.raises(errors.ChannelPrivateError):
        await alice.get_messages(entity, limit=1)


async def test_unknown_request_names_its_type(alice: Any) -> None:
    with pytest.raises(UnsupportedRequest, match="GetDialogFiltersRequest"):
        await alice(functions.messages.GetDialogFiltersRequest())


# ------------------------------------------------------------------ invites


async def test_check_and_import_invite(w: World, alice: Any) -> None:
    secret = w.tg.add_channel("Closed room", private=True, megagroup=True, participants=40, about="members only")
    w.tg.add_message(secret, "welcome")
    inv = w.tg.add_invite(secret)
    info = await alice(functions.messages.CheckChatInviteRequest(inv.hash))
    assert isinstance(info, types.ChatInvite)
    assert (info.title, info.participants_count, info.channel, info.megagroup, info.broadcast) == (
        "Closed room",
        40,
        True,
        True,
        False,
    )
    joined = await alice(functions.messages.ImportChatInviteRequest(inv.hash))
    assert joined.chats[0].id == secret.id
    assert [m.text async for m in alice.iter_messages(secret.id)] == ["welcome"]
    again = await alice(functions.messages.CheckChatInviteRequest(inv.hash))
    assert isinstance(again, types.ChatInviteAlready) and again.chat.id == secret.id
    with pytest.raises(errors.UserAlreadyParticipantError):
        await alice(functions.messages.ImportChatInviteRequest(inv.hash))


async def test_invite_errors(w: World, alice: Any) -> None:
    secret = w.tg.add_channel("Closed room", private=True)
    expired = w.tg.add_invite(secret, expires=w.tg.now() - 60)
    approval = w.tg.add_invite(secret, request_needed=True)
    with pytest.raises(errors.InviteHashExpiredError):
        await alice(functions.messages.CheckChatInviteRequest(expired.hash))
    with pytest.raises(errors.InviteHashInvalidError):
        await alice(functions.messages.CheckChatInviteRequest("doesnotexist"))
    with pytest.raises(errors.InviteRequestSentError):
        await alice(functions.messages.ImportChatInviteRequest(approval.hash))
    assert w.alice.id in secret.join_requests and w.alice.id not in secret.members


# ------------------------------------------------------------------ live updates


async def _watching(tg: FakeTelegram, account: FakeUser, ch: FakeChannel) -> tuple[Any, asyncio.Queue[Any]]:
    tg.join(account, ch)
    client = tg.client(account)
    seen: asyncio.Queue[Any] = asyncio.Queue()

    async def on_event(event: Any) -> None:
        await seen.put(event)

    client.add_event_handler(on_event, events.NewMessage())
    client.add_event_handler(on_event, events.MessageEdited())
    client.add_event_handler(on_event, events.MessageDeleted())
    await client.connect()
    if ch.username:
        await client.get_entity(ch.username)
    return client, seen


async def test_live_new_edit_delete_events(w: World) -> None:
    client, seen = await _watching(w.tg, w.alice, w.news)
    try:
        m = w.tg.post(w.news, "breaking https://example.org")
        w.tg.edit(w.news, m.id, "breaking (updated)")
        w.tg.delete(w.news, [m.id])
        new, edited, deleted = await _drain(seen, 3)
        assert isinstance(new, events.NewMessage.Event) and new.message.id == m.id
        assert new.chat_id == -1000000000000 - w.news.id
        assert new.message.entities and new.message.text == "breaking https://example.org"
        assert isinstance(edited, events.MessageEdited.Event) and edited.message.text == "breaking (updated)"
        assert edited.message.edit_date is not None
        assert isinstance(deleted, events.MessageDeleted.Event) and deleted.deleted_ids == [m.id]
        assert w.news.pts == 4
    finally:
        await client.disconnect()


async def test_updates_go_only_to_members(w: World) -> None:
    other = w.tg.add_channel("Other", username="otherchan")
    client, seen = await _watching(w.tg, w.alice, w.news)
    try:
        w.tg.post(other, "not for alice")
        w.tg.post(w.news, "for alice")
        (event,) = await _drain(seen, 1)
        assert event.message.text == "for alice"
        assert seen.empty()
    finally:
        await client.disconnect()


async def test_catch_up_after_disconnect_delivers_missed_messages(w: World) -> None:
    client, seen = await _watching(w.tg, w.alice, w.news)
    try:
        w.tg.post(w.news, "seen live")
        await _drain(seen, 1)
        await client.disconnect()
        missed = [w.tg.post(w.news, f"missed {i}").id for i in range(3)]
        assert seen.empty()
        await client.connect()
        await client.catch_up()
        got = await _drain(seen, 3)
        assert sorted(e.message.id for e in got) == missed
        assert w.tg.calls[("alice", "GetChannelDifferenceRequest")] >= 1
    finally:
        await client.disconnect()


async def test_gap_is_filled_when_the_next_live_update_arrives(w: World) -> None:
    client, seen = await _watching(w.tg, w.alice, w.news)
    try:
        w.tg.post(w.news, "one")
        await _drain(seen, 1)
        await client.disconnect()
        w.tg.post(w.news, "two (missed)")
        await client.connect()
        w.tg.post(w.news, "three")  # pts jumps by 2: Telethon detects the gap and asks for the difference
        texts = sorted(e.message.text for e in await _drain(seen, 2))
        assert texts == ["three", "two (missed)"]
    finally:
        await client.disconnect()


async def test_missed_edits_and_deletes_are_not_replayed_by_telethon(w: World) -> None:
    """Pinned Telethon 1.45 behaviour (see the package docstring): catch-up replays missed new
    messages only; the watcher must reconcile edits/deletions from history itself."""
    client, seen = await _watching(w.tg, w.alice, w.news)
    try:
        first = w.tg.post(w.news, "one")
        second = w.tg.post(w.news, "two")
        await _drain(seen, 2)
        await client.disconnect()
        w.tg.edit(w.news, first.id, "one (edited)")
        w.tg.delete(w.news, [second.id])
        third = w.tg.post(w.news, "three")
        await client.connect()
        await client.catch_up()
        (event,) = await _drain(seen, 1)
        assert isinstance(event, events.NewMessage.Event) and event.message.id == third.id
        assert w.tg.calls[("alice", "GetChannelDifferenceRequest")] >= 1
    finally:
        await client.disconnect()
