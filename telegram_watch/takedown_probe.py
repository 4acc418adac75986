"""The MTProto probe: is a reported message or channel still on Telegram? Asked through the pool.

Items found over MTProto are re-checked the same way (``crawler.takedowns.probe.Probe``). Work is
grouped by channel: the channel is resolved once (``contacts.resolveUsername``, or the numeric id
through the account's own entity cache), then its message ids are asked with
``channels.getMessages`` in chunks of at most 100. Every request is one pool operation, so a flood
wait parks that account and the next request goes to another one, exactly as in backfill; entities
never travel between accounts (access hashes are per account), only a ``Target``.

What Telegram says, and what we record (``ProbeResult.reason``):

* a ``Message``/``MessageService`` with the asked id → ``online/present``; ``MessageEmpty`` →
  ``removed/message_deleted``;
* a channel whose entity is ``restricted`` with a restriction for platform ``"all"``, or a read
  answered ``CHANNEL_BANNED`` → ``removed/channel_blocked`` (``detail``: the notice's text);
* ``USERNAME_NOT_OCCUPIED``/``USERNAME_INVALID``/``CHANNEL_INVALID`` → ``removed/channel_not_found``;
* ``ChannelForbidden``/``CHANNEL_PRIVATE`` for every account → ``unknown/channel_private`` (our
  accounts were shut out, which does not prove the content is gone);
* every account flood-parked beyond the pool's ``max_wait`` → ``unknown/rate_limited``; no usable
  account → ``unknown/no_account``; anything else → ``unknown/fetch_failed``.

"Removed" is evidence that a platform acted, so anything short of Telegram saying so is
``unknown``: an id no account has an access hash for, a username that now names another channel
(it may have been renamed), an id missing from Telegram's answer. Failures are caught per channel
and per chunk: one channel's flood wait or ban never loses another channel's answers. Only
``StoreError`` (the pool records parked/retired accounts) propagates, as the ``Probe`` contract says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from telethon import TelegramClient
from telethon import errors as tle
from telethon.tl import functions, types

from foundation.contracts import ItemKind, ItemStatus, ProbeItem, ProbeResult
from foundation.errors import RateLimited, StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import ChannelState, utcnow
from telegram_watch.convert import channel_ref
from telegram_watch.entities import Target, input_peer
from telegram_watch.errors import TelegramDenied, TelegramNotFound, channel_state_of, rpc_name, telethon_errors
from telegram_watch.pool import AccountPool, NoAccount

log = get_logger(__name__)

METHOD = "mtproto"
CHUNK = 100  # the most ids one channels.getMessages answers
Clock = Callable[[], datetime]
T = TypeVar("T")

#: RPC errors that say the channel (or its name) is gone
_GONE_RPCS = frozenset({"USERNAME_NOT_OCCUPIED", "USERNAME_INVALID", "CHANNEL_INVALID"})
_URL_IDS = 10  # ids spelled out in a result's ``url``; the rest are counted


@dataclass(frozen=True)
class Outcome:
    """One answer, before it is stamped with an item id and a time."""

    status: ItemStatus
    reason: str
    url: str | None
    detail: str | None = None


@dataclass(frozen=True)
class _Found:
    """What resolving told us, as plain data (an entity carries one account's access hash)."""

    target: Target
    blocked: str | None = None  # the platform-"all" restriction text of a channel Telegram blocked
    verdict: Outcome | None = None  # the name/id leads somewhere we cannot probe


class MtprotoProbe:
    """``Probe`` over the account pool (``method = "mtproto"``)."""

    method = METHOD

    def __init__(self, pool: AccountPool, *, clock: Clock = utcnow, chunk_size: int = CHUNK) -> None:
        self.pool = pool
        self.clock = clock
        self.chunk_size = max(1, min(chunk_size, CHUNK))

    async def check(self, items: Sequence[ProbeItem]) -> list[ProbeResult]:
        """One result per item, in input order; channels are probed one after the other."""
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.channel, []).append(index)
        results: list[ProbeResult | None] = [None] * len(items)
        for channel, indexes in groups.items():
            group = [items[i] for i in indexes]
            outcomes = await self._channel(channel, group)
            at = self.clock()
            for index, item, outcome in zip(indexes, group, outcomes, strict=True):
                results[index] = ProbeResult(
                    item_id=item.item_id,
                    status=outcome.status,
                    reason=outcome.reason,
                    checked_at=at,
                    method=METHOD,
                    url=outcome.url,
                    detail=outcome.detail,
                )
        return [r for r in results if r is not None]

    # --- one channel ----------------------------------------------------------------------------

    async def _channel(self, channel: str, items: list[ProbeItem]) -> list[Outcome]:
        target = _target(items)
        if target is None:
            return [Outcome(ItemStatus.UNKNOWN, "not_checkable", None, "no username or channel id")] * len(items)
        found_url = _resolve_url(target)
        self._forget_lockouts(target.key)
        try:
            found = await self._run(target.key, partial(_lookup, target=target))
        except StoreError:
            raise
        except Exception as exc:  # the contract: a failed fetch is an answer, not an error
            outcome = _failure(exc, found_url)
            self._log(channel, outcome)
            return [outcome] * len(items)
        if found.blocked is not None or found.verdict is not None:
            outcome = found.verdict or Outcome(ItemStatus.REMOVED, "channel_blocked", found_url, found.blocked)
            self._log(channel, outcome)
            return [outcome] * len(items)

        key = found.target.key
        if key != target.key:
            self._forget_lockouts(key)
        asked = _unique(i.msg_id for i in items if i.kind is ItemKind.MESSAGE and i.msg_id is not None)
        by_id: dict[int, Outcome] = {}
        readable: Outcome | None = None  # the first read that worked: the channel is displayable
        unreadable: Outcome | None = None  # the first read that failed
        for start in range(0, len(asked), self.chunk_size):
            chunk = asked[start : start + self.chunk_size]
            url = _messages_url(found.target, chunk)
            try:
                answer = await self._run(key, partial(_read, target=found.target, ids=chunk))
            except StoreError:
                raise
            except Exception as exc:  # one chunk's failure must not lose the others
                outcome = _failure(exc, url)
                unreadable = unreadable or outcome
                by_id.update(dict.fromkeys(chunk, outcome))
                continue
            readable = readable or Outcome(ItemStatus.ONLINE, "present", url)
            for msg_id in chunk:
                by_id[msg_id] = _message_outcome(answer.get(msg_id), url)

        channel_outcome: Outcome | None = None
        if any(i.kind is ItemKind.CHANNEL for i in items):
            channel_outcome = readable or unreadable or await self._peek(found.target)
        outcomes = [self._item_outcome(i, by_id, channel_outcome) for i in items]
        for outcome in {o.reason: o for o in outcomes}.values():
            self._log(channel, outcome)
        return outcomes

    async def _peek(self, target: Target) -> Outcome:
        """Whether a channel with no message items is readable: its newest message, one request."""
        url = f"messages.GetHistory({_label(target)}, limit=1)"
        try:
            await self._run(target.key, partial(_newest, target=target))
        except StoreError:
            raise
        except Exception as exc:  # see _channel
            return _failure(exc, url)
        return Outcome(ItemStatus.ONLINE, "present", url)

    async def _run(self, key: str, op: Callable[[TelegramClient], Awaitable[T]]) -> T:
        """``pool.run``, but a refusal by every account reports the most telling one.

        The pool re-raises the *last* account's refusal; when one account was kicked (private) and
        another simply has no access hash for the id, the first says more about the channel.
        """
        denials: list[TelegramDenied] = []

        async def recorded(client: TelegramClient) -> T:
            try:
                with telethon_errors():
                    return await op(client)
            except TelegramDenied as exc:
                denials.append(exc)
                raise

        try:
            return await self.pool.run(key, recorded)
        except TelegramDenied as exc:
            best = max([*denials, exc], key=_weight)
            if best is exc:
                raise
            raise best from best.__cause__

    @staticmethod
    def _item_outcome(item: ProbeItem, by_id: dict[int, Outcome], channel_outcome: Outcome | None) -> Outcome:
        if item.kind is ItemKind.CHANNEL:
            assert channel_outcome is not None
            return channel_outcome
        if item.msg_id is None:
            return Outcome(ItemStatus.UNKNOWN, "not_checkable", None, "message item without a message id")
        return by_id[item.msg_id]

    def _forget_lockouts(self, key: str) -> None:
        """A re-check asks again: accounts once unable to read the channel may be able to now.

        The pool remembers lock-outs for its lifetime; left in place, a channel every account was
        once denied would answer ``NoAccount`` instead of Telegram's current word.
        """
        for member in self.pool.members:
            member.locked_out.discard(key)

    @staticmethod
    def _log(channel: str, outcome: Outcome) -> None:
        log.info(
            "takedown probe",
            channel=channel,
            status=str(outcome.status),
            reason=outcome.reason,
            detail=outcome.detail,
        )


