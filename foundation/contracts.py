"""The records and protocols sources and features exchange.

Why a module of its own: a source (the Scrapy spiders, the Telethon watchers) hands records to a
feature (ingest, discovery, takedowns) and gets records back, but must not import the feature that
consumes them. What crosses that line lives here, below both: the ingest door as a protocol, the
records a source submits or returns, the takedown probe's question and answer, and the preview
triage's answer. It imports only ``config``, the foundation's records and errors, and third-party
libraries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from foundation.errors import TgwatchError
from foundation.models import Channel, ChannelRef, Checkpoint, Deletion, Message, Record, Source, UtcDatetime, WebPage

# --- the ingest door ---------------------------------------------------------------------------------

IngestRecord = Channel | Message | Deletion | WebPage


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    channels: int = 0
    media_refs: int = 0
    media_hashed: int = 0
    media_errors: int = 0
    matches: int = 0
    errors: int = 0

    def add(self, other: IngestResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class IngestDoor(Protocol):
    """What a source may ask of ingest (``crawler.ingest.Ingest`` implements it): hand over records,
    read its own checkpoint, find a channel's stable key, and record an error it met."""

    async def submit(
        self, records: Sequence[IngestRecord], *, checkpoint: Checkpoint | None = None, run_id: str | None = None
    ) -> IngestResult: ...

    async def checkpoint(self, stream: str) -> Checkpoint | None: ...

    async def resolve_channel(self, ref: ChannelRef) -> str | None: ...

    async def record_error(
        self, error: TgwatchError | dict[str, object], *, run_id: str | None = None, record: str | None = None
    ) -> None: ...


# --- Telegram accounts: their states, and where their documents are kept ------------------------------

ACTIVE = "active"
DEAUTHORIZED = "deauthorized"
BANNED = "banned"
DISABLED = "disabled"
FROZEN = "frozen"  # Telegram froze the account (FROZEN_* errors): parked until an appeal succeeds
STATES = (ACTIVE, DEAUTHORIZED, BANNED, DISABLED, FROZEN)


class AccountStore(Protocol):
    """Where account documents live (``storage.repos.accounts.AccountRepo``). Secrets cross it already
    encrypted; the Telegram sources keep their accounts through it and never touch the store."""

    async def add(
        self, name: str, *, session_enc: str, phone_enc: str | None, user_id: int | None, proxy: str | None
    ) -> dict[str, Any]: ...

    async def get(self, name: str) -> dict[str, Any] | None: ...

    async def list_all(self) -> list[dict[str, Any]]: ...

    async def usable(self) -> list[dict[str, Any]]: ...

    async def remove(self, name: str) -> bool: ...

    async def set_state(self, name: str, state: str, reason: str | None = None) -> dict[str, Any] | None: ...

    async def park(self, name: str, until_epoch: float) -> dict[str, Any] | None: ...

    async def update_session(self, name: str, session_enc: str) -> dict[str, Any] | None: ...

    async def take_lease(self, name: str, holder: str, *, seconds: float, now: float) -> dict[str, Any] | None: ...

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def set_discovery_next(self, name: str, at_epoch: float) -> dict[str, Any] | None: ...


# --- authorizations: the scope names a private join is checked against ----------------------------


def invite_scope(invite_hash: str) -> str:
    return f"invite:{invite_hash}"


def channel_scope(channel_key: str) -> str:
    return f"channel:{channel_key}"


class AuthorizationLookup(Protocol):
    """What the join path asks of the authorizations (``storage.repos.authorizations`` answers)."""

    async def covering(self, scopes: Sequence[str], account: str) -> dict[str, Any] | None: ...


# --- takedown probes: what to re-check, and what one re-check found ------------------------------------


class ItemKind(StrEnum):
    MESSAGE = "message"
    CHANNEL = "channel"


class ItemStatus(StrEnum):
    PENDING = "pending"  # not checked yet
    ONLINE = "online"  # the last check found it
    REMOVED = "removed"  # message gone, "post not found", channel not displayable or banned
    UNKNOWN = "unknown"  # the last check could not tell (fetch failed, unrecognised page)


class ProbeSubject(Protocol):
    """Anything that names an item the way a probe needs it (a takedown item does)."""

    @property
    def item_id(self) -> str: ...
    @property
    def kind(self) -> ItemKind: ...
    @property
    def channel(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def tg_id(self) -> int | None: ...
    @property
    def msg_id(self) -> int | None: ...
    @property
    def source(self) -> Source: ...


class ProbeItem(Record):
    """What a probe needs to re-fetch one item."""

    item_id: str
    kind: ItemKind
    channel: str
    username: str | None = None
    tg_id: int | None = None
    msg_id: int | None = None
    source: Source = Source.WEB

    @classmethod
    def of(cls, item: ProbeSubject) -> ProbeItem:
        return cls(
            item_id=item.item_id, kind=item.kind, channel=item.channel, username=item.username,
            tg_id=item.tg_id, msg_id=item.msg_id, source=item.source,
        )  # fmt: skip


class ProbeResult(Record):
    """What one re-fetch found. ``reason`` says why, in a fixed vocabulary:

    online: ``present`` (message shown / channel displayable);
    removed: ``post_not_found``, ``message_deleted``, ``channel_not_found``, ``channel_blocked``
    (only what shows the content is gone: a channel its owner closed or stripped of its web preview
    is not a removal);
    unknown: ``fetch_failed``, ``rate_limited``, ``unrecognised_page``, ``no_account``, ``not_checkable``,
    ``channel_private``, ``no_web_preview``.
    """

    item_id: str
    status: ItemStatus
    reason: str
    checked_at: UtcDatetime
    method: str  # "web" | "mtproto"
    url: str | None = None  # the page fetched (web) or the TL request (mtproto)
    detail: str | None = None  # e.g. the error message, the block notice's text


# --- discovery: what one preview page said -------------------------------------------------------------


@dataclass(frozen=True)
class TriageResult:
    """What one preview page said about a candidate (built by ``spiders.tme_preview``)."""

    link: str
    fetched_at: datetime
    state: str  # valid | expired_invite | not_found | unknown | error
    type: str = "unknown"
    title: str | None = None
    description: str | None = None
    username: str | None = None
    members: int | None = None
    subscribers: int | None = None
    online: int | None = None
    monthly_users: int | None = None
    verified: bool = False
    avatar_url: str | None = None
    counters_text: str | None = None
    description_links: tuple[str, ...] = ()
    page_url: str | None = None
    problems: tuple[str, ...] = ()
    error: dict[str, Any] | None = None  # the fetch failed (RateLimited, SourceError …): to_doc()

    def to_doc(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "username": self.username,
            "members": self.members,
            "subscribers": self.subscribers,
            "online": self.online,
            "monthly_users": self.monthly_users,
            "verified": self.verified,
            "avatar_url": self.avatar_url,
            "counters_text": self.counters_text,
            "description_links": list(self.description_links),
            "page_url": self.page_url,
            "problems": list(self.problems),
            "error": self.error,
            "checked_at": self.fetched_at.isoformat(),
        }
