"""``users.getFullUser``: a user's bio, and for a bot its description and commands (``botInfo``)."""

from __future__ import annotations

from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import users as t_users

from . import tl
from .dispatch import handles
from .faults import RpcFault
from .model import FakeUser
from .world import FakeTelegram


@handles(functions.users.GetFullUserRequest)
def _get_full_user(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ref = req.id
    if isinstance(ref, types.InputUserSelf):
        u: FakeUser | None = viewer
    else:
        u = world.users.get(getattr(ref, "user_id", 0))
        if u is not None and ref.access_hash != world.access_hash("user", u.id, viewer.id):
            u = None
    if u is None:
        raise RpcFault("USER_ID_INVALID")
    info = None
    if u.bot:
        info = types.BotInfo(
            user_id=u.id,
            description=u.bot_description,
            commands=[types.BotCommand(command=c, description=d) for c, d in u.bot_commands],
        )
    full = types.UserFull(
        id=u.id,
        settings=types.PeerSettings(),
        notify_settings=types.PeerNotifySettings(),
        common_chats_count=0,
        about=u.about or None,
        bot_info=info,
    )
    return t_users.UserFull(full_user=full, chats=[], users=[tl.user(world, viewer, u)])