# --- pool operations (one account, about one request each) -------------------------------------


async def _lookup(client: TelegramClient, target: Target) -> _Found:
    """Resolve the channel with this account: the cached id first (fresh entity), else the username."""
    entity: Any = None
    if target.tg_id is not None:
        try:
            entity = await client.get_entity(types.PeerChannel(target.tg_id))
        except ValueError:  # no access hash for this id in this account's cache
            if target.username is None:
                raise _unknown_id(target) from None
    if entity is None:
        assert target.username is not None
        resolved = await client(functions.contacts.ResolveUsernameRequest(target.username))
        entity = _peer_entity(resolved)
    return _inspect(entity, target)


def _peer_entity(resolved: Any) -> Any:
    peer = resolved.peer
    if isinstance(peer, types.PeerChannel):
        return next((c for c in resolved.chats if c.id == peer.channel_id), None)
    if isinstance(peer, types.PeerUser):
        return next((u for u in resolved.users if u.id == peer.user_id), None)
    return None


def _inspect(entity: Any, target: Target) -> _Found:
    """What the entity says: forbidden to this account, blocked by Telegram, or readable."""
    url = _resolve_url(target)
    if isinstance(entity, types.ChannelForbidden):
        # kicked, or a private channel we left: let the pool try the other accounts
        raise TelegramDenied("CHANNEL_PRIVATE", rpc="CHANNEL_PRIVATE", channel_state=ChannelState.PRIVATE)
    if target.tg_id is not None and getattr(entity, "id", None) != target.tg_id:
        what = f"{type(entity).__name__} id{getattr(entity, 'id', '?')}"
        detail = f"@{target.username} now names {what}, not id{target.tg_id} (renamed?)"
        return _Found(target, verdict=Outcome(ItemStatus.UNKNOWN, "fetch_failed", url, detail))
    if isinstance(entity, types.Chat):
        detail = "a legacy group, not a channel: channels.getMessages cannot ask it"
        return _Found(target, verdict=Outcome(ItemStatus.UNKNOWN, "not_checkable", url, detail))
    if not isinstance(entity, types.Channel):
        detail = f"@{target.username} now names a {type(entity).__name__}, not a channel"
        return _Found(target, verdict=Outcome(ItemStatus.REMOVED, "channel_not_found", url, detail))
    ref = channel_ref(entity)
    current = Target(username=(ref.username or target.username or None), tg_id=int(entity.id))
    if entity.restricted:
        for reason in entity.restriction_reason or []:
            if reason.platform == "all":
                return _Found(current, blocked=reason.text or reason.reason or "restricted")
    return _Found(current)


