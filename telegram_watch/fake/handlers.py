"""The fake server: one function per TL request, answering with real TL objects.

``answer(world, auth_key, request)`` is the whole server. It unwraps the connection
wrappers (``invokeWithLayer``, ``initConnection``, ``invokeWithoutUpdates``), finds the
account the auth key is logged in as, applies scripted faults, then calls the handler.
Errors are raised as :class:`RpcFault` (a Telegram error message such as
``CHANNEL_PRIVATE``); the fake sender converts them into Telethon's own exception classes.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import re
from collections.abc import Callable
from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import auth as t_auth
from telethon.tl.types import contacts as t_contacts
from telethon.tl.types import messages as t_messages
from telethon.tl.types import storage as t_storage
from telethon.tl.types import updates as t_updates
from telethon.tl.types import upload as t_upload

from . import tl
from .faults import RpcFault
from .model import FakeChannel, FakeChat, FakeFile, FakeInvite, FakeMessage, FakeUser
from .world import SERVER_IP, SERVER_PORT, FakeTelegram


class UnsupportedRequest(NotImplementedError):
    """The fake has no handler for this TL request (extend ``handlers.py``)."""


Handler = Callable[[FakeTelegram, FakeUser, Any], Any]
_HANDLERS: dict[type, Handler] = {}
_NO_AUTH: set[type] = set()  # requests allowed before login
_WRAPPERS = (functions.InvokeWithLayerRequest, functions.InitConnectionRequest, functions.InvokeWithoutUpdatesRequest)
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_MIB = 1024 * 1024
# The auth key of the request being answered: sign-in and logout bind or drop it.
_current_key: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("fake_tg_auth_key", default=None)


def handles(request_type: type, *, auth: bool = True) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[request_type] = fn
        if not auth:
            _NO_AUTH.add(request_type)
        return fn

    return register


def answer(world: FakeTelegram, auth_key: bytes | None, request: Any) -> Any:
    """Answer one request the way Telegram would, for whoever ``auth_key`` is logged in as."""
    while isinstance(request, _WRAPPERS):
        request = request.query
    kind = type(request)
    handler = _HANDLERS.get(kind)
    account = world.account_for_key(auth_key)
    name = account.name if account else "-"
    world.calls[(name, kind.__name__)] += 1
    world.log.append((name, kind.__name__))
    if handler is None:
        raise UnsupportedRequest(f"FakeTelegram cannot answer {kind.__name__} (add a handler in fake/handlers.py)")
    if account is not None and account.deactivated:
        raise RpcFault("USER_DEACTIVATED_BAN")
    if account is None and kind not in _NO_AUTH:
        raise RpcFault("AUTH_KEY_UNREGISTERED")
    world.faults.check(account.id if account else None, request)
    return handler(world, account, request)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ input resolution


def _channel(world: FakeTelegram, viewer: FakeUser, ref: Any) -> FakeChannel:
    """InputChannel / InputPeerChannel → channel, checking the per-account access hash."""
    ch = world.channels.get(getattr(ref, "channel_id", 0))
    if ch is None or ref.access_hash != world.access_hash("channel", ch.id, viewer.id):
        raise RpcFault("CHANNEL_INVALID")
    return ch


def _readable(world: FakeTelegram, viewer: FakeUser, ch: FakeChannel) -> FakeChannel:
    if ch.banned:
        raise RpcFault("CHANNEL_BANNED")
    if not world.can_see(viewer, ch):
        raise RpcFault("CHANNEL_PRIVATE")
    return ch


def _peer(world: FakeTelegram, viewer: FakeUser, peer: Any) -> FakeChannel | FakeChat:
    if isinstance(peer, types.InputPeerChannel):
        return _readable(world, viewer, _channel(world, viewer, peer))
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


# ------------------------------------------------------------------------ help / auth


@handles(functions.help.GetConfigRequest, auth=False)
def _get_config(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    now = tl.when(world.now())
    assert now is not None
    options = [types.DcOption(id=i, ip_address=f"149.154.167.{50 + i}", port=SERVER_PORT) for i in range(1, 6)]
    options[1] = types.DcOption(id=2, ip_address=SERVER_IP, port=SERVER_PORT)
    return types.Config(
        date=now,
        expires=now + dt.timedelta(hours=1),
        test_mode=False,
        this_dc=tl.DC_ID,
        dc_options=options,
        dc_txt_domain_name="_fake.invalid",
        chat_size_max=200,
        megagroup_size_max=200_000,
        forwarded_count_max=100,
        online_update_period_ms=210_000,
        offline_blur_timeout_ms=5_000,
        offline_idle_timeout_ms=30_000,
        online_cloud_timeout_ms=300_000,
        notify_cloud_delay_ms=30_000,
        notify_default_delay_ms=1_500,
        push_chat_period_ms=60_000,
        push_chat_limit=2,
        edit_time_limit=172_800,
        revoke_time_limit=2_147_483_647,
        revoke_pm_time_limit=2_147_483_647,
        rating_e_decay=2_419_200,
        stickers_recent_limit=200,
        channels_read_media_period=604_800,
        call_receive_timeout_ms=20_000,
        call_ring_timeout_ms=90_000,
        call_connect_timeout_ms=30_000,
        call_packet_timeout_ms=10_000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=4,
    )


@handles(functions.auth.SendCodeRequest, auth=False)
def _send_code(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    if not any(u.phone == req.phone_number.lstrip("+") for u in world.users.values()):
        raise RpcFault("PHONE_NUMBER_INVALID")
    return t_auth.SentCode(type=t_auth.SentCodeTypeApp(length=5), phone_code_hash=os.urandom(8).hex())


@handles(functions.auth.SignInRequest, auth=False)
def _sign_in(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    account = next((u for u in world.users.values() if u.phone == req.phone_number.lstrip("+")), None)
    if account is None:
        raise RpcFault("PHONE_NUMBER_INVALID")
    if req.phone_code != account.login_code:
        raise RpcFault("PHONE_CODE_INVALID")
    key = _current_key.get()
    if key is not None:
        world.authorize(account, key)
    return t_auth.Authorization(user=tl.user(world, account, account))


@handles(functions.auth.LogOutRequest)
def _log_out(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    key = _current_key.get()
    if key is not None:
        world.auth_keys.pop(key, None)
    return t_auth.LoggedOut()


@handles(functions.auth.ExportAuthorizationRequest)
def _export_auth(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    if req.dc_id == tl.DC_ID:
        raise RpcFault("DC_ID_INVALID")
    token = os.urandom(32)
    export_id = int.from_bytes(os.urandom(7), "little")
    world.exported[export_id] = (token, viewer.id)
    return t_auth.ExportedAuthorization(id=export_id, bytes=token)


@handles(functions.auth.ImportAuthorizationRequest, auth=False)
def _import_auth(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    token, account_id = world.exported.pop(req.id, (b"", 0))
    key = _current_key.get()
    if token != req.bytes or key is None:
        raise RpcFault("AUTH_BYTES_INVALID")
    account = world.users[account_id]
    world.authorize(account, key)
    return t_auth.Authorization(user=tl.user(world, account, account))


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
    return t_messages.Chats(chats=[tl.channel(world, viewer, _channel(world, viewer, ref)) for ref in req.id])


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
    ch = _readable(world, viewer, _channel(world, viewer, req.channel))
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
    )
    chats = [tl.channel(world, viewer, ch)]
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
    ch = _readable(world, viewer, _channel(world, viewer, req.channel))
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


# ------------------------------------------------------------------------ invites & joining


def _invite(world: FakeTelegram, invite_hash: str) -> FakeInvite:
    inv = world.invites.get(invite_hash)
    if inv is None:
        raise RpcFault("INVITE_HASH_INVALID")
    exhausted = inv.usage_limit is not None and inv.usage >= inv.usage_limit
    if inv.revoked or exhausted or (inv.expires is not None and inv.expires <= world.now()):
        raise RpcFault("INVITE_HASH_EXPIRED")
    return inv


@handles(functions.messages.CheckChatInviteRequest)
def _check_invite(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    inv = _invite(world, req.hash)
    ch = inv.channel
    if viewer.id in ch.members:
        return types.ChatInviteAlready(chat=tl.channel(world, viewer, ch))
    return types.ChatInvite(
        title=ch.title,
        photo=types.PhotoEmpty(id=0),
        participants_count=ch.participants_count,
        color=0,
        channel=True,
        broadcast=not ch.megagroup,
        megagroup=ch.megagroup,
        public=ch.username is not None,
        request_needed=inv.request_needed,
        about=ch.about or None,
    )


def _joined(world: FakeTelegram, viewer: FakeUser, ch: FakeChannel) -> Any:
    world.join(viewer, ch)
    return types.Updates(
        updates=[types.UpdateChannel(channel_id=ch.id)],
        users=[],
        chats=[tl.channel(world, viewer, ch)],
        date=tl.when(world.now()),
        seq=0,
    )


@handles(functions.messages.ImportChatInviteRequest)
def _import_invite(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    inv = _invite(world, req.hash)
    ch = inv.channel
    if ch.banned:
        raise RpcFault("CHANNEL_BANNED")
    if viewer.id in ch.kicked:
        raise RpcFault("CHANNEL_PRIVATE")
    if viewer.id in ch.members:
        raise RpcFault("USER_ALREADY_PARTICIPANT")
    if inv.request_needed:
        ch.join_requests.add(viewer.id)
        raise RpcFault("INVITE_REQUEST_SENT")
    inv.usage += 1
    return _joined(world, viewer, ch)


@handles(functions.channels.JoinChannelRequest)
def _join_channel(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _readable(world, viewer, _channel(world, viewer, req.channel))
    if viewer.id in ch.members:
        return types.Updates(
            updates=[], users=[], chats=[tl.channel(world, viewer, ch)], date=tl.when(world.now()), seq=0
        )
    return _joined(world, viewer, ch)


@handles(functions.channels.LeaveChannelRequest)
def _leave_channel(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _channel(world, viewer, req.channel)
    if viewer.id not in ch.members:
        raise RpcFault("USER_NOT_PARTICIPANT")
    ch.members.discard(viewer.id)
    ch.participants_count = max(0, ch.participants_count - 1)
    return types.Updates(
        updates=[types.UpdateChannel(channel_id=ch.id)],
        users=[],
        chats=[tl.channel(world, viewer, ch)],
        date=tl.when(world.now()),
        seq=0,
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
    ch = _readable(world, viewer, _channel(world, viewer, req.channel))
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


def answer_with_key(world: FakeTelegram, auth_key: bytes | None, request: Any) -> Any:
    """:func:`answer`, exposing ``auth_key`` to the auth handlers that bind or drop it."""
    token = _current_key.set(auth_key)
    try:
        return answer(world, auth_key, request)
    finally:
        _current_key.reset(token)
