"""Invite links: checking is always allowed, joining only under an active authorization.

``check`` (``messages.checkChatInvite``) reads the invite's title, member count and kind without
joining. ``join`` (``messages.importChatInvite``) makes an account a member of a private room, which
needs a legal basis: an unrevoked, unexpired authorization whose scope names the invite hash and
whose accounts include the acting account. Without one the join is refused with ``NotAuthorized``
*before* any request is sent, and the refusal is recorded in the errors collection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from telethon.tl import functions, types

from foundation.contracts import AuthorizationLookup, IngestDoor, invite_scope
from foundation.errors import NotAuthorized
from foundation.logs import get_logger
from foundation.models import Channel, ChannelState
from telegram_watch.convert import channel_ref, convert_channel
from telegram_watch.errors import TelegramDenied, TelegramNotFound
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

_HASH = re.compile(
    r"^(?:https?://)?(?:t\.me|telegram\.me)/(?:\+|joinchat/)(?P<hash>[A-Za-z0-9_-]+)/?$|^\+?(?P<bare>[A-Za-z0-9_-]{8,})$"
)


def invite_hash(link: str) -> str:
    match = _HASH.match(link.strip())
    if not match:
        raise TelegramNotFound(
            f"not an invite link: {link!r}", rpc="INVITE_HASH_INVALID", channel_state=ChannelState.INVALID
        )
    return match["hash"] or match["bare"]


@dataclass(frozen=True)
class InviteInfo:
    hash: str
    state: ChannelState
    reason: str | None = None
    title: str | None = None
    members: int | None = None
    kind: str | None = None  # channel, megagroup, group
    already_member: bool = False
    tg_id: int | None = None


def _kind(invite: Any) -> str:
    if getattr(invite, "broadcast", False):
        return "channel"
    if getattr(invite, "megagroup", False):
        return "megagroup"
    return "channel" if getattr(invite, "channel", False) else "group"


class LedgerGate(Protocol):
    """What ``crawler.evidence.authorizations.Authorizations`` offers the join path."""

    async def require(
        self, scopes: Sequence[str], accounts: Sequence[str], *, action: str, target: str, run_id: str | None = None
    ) -> tuple[dict[str, Any], str]: ...

    async def record_join(
        self,
        grant: dict[str, Any],
        account: str,
        *,
        invite: str | None = None,
        channel_key: str | None = None,
        run_id: str | None = None,
    ) -> int: ...


class Invites:
    def __init__(
        self,
        pool: AccountPool,
        ingest: IngestDoor,
        authorizations: AuthorizationLookup,
        *,
        ledger_gate: LedgerGate | None = None,
    ) -> None:
        self.pool = pool
        self.ingest = ingest
        self.authorizations = authorizations
        #: the evidence ledger's authorization service: refusals and joins become ledger entries
        self.ledger_gate = ledger_gate

    async def check(self, link: str) -> InviteInfo:
        """What the invite leads to, or a clear state for an expired/invalid one. Never joins."""
        digest = invite_hash(link)
        try:
            result = await self.pool.run(None, lambda c: c(functions.messages.CheckChatInviteRequest(digest)))
        except (TelegramNotFound, TelegramDenied) as exc:
            state = exc.channel_state or ChannelState.INVALID
            return InviteInfo(hash=digest, state=state, reason=exc.rpc)
        if isinstance(result, types.ChatInviteAlready | types.ChatInvitePeek):
            chat = result.chat
            return InviteInfo(
                hash=digest,
                state=ChannelState.OK,
                title=getattr(chat, "title", None),
                members=getattr(chat, "participants_count", None),
                kind=_kind(chat) if isinstance(chat, types.Channel) else "group",
                already_member=isinstance(result, types.ChatInviteAlready),
                tg_id=getattr(chat, "id", None),
            )
        return InviteInfo(
            hash=digest,
            state=ChannelState.OK,
            title=result.title,
            members=result.participants_count,
            kind=_kind(result),
        )

    async def join(self, link: str, *, account: str | None = None, run_id: str | None = None) -> Channel:
        """Join through the invite with an authorized account; ``NotAuthorized`` (recorded) otherwise."""
        digest = invite_hash(link)
        names = [account] if account else [m.name for m in self.pool.candidates(None)]
        grant = None
        if self.ledger_gate is not None:
            try:
                grant, account = await self.ledger_gate.require(
                    [invite_scope(digest)], names, action="join", target=digest, run_id=run_id
                )
            except NotAuthorized as gate_refusal:
                await self.ingest.record_error(
                    {**gate_refusal.to_doc(), "action": "import_chat_invite", "invite": digest, "accounts": names},
                    run_id=run_id,
                )
                raise
        for name in names if grant is None else []:
            grant = await self.authorizations.covering([invite_scope(digest)], name)
            if grant is not None:
                account = name
                break
        if grant is None or account is None:
            refusal = NotAuthorized(
                f"no active authorization covers invite {digest[:4]}… for account(s) {', '.join(names) or '-'}"
            )
            await self.ingest.record_error(
                {**refusal.to_doc(), "action": "import_chat_invite", "invite": digest, "accounts": names},
                run_id=run_id,
            )
            log.warning("join refused: not authorized", invite=digest[:4], accounts=names)
            raise refusal
        log.info("joining under authorization", account=account, case=grant.get("case_id"), authorization=grant["_id"])
        updates = await self.pool.run(
            None, lambda c: c(functions.messages.ImportChatInviteRequest(digest)), only={account}
        )
        chats = [c for c in getattr(updates, "chats", []) if isinstance(c, types.Channel | types.Chat)]
        if not chats:
            raise TelegramNotFound("the join returned no chat", rpc="NO_CHAT")
        channel = convert_channel(chats[0], request="messages.importChatInvite")
        await self.ingest.submit([channel], run_id=run_id)
        if self.ledger_gate is not None:
            key = await self.ingest.resolve_channel(channel.ref) or channel.ref.natural_key()
            await self.ledger_gate.record_join(grant, account, invite=digest, channel_key=key, run_id=run_id)
        log.info("joined", account=account, channel=channel_ref(chats[0]).natural_key())
        return channel