async def _channel_peer(client: TelegramClient, target: Target) -> types.InputPeerChannel:
    peer = await input_peer(client, target)
    if not isinstance(peer, types.InputPeerChannel):
        raise _unknown_id(target)
    return peer


async def _read(client: TelegramClient, target: Target, ids: list[int]) -> dict[int, bool]:
    """``channels.getMessages``: id → True (a message) / False (``MessageEmpty``); unanswered ids absent."""
    peer = await _channel_peer(client, target)
    channel = types.InputChannel(peer.channel_id, peer.access_hash)
    answer = await client(functions.channels.GetMessagesRequest(channel, [types.InputMessageID(i) for i in ids]))
    out: dict[int, bool] = {}
    for message in getattr(answer, "messages", None) or []:
        if isinstance(message, types.MessageEmpty):
            out[message.id] = False
        elif isinstance(message, types.Message | types.MessageService) and _in_channel(message, target):
            out[message.id] = True
    return out


async def _newest(client: TelegramClient, target: Target) -> None:
    await client.get_messages(await _channel_peer(client, target), limit=1)


def _in_channel(message: Any, target: Target) -> bool:
    peer = getattr(message, "peer_id", None)
    return target.tg_id is None or getattr(peer, "channel_id", target.tg_id) == target.tg_id


