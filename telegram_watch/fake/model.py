"""Plain records the fake Telegram world is made of.

These are *not* TL objects: the world keeps small slotted records (cheap to hold 200,000 of)
and builds fresh Telethon TL objects from them per request, per account (see ``tl.py``).
Dates are stored as Unix seconds (ints) for the same reason.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class FakeUser:
    """A Telegram user. Accounts (clients) are users with a phone number and authorizations."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    phone: str | None = None
    bot: bool = False
    # account-only state
    deactivated: bool = False  # Telegram banned the account: USER_DEACTIVATED_BAN
    revoked: bool = False  # every authorization was terminated: AUTH_KEY_UNREGISTERED
    login_code: str = "12345"  # what auth.signIn accepts
    about: str = ""  # bio; bots: the short "about" text
    bot_description: str = ""  # bots: "what can this bot do?"
    bot_commands: list[tuple[str, str]] = field(default_factory=list)  # bots: (command, description)

    @property
    def name(self) -> str:
        return self.username or self.first_name


@dataclass(eq=False)
class FakeFile:
    """A photo or document whose bytes live in the world.

    ``kind`` is ``"photo"`` or ``"document"``. Photos keep one byte string per size type
    (``sizes``: type → (w, h, bytes)); documents keep ``data`` plus TL ``attributes``.
    ``file_reference`` rotates on :meth:`FakeTelegram.expire_file_reference`; a download
    with an old reference gets ``FILE_REFERENCE_EXPIRED`` exactly as on Telegram.
    """

    kind: str
    id: int
    access_hash: int
    file_reference: bytes
    date: int
    data: bytes = b""
    mime_type: str = "application/octet-stream"
    attributes: list[Any] = field(default_factory=list)
    sizes: dict[str, tuple[int, int, bytes]] = field(default_factory=dict)

    def bytes_for(self, thumb_size: str) -> bytes | None:
        """The bytes a ``GetFile`` location points at, or None if no such size exists."""
        if self.kind == "photo":
            size = self.sizes.get(thumb_size)
            return None if size is None else size[2]
        if thumb_size:
            return None  # documents here carry no thumbnails
        return self.data


@dataclass(eq=False)
class Forward:
    """A forward header: where a message was originally posted."""

    date: int
    from_channel_id: int | None = None
    from_user_id: int | None = None
    from_name: str | None = None
    channel_post: int | None = None
    post_author: str | None = None


class FakeMessage:
    """One message. Slotted because the benchmark holds hundreds of thousands of them."""

    __slots__ = (
        "date",
        "edit_date",
        "entities",
        "extra",  # threads, topics, reactions, buttons, pins, service actions (fake/extras.py)
        "forwards",
        "fwd",
        "grouped_id",
        "id",
        "media",
        "post_author",
        "reply_to",
        "sender_id",
        "text",
        "views",
    )

    def __init__(
        self,
        id: int,
        date: int,
        text: str = "",
        *,
        entities: list[Any] | None = None,
        media: FakeFile | None = None,
        fwd: Forward | None = None,
        reply_to: int | None = None,
        grouped_id: int | None = None,
        views: int | None = None,
        forwards: int | None = None,
        post_author: str | None = None,
        edit_date: int | None = None,
        sender_id: int | None = None,
    ) -> None:
        self.id = id
        self.date = date
        self.text = text
        self.entities = entities
        self.media = media
        self.fwd = fwd
        self.reply_to = reply_to
        self.grouped_id = grouped_id
        self.views = views
        self.forwards = forwards
        self.post_author = post_author
        self.edit_date = edit_date
        self.sender_id = sender_id
        self.extra: Any = None


