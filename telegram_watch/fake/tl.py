"""World records → fresh Telethon TL objects, as one account sees them.

Built per request (never cached and shared), so the client may mutate what it receives, as
Telethon does in ``Message._finish_init``; access hashes differ per account, as on Telegram.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from .model import FakeChannel, FakeChat, FakeFile, FakeMessage, FakeUser

if TYPE_CHECKING:
    from .world import FakeTelegram

DC_ID = 2  # Telethon's DEFAULT_DC_ID: media lives "here", so no exported sender is needed
_UTC = dt.UTC


def when(ts: int | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, _UTC)


def user(world: FakeTelegram, viewer: FakeUser, u: FakeUser) -> Any:
    is_self = u is viewer
    return types.User(
        id=u.id,
        is_self=is_self,
        access_hash=world.access_hash("user", u.id, viewer.id),
        first_name=u.first_name,
        last_name=u.last_name,
        username=u.username,
        phone=u.phone if is_self else None,
        bot=u.bot,
        bot_info_version=1 if u.bot else None,  # the TL flag pairs them
    )


def channel(world: FakeTelegram, viewer: FakeUser, ch: FakeChannel) -> Any:
    access_hash = world.access_hash("channel", ch.id, viewer.id)
    if not world.can_see(viewer, ch):
        return types.ChannelForbidden(
            id=ch.id, access_hash=access_hash, title=ch.title, broadcast=not ch.megagroup, megagroup=ch.megagroup
        )
    restriction = None
    if ch.banned:
        restriction = [types.RestrictionReason(platform="all", reason=ch.ban_reason, text=ch.ban_text)]
    return types.Channel(
        id=ch.id,
        title=ch.title,
        photo=types.ChatPhotoEmpty(),
        date=when(ch.date),
        broadcast=not ch.megagroup,
        megagroup=ch.megagroup,
        signatures=ch.signatures,
        left=viewer.id not in ch.members,
        restricted=ch.banned,
        restriction_reason=restriction,
        access_hash=access_hash,
        username=ch.username,
        participants_count=ch.participants_count,
        forum=ch.forum or None,
    )


def chat(world: FakeTelegram, viewer: FakeUser, c: FakeChat) -> Any:
    migrated_to = None
    if c.migrated_to is not None:
        migrated_to = types.InputChannel(c.migrated_to.id, world.access_hash("channel", c.migrated_to.id, viewer.id))
    return types.Chat(
        id=c.id,
        title=c.title,
        photo=types.ChatPhotoEmpty(),
        participants_count=c.participants_count,
        date=when(c.date),
        version=1,
        deactivated=c.migrated_to is not None,
        left=viewer.id not in c.members,
        migrated_to=migrated_to,
    )


def peer_of(target: FakeChannel | FakeChat) -> Any:
    if isinstance(target, FakeChannel):
        return types.PeerChannel(target.id)
    return types.PeerChat(target.id)


def media(f: FakeFile | None) -> Any:
    if f is None:
        return None
    if f.kind == "photo":
        sizes = [types.PhotoSize(type=t, w=w, h=h, size=len(b)) for t, (w, h, b) in f.sizes.items()]
        photo = types.Photo(
            id=f.id,
            access_hash=f.access_hash,
            file_reference=f.file_reference,
            date=when(f.date),
            sizes=sizes,
            dc_id=DC_ID,
        )
        return types.MessageMediaPhoto(photo=photo)
    document = types.Document(
        id=f.id,
        access_hash=f.access_hash,
        file_reference=f.file_reference,
        date=when(f.date),
        mime_type=f.mime_type,
        size=len(f.data),
        dc_id=DC_ID,
        attributes=list(f.attributes),
    )
    return types.MessageMediaDocument(document=document)


def message(target: FakeChannel | FakeChat, m: FakeMessage) -> Any:
    is_post = isinstance(target, FakeChannel) and not target.megagroup
    fwd = None
    if m.fwd is not None:
        f = m.fwd
        from_id = None
        if f.from_channel_id is not None:
            from_id = types.PeerChannel(f.from_channel_id)
        elif f.from_user_id is not None:
            from_id = types.PeerUser(f.from_user_id)
        fwd = types.MessageFwdHeader(
            date=when(f.date),
            from_id=from_id,
            from_name=f.from_name,
            channel_post=f.channel_post,
            post_author=f.post_author,
        )
    views, forwards = m.views, m.forwards
    if views is not None or forwards is not None:  # one TL flag covers both fields
        views, forwards = views or 0, forwards or 0
    msg = types.Message(
        id=m.id,
        peer_id=peer_of(target),
        date=when(m.date),
        message=m.text,
        post=is_post or None,
        from_id=types.PeerUser(m.sender_id) if m.sender_id is not None else None,
        fwd_from=fwd,
        reply_to=types.MessageReplyHeader(reply_to_msg_id=m.reply_to) if m.reply_to else None,
        media=media(m.media),
        entities=list(m.entities) if m.entities else None,
        views=views,
        forwards=forwards,
        edit_date=when(m.edit_date),
        post_author=m.post_author,
        grouped_id=m.grouped_id,
    )
    if m.extra is not None:
        from .extras import decorate

        return decorate(target, m, msg)
    return msg