def _unknown_id(target: Target) -> TelegramDenied:
    # Denied, not NotFound: the pool then asks the other accounts, one may have the access hash
    return TelegramDenied(f"id{target.tg_id} is not known to this account (no access hash)", rpc="UNRESOLVED")


# --- answers ---------------------------------------------------------------------------------------


def _message_outcome(present: bool | None, url: str) -> Outcome:
    if present is True:
        return Outcome(ItemStatus.ONLINE, "present", url)
    if present is False:
        return Outcome(ItemStatus.REMOVED, "message_deleted", url, "MessageEmpty")
    return Outcome(ItemStatus.UNKNOWN, "fetch_failed", url, "the id was missing from Telegram's answer")


def _failure(exc: BaseException, url: str) -> Outcome:
    """A failed fetch as an answer: what the error says about the channel, else ``unknown``."""
    if isinstance(exc, RateLimited):
        detail = f"every account is flood-waiting (next free in {exc.retry_after:.0f}s)"
        return Outcome(ItemStatus.UNKNOWN, "rate_limited", url, detail)
    if isinstance(exc, NoAccount):
        return Outcome(ItemStatus.UNKNOWN, "no_account", url, exc.message)
    if isinstance(exc, TelegramDenied | TelegramNotFound):
        rpc = _root_rpc(exc)
        state = channel_state_of(exc)
        if rpc == "CHANNEL_BANNED":
            return Outcome(ItemStatus.REMOVED, "channel_blocked", url, rpc)
        if state is ChannelState.PRIVATE:
            return Outcome(ItemStatus.UNKNOWN, "channel_private", url, rpc)  # we were shut out: not a removal
        if rpc in _GONE_RPCS:
            return Outcome(ItemStatus.REMOVED, "channel_not_found", url, rpc)
        return Outcome(ItemStatus.UNKNOWN, "fetch_failed", url, f"{rpc}: {exc.message}" if rpc != exc.message else rpc)
    if isinstance(exc, TgwatchError):
        return Outcome(ItemStatus.UNKNOWN, "fetch_failed", url, f"{exc.kind}: {exc.message}")
    log.exception("takedown probe: unexpected error", url=url)
    return Outcome(ItemStatus.UNKNOWN, "fetch_failed", url, f"unexpected {type(exc).__name__}")


def _weight(exc: TelegramDenied) -> int:
    """How much a refusal says about the channel itself (banned > private > anything else)."""
    rpc = _root_rpc(exc)
    if rpc == "CHANNEL_BANNED":
        return 2
    return 1 if channel_state_of(exc) is ChannelState.PRIVATE else 0


def _root_rpc(exc: TelegramDenied | TelegramNotFound) -> str:
    """The Telegram error behind ours: Telethon turns USERNAME_NOT_OCCUPIED into a ValueError."""
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, tle.RPCError):
            return _telegram_message(cause)
        cause = cause.__cause__
    return exc.rpc


def _telegram_message(exc: tle.RPCError) -> str:
    return rpc_name(exc)


# --- targets and descriptions ----------------------------------------------------------------------


def _target(items: Iterable[ProbeItem]) -> Target | None:
    username = next((i.username for i in items if i.username), None)
    tg_id = next((i.tg_id for i in items if i.tg_id is not None), None)
    if username is None and tg_id is None:
        return None
    return Target(username=username.lower().lstrip("@") if username else None, tg_id=tg_id)


def _unique(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


def _label(target: Target) -> str:
    return f"id{target.tg_id}" if target.tg_id is not None else f"@{target.username}"


def _resolve_url(target: Target) -> str:
    if target.username is not None:
        return f"contacts.ResolveUsername({target.username})"
    return f"channels.GetChannels({_label(target)})"


def _messages_url(target: Target, ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_URL_IDS])
    more = f", … {len(ids)} ids" if len(ids) > _URL_IDS else ""
    return f"channels.GetMessages({_label(target)}, [{shown}{more}])"
