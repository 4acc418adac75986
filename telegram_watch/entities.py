"""Channel resolution: a name or link → the channel's numeric id, current username and header.

Access hashes are per account, so work never carries an entity object from one account to another:
it carries a ``Target`` (username and/or numeric id) and each account resolves it with its own
session (``input_peer``). A username that now belongs to the channel under another name (rename)
yields a ``ChannelRef`` with the new username and the same id, which ingest records as an alias, so
old usernames stay attached to the channel. A legacy group that was migrated to a supergroup is
followed to the supergroup. Channels that cannot be read get a record with a clear ``ChannelState``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient
from telethon.errors import RPCError
from telethon.tl import functions, types

from foundation.errors import SourceError
from foundation.logs import get_logger
from foundation.models import Channel, ChannelRef, ChannelState
from telegram_watch.convert import channel_ref, convert_channel, unavailable_channel
from telegram_watch.errors import TelegramDenied, TelegramNotFound, channel_state_of, rpc_name
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

_LINK = re.compile(r"^(?:https?://)?(?:t\.me|telegram\.me)/(?:s/)?(?P<name>[A-Za-z0-9_]+)/?$", re.IGNORECASE)
_USERNAME = re.compile(r"^@?(?P<name>[A-Za-z][A-Za-z0-9_]{2,31})$")
_ID = re.compile(r"^(?:id)?(?P<id>-?\d+)$")


@dataclass(frozen=True)
class Target:
    """What every account can resolve by itself: a username and/or a numeric channel id."""

    username: str | None = None
    tg_id: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """``@name``, ``name``, ``https://t.me/name``, ``t.me/s/name``, ``id123``, ``-100123`` …"""
        text = text.strip()
        match = _ID.match(text)
        if match:
            raw = int(match["id"])
            if raw < 0:  # Bot-API style marked id: -100<channel_id>
                raw = int(str(raw).removeprefix("-100").removeprefix("-"))
            return cls(tg_id=raw)
        for pattern in (_LINK, _USERNAME):
            match = pattern.match(text)
            if match:
                return cls(username=match["name"].lower())
        raise TelegramNotFound(
            f"not a channel name, link or id: {text!r}", rpc="USERNAME_INVALID", channel_state=ChannelState.INVALID
        )

    @property
    def ref(self) -> ChannelRef:
        return ChannelRef(username=self.username, tg_id=self.tg_id)

    @property
    def key(self) -> str:
        """A pool key for per-channel bookkeeping (lock-outs) before the id is known."""
        return f"id{self.tg_id}" if self.tg_id is not None else f"u:{self.username}"


async def input_peer(client: TelegramClient, target: Target) -> Any:
    """This account's input peer for the target: cached id first, then username resolution."""
    if target.tg_id is not None:
        try:
            return await client.get_input_entity(types.PeerChannel(target.tg_id))
        except ValueError:
            if target.username is None:
                # not a channel this account knows: maybe a legacy group (no access hash needed),
                # which ``_fetch`` follows to its supergroup when it was migrated
                return types.InputPeerChat(target.tg_id)
    return await client.get_input_entity(target.username)


@dataclass(frozen=True)
class Resolved:
    target: Target
    ref: ChannelRef
    channel: Channel

    @property
    def ok(self) -> bool:
        return self.channel.state is ChannelState.OK

    @property
    def stream(self) -> str:
        return checkpoint_stream(self.ref)


def checkpoint_stream(ref: ChannelRef) -> str:
    return f"mtproto:id{ref.tg_id}" if ref.tg_id is not None else f"mtproto:{ref.username}"


async def _fetch(client: TelegramClient, target: Target) -> tuple[Any, Any]:
    peer = await input_peer(client, target)
    if isinstance(peer, types.InputPeerChat):
        try:
            entity = await client.get_entity(peer)
        except RPCError as exc:  # neither a channel this account knows nor a legacy group
            raise TelegramNotFound(
                f"id{target.tg_id} is unknown to this account", rpc=rpc_name(exc), channel_state=ChannelState.NOT_FOUND
            ) from exc
    else:
        entity = await client.get_entity(peer)
    if isinstance(entity, types.Chat) and isinstance(entity.migrated_to, types.InputChannel):
        log.info("group migrated to supergroup", chat=entity.id, channel=entity.migrated_to.channel_id)
        entity = await client.get_entity(
            types.InputPeerChannel(entity.migrated_to.channel_id, entity.migrated_to.access_hash)
        )
    full = None
    if isinstance(entity, types.Channel):
        full = await client(functions.channels.GetFullChannelRequest(entity))
    return entity, full


async def resolve(pool: AccountPool, target: Target) -> Resolved:
    """Resolve through the pool. Unreadable channels come back with ``ok == False``, not raised."""
    try:
        entity, full = await pool.run(target.key, lambda c: _fetch(c, target))
    except (TelegramDenied, TelegramNotFound) as exc:
        state = channel_state_of(exc) or ChannelState.PRIVATE
        log.info("channel unavailable", channel=target.key, state=str(state), rpc=exc.rpc)
        ref = target.ref
        return Resolved(target, ref, unavailable_channel(ref, state, exc.rpc))
    if not isinstance(entity, types.Channel | types.Chat):
        raise SourceError(f"{target.key} is a {type(entity).__name__}, not a channel or group")
    ref = channel_ref(entity)
    if target.username and ref.username != target.username:
        log.info(
            "username differs from the requested one", requested=target.username, current=ref.username, tg_id=ref.tg_id
        )
    channel = convert_channel(entity, full=full)
    return Resolved(Target(username=ref.username, tg_id=ref.tg_id), ref, channel)
