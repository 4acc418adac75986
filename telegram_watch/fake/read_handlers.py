"""Handlers for what an account can read: entities, history, files and updates.

They share the input resolution at the top (access hashes are per account, banned and
private channels refuse reads), which is why they live together; joining and leaving, which
change membership rather than read it, are in ``membership_handlers``.
"""

from __future__ import annotations

import re
from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import contacts as t_contacts
from telethon.tl.types import messages as t_messages
from telethon.tl.types import storage as t_storage
from telethon.tl.types import updates as t_updates
from telethon.tl.types import upload as t_upload

from . import tl
from .dispatch import UnsupportedRequest, handles
from .faults import RpcFault
from .model import FakeChannel, FakeChat, FakeFile, FakeMessage, FakeUser
from .world import FakeTelegram

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_MIB = 1024 * 1024


# ------------------------------------------------------------------------ input resolution


def input_channel(world: FakeTelegram, viewer: FakeUser, ref: Any) -> FakeChannel:
    """InputChannel / InputPeerChannel → channel, checking the per-account access hash."""
    ch = world.channels.get(getattr(ref, "channel_id", 0))
    if ch is None or ref.access_hash != world.access_hash("channel", ch.id, viewer.id):
        raise RpcFault("CHANNEL_INVALID")
    return ch


def readable(world: FakeTelegram, viewer: FakeUser, ch: FakeChannel) -> FakeChannel:
    if ch.banned:
        raise RpcFault("CHANNEL_BANNED")
    if not world.can_see(viewer, ch):
        raise RpcFault("CHANNEL_PRIVATE")
    return ch


def _peer(world: FakeTelegram, viewer: FakeUser, peer: Any) -> FakeChannel | FakeChat:
    if isinstance(peer, types.InputPeerChannel):
        return readable(world, viewer, input_channel(world, viewer, peer))
    if isinstance(peer, types.InputPeerChat):
        c = world.chats.get(peer.chat_id)
        if c is None:
            raise RpcFault("CHAT_ID_INVALID")
        if viewer.id not in c.members:
            raise RpcFault("CHANNEL_PRIVATE")
        return c
    raise RpcFault("PEER_ID_INVALID")


def _chat_tl(world: FakeTelegram, viewer: FakeUser, target: FakeChannel | FakeChat) -> Any:
    return tl.channel(world, viewer, target) if isinstance(target, FakeChannel) else tl.chat(world, viewer, target)


def _people(world: FakeTelegram, viewer: FakeUser, messages: list[FakeMessage]) -> tuple[list[Any], list[Any]]:
    """The users and chats referenced by ``messages`` (senders, forward sources)."""
    user_ids: set[int] = set()
    channel_ids: set[int] = set()
    for m in messages:
        if m.sender_id is not None:
            user_ids.add(m.sender_id)
        if m.fwd is not None:
            if m.fwd.from_user_id is not None:
                user_ids.add(m.fwd.from_user_id)
            if m.fwd.from_channel_id is not None:
                channel_ids.add(m.fwd.from_channel_id)
    users = [tl.user(world, viewer, world.users[i]) for i in user_ids if i in world.users]
    chats = [tl.channel(world, viewer, world.channels[i]) for i in channel_ids if i in world.channels]
    return users, chats


def _messages_result(
    world: FakeTelegram, viewer: FakeUser, target: FakeChannel | FakeChat, found: list[FakeMessage]
) -> Any:
    users, chats = _people(world, viewer, found)
    chats = [_chat_tl(world, viewer, target), *(c for c in chats if c.id != target.id)]
    msgs = [tl.message(target, m) for m in found]
    if isinstance(target, FakeChannel):
        return t_messages.ChannelMessages(
            pts=target.pts, count=len(target.history), messages=msgs, topics=[], chats=chats, users=users
        )
    return t_messages.MessagesSlice(count=len(target.history), messages=msgs, chats=chats, users=users)


# ------------------------------------------------------------------------ users & entities


