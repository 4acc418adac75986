"""Handlers that change membership: invite links, joining and leaving channels.

Apart from the read handlers because they mutate the world (member sets, invite usage,
join requests) and answer with ``Updates`` rather than data.
"""

from __future__ import annotations

from typing import Any

from telethon.tl import functions, types

from . import tl
from .dispatch import handles
from .faults import RpcFault
from .model import FakeChannel, FakeInvite, FakeUser
from .read_handlers import input_channel, readable
from .world import FakeTelegram

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
    ch = readable(world, viewer, input_channel(world, viewer, req.channel))
    if viewer.id in ch.members:
        return types.Updates(
            updates=[], users=[], chats=[tl.channel(world, viewer, ch)], date=tl.when(world.now()), seq=0
        )
    return _joined(world, viewer, ch)


@handles(functions.channels.LeaveChannelRequest)
def _leave_channel(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = input_channel(world, viewer, req.channel)
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