class History:
    """Messages of one chat, ordered by id, sliced in O(log n + k).

    ``ids`` and ``dates`` are parallel ascending lists (Telegram ids grow with time, so dates
    are non-decreasing too and can be bisected); ``by_id`` holds the records.
    """

    __slots__ = ("by_id", "dates", "ids", "next_id")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.dates: list[int] = []
        self.by_id: dict[int, FakeMessage] = {}
        self.next_id = 1

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, message: FakeMessage) -> None:
        if self.ids and (message.id <= self.ids[-1] or message.date < self.dates[-1]):
            raise ValueError("messages must be appended with growing ids and non-decreasing dates")
        self.ids.append(message.id)
        self.dates.append(message.date)
        self.by_id[message.id] = message
        self.next_id = message.id + 1

    def remove(self, msg_id: int) -> FakeMessage | None:
        message = self.by_id.pop(msg_id, None)
        if message is not None:
            i = bisect.bisect_left(self.ids, msg_id)
            del self.ids[i]
            del self.dates[i]
        return message

    @property
    def top_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    def slice(
        self,
        *,
        offset_id: int,
        offset_date: int,
        add_offset: int,
        limit: int,
        max_id: int,
        min_id: int,
    ) -> Iterator[FakeMessage]:
        """messages.getHistory: newest first.

        The history is first narrowed to ``min_id < id < max_id`` (each bound only when > 0),
        then read newest-first: the start position is the first message with
        ``id < offset_id`` (or, without offset_id, ``date < offset_date``; else the newest),
        moved by ``add_offset`` (negative reaches newer messages), and ``limit`` messages are
        returned from there, clipped at both ends of the narrowed range.
        """
        ids = self.ids
        lo = bisect.bisect_right(ids, min_id) if min_id > 0 else 0
        hi = bisect.bisect_left(ids, max_id) if max_id > 0 else len(ids)
        if hi <= lo or limit <= 0:
            return iter(())
        if offset_id > 0:
            skip = hi - max(lo, bisect.bisect_left(ids, offset_id, lo, hi))
        elif offset_date > 0:
            skip = hi - max(lo, bisect.bisect_left(self.dates, offset_date, lo, hi))
        else:
            skip = 0
        start = max(skip + add_offset, 0)
        end = min(skip + add_offset + limit, hi - lo)
        if end <= start:
            return iter(())
        by_id = self.by_id
        return (by_id[ids[i]] for i in range(hi - 1 - start, hi - 1 - end, -1))


@dataclass(eq=False)
class ChannelEvent:
    """One pts step of a channel, kept for updates.getChannelDifference."""

    pts: int
    pts_count: int
    kind: str  # "new" | "edit" | "delete"
    date: int
    msg_id: int = 0
    deleted_ids: list[int] = field(default_factory=list)


@dataclass(eq=False)
class FakeChannel:
    """A broadcast channel or a megagroup (``megagroup=True``)."""

    id: int
    title: str
    date: int
    username: str | None = None
    about: str = ""
    megagroup: bool = False
    signatures: bool = False
    private: bool = False  # readable only by members (joined through an invite)
    banned: bool = False  # blocked by Telegram: restricted entity, CHANNEL_BANNED on reads
    ban_reason: str = "terms"  # the restriction reason (platform "all") a banned channel carries
    ban_text: str = "This channel can't be displayed."
    participants_count: int = 0
    old_usernames: list[str] = field(default_factory=list)
    migrated_from_chat_id: int | None = None
    migrated_from_max_id: int | None = None
    history: History = field(default_factory=History)
    pts: int = 1
    events: list[ChannelEvent] = field(default_factory=list)
    members: set[int] = field(default_factory=set)  # account ids that joined
    kicked: set[int] = field(default_factory=set)  # account ids banned from this channel
    join_requests: set[int] = field(default_factory=set)
    linked_chat_id: int | None = None  # broadcast: its discussion group; megagroup: the channel it discusses
    forum: bool = False  # a forum supergroup (topics); see fake/extras.py
    topics: list[Any] = field(default_factory=list)  # forum topics (fake/extras.py FakeTopic)


@dataclass(eq=False)
class FakeChat:
    """A basic group; ``migrated_to`` is set once it was upgraded to a supergroup."""

    id: int
    title: str
    date: int
    participants_count: int = 0
    migrated_to: FakeChannel | None = None
    history: History = field(default_factory=History)
    members: set[int] = field(default_factory=set)


@dataclass(eq=False)
class FakeInvite:
    """An invite link hash (``t.me/+HASH``) leading to a channel."""

    hash: str
    channel: FakeChannel
    expires: int | None = None  # Unix seconds; past → INVITE_HASH_EXPIRED
    request_needed: bool = False  # joining sends a request: INVITE_REQUEST_SENT
    usage_limit: int | None = None
    usage: int = 0
    revoked: bool = False