@handles(functions.users.GetUsersRequest)
def _get_users(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    out = []
    for ref in req.id:
        if isinstance(ref, types.InputUserSelf):
            out.append(tl.user(world, viewer, viewer))
            continue
        u = world.users.get(getattr(ref, "user_id", 0))
        if u is not None and ref.access_hash == world.access_hash("user", u.id, viewer.id):
            out.append(tl.user(world, viewer, u))
    return out


@handles(functions.contacts.ResolveUsernameRequest)
def _resolve_username(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    name = req.username
    if not _USERNAME.match(name):
        raise RpcFault("USERNAME_INVALID")
    low = name.lower()
    for ch in world.channels.values():
        if ch.username and ch.username.lower() == low:
            return t_contacts.ResolvedPeer(
                peer=types.PeerChannel(ch.id), chats=[tl.channel(world, viewer, ch)], users=[]
            )
    for u in world.users.values():
        if u.username and u.username.lower() == low:
            return t_contacts.ResolvedPeer(peer=types.PeerUser(u.id), chats=[], users=[tl.user(world, viewer, u)])
    raise RpcFault("USERNAME_NOT_OCCUPIED")


@handles(functions.channels.GetChannelsRequest)
def _get_channels(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    return t_messages.Chats(chats=[tl.channel(world, viewer, input_channel(world, viewer, ref)) for ref in req.id])


@handles(functions.messages.GetChatsRequest)
def _get_chats(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    out = []
    for chat_id in req.id:
        c = world.chats.get(chat_id)
        if c is None:
            raise RpcFault("CHAT_ID_INVALID")
        out.append(tl.chat(world, viewer, c))
    return t_messages.Chats(chats=out)


@handles(functions.channels.GetFullChannelRequest)
def _get_full_channel(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = readable(world, viewer, input_channel(world, viewer, req.channel))
    full = types.ChannelFull(
        id=ch.id,
        about=ch.about,
        read_inbox_max_id=ch.history.top_id,
        read_outbox_max_id=ch.history.top_id,
        unread_count=0,
        chat_photo=types.PhotoEmpty(id=0),
        notify_settings=types.PeerNotifySettings(),
        bot_info=[],
        pts=ch.pts,
        participants_count=ch.participants_count,
        migrated_from_chat_id=ch.migrated_from_chat_id,
        migrated_from_max_id=ch.migrated_from_max_id,
        linked_chat_id=ch.linked_chat_id,
    )
    chats = [tl.channel(world, viewer, ch)]
    if ch.linked_chat_id is not None and ch.linked_chat_id in world.channels:  # Telegram sends the linked chat
        chats.append(tl.channel(world, viewer, world.channels[ch.linked_chat_id]))
    if ch.migrated_from_chat_id is not None and ch.migrated_from_chat_id in world.chats:
        chats.append(tl.chat(world, viewer, world.chats[ch.migrated_from_chat_id]))
    return t_messages.ChatFull(full_chat=full, chats=chats, users=[])


# ------------------------------------------------------------------------ messages


@handles(functions.messages.GetHistoryRequest)
def _get_history(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    target = _peer(world, viewer, req.peer)
    offset_date = int(req.offset_date.timestamp()) if req.offset_date else 0
    found = list(
        target.history.slice(
            offset_id=req.offset_id,
            offset_date=offset_date,
            add_offset=req.add_offset,
            limit=min(req.limit, 100),
            max_id=req.max_id,
            min_id=req.min_id,
        )
    )
    return _messages_result(world, viewer, target, found)


@handles(functions.channels.GetMessagesRequest)
def _get_channel_messages(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = readable(world, viewer, input_channel(world, viewer, req.channel))
    if not req.id:
        raise RpcFault("MESSAGE_IDS_EMPTY")
    found: list[FakeMessage] = []
    in_order: list[Any] = []  # Telegram answers in the order asked, MessageEmpty for the missing
    for ref in req.id:
        msg_id = getattr(ref, "id", None)
        m = ch.history.by_id.get(msg_id) if isinstance(msg_id, int) else None
        if m is None:
            in_order.append(types.MessageEmpty(id=msg_id or 0, peer_id=types.PeerChannel(ch.id)))
        else:
            found.append(m)
            in_order.append(tl.message(ch, m))
    users, chats = _people(world, viewer, found)
    return t_messages.ChannelMessages(
        pts=ch.pts,
        count=len(in_order),
        messages=in_order,
        topics=[],
        chats=[tl.channel(world, viewer, ch), *(c for c in chats if c.id != ch.id)],
        users=users,
    )


# ------------------------------------------------------------------------ files


def _file_for(world: FakeTelegram, loc: Any) -> tuple[FakeFile, bytes]:
    if isinstance(loc, types.InputPhotoFileLocation):
        f = world.files.get(("photo", loc.id))
    elif isinstance(loc, types.InputDocumentFileLocation):
        f = world.files.get(("document", loc.id))
    else:
        raise UnsupportedRequest(f"FakeTelegram cannot serve {type(loc).__name__}")
    if f is None or f.access_hash != loc.access_hash:
        raise RpcFault("FILE_ID_INVALID")
    if loc.file_reference != f.file_reference:
        raise RpcFault("FILE_REFERENCE_EXPIRED")
    data = f.bytes_for(loc.thumb_size)
    if data is None:
        raise RpcFault("LOCATION_INVALID")
    return f, data


@handles(functions.upload.GetFileRequest)
def _get_file(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    """upload.getFile with Telegram's chunk rules (offset/limit alignment, 1 MiB windows)."""
    f, data = _file_for(world, req.location)
    align = 1024 if req.precise else 4096
    if req.limit <= 0 or req.limit > _MIB or req.limit % 1024 or (not req.precise and _MIB % req.limit):
        raise RpcFault("LIMIT_INVALID")
    if req.offset < 0 or req.offset % align:
        raise RpcFault("OFFSET_INVALID")
    if not req.precise and req.offset // _MIB != (req.offset + req.limit - 1) // _MIB:
        raise RpcFault("LIMIT_INVALID")
    kind = t_storage.FileJpeg() if f.kind == "photo" else t_storage.FileUnknown()
    return t_upload.File(type=kind, mtime=f.date, bytes=data[req.offset : req.offset + req.limit])


# ------------------------------------------------------------------------ updates


@handles(functions.updates.GetStateRequest)
def _get_state(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    return t_updates.State(pts=1, qts=0, date=tl.when(world.now()), seq=0, unread_count=0)


@handles(functions.updates.GetDifferenceRequest)
def _get_difference(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    """Account difference: the common box is always quiet here, but channels the account
    joined that changed since ``date`` are announced with ``updateChannelTooLong`` (as Telegram
    does), which makes Telethon fetch each one's channel difference."""
    since = int(req.date.timestamp()) if req.date else 0
    changed = [
        ch
        for ch in world.channels.values()
        if viewer.id in ch.members and ch.events and ch.events[-1].date >= since and world.can_see(viewer, ch)
    ]
    now = tl.when(world.now())
    if not changed:
        return t_updates.DifferenceEmpty(date=now, seq=0)
    return t_updates.Difference(
        new_messages=[],
        new_encrypted_messages=[],
        other_updates=[types.UpdateChannelTooLong(channel_id=ch.id, pts=ch.pts) for ch in changed],
        chats=[tl.channel(world, viewer, ch) for ch in changed],
        users=[],
        state=t_updates.State(pts=1, qts=0, date=now, seq=0, unread_count=0),
    )


@handles(functions.updates.GetChannelDifferenceRequest)
def _get_channel_difference(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = readable(world, viewer, input_channel(world, viewer, req.channel))
    pending = [ev for ev in ch.events if ev.pts > req.pts]
    if not pending or req.pts >= ch.pts:
        return t_updates.ChannelDifferenceEmpty(pts=ch.pts, final=True, timeout=30)
    batch = pending[: max(1, req.limit)]
    new_messages: list[Any] = []
    other: list[Any] = []
    shown: list[FakeMessage] = []
    for ev in batch:
        if ev.kind == "delete":
            other.append(types.UpdateDeleteChannelMessages(ch.id, list(ev.deleted_ids), ev.pts, ev.pts_count))
            continue
        m = ch.history.by_id.get(ev.msg_id)
        if m is None:
            continue  # deleted since; its deletion event follows
        shown.append(m)
        if ev.kind == "new":
            new_messages.append(tl.message(ch, m))
        else:
            other.append(types.UpdateEditChannelMessage(tl.message(ch, m), ev.pts, ev.pts_count))
    users, chats = _people(world, viewer, shown)
    last = batch[-1].pts
    return t_updates.ChannelDifference(
        pts=last,
        new_messages=new_messages,
        other_updates=other,
        chats=[tl.channel(world, viewer, ch), *(c for c in chats if c.id != ch.id)],
        users=users,
        final=last == ch.pts,
        timeout=30,
    )
