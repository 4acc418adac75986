"""The records every source hands to ingest, and their one mapping to MongoDB documents.

Sources (web spiders, Telethon watchers) build these; nothing downstream knows which source a record
came from except through ``source``. Records are frozen so a stage cannot change a record behind
another stage's back: stages return new records (``model_copy(update=...)``).

Every datetime is UTC-aware; naive datetimes are refused at construction, because a court bundle with
an ambiguous capture time is worthless.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: tgwatch stores only UTC-aware datetimes")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_mongo_dt(value: datetime | str | None) -> datetime | None:
    """A stored datetime as UTC-aware.

    MongoDB returns naive datetimes that are UTC by contract. The embedded nx-27017 server turns a
    datetime written by ``$set`` on an existing document into an ISO-like string; repositories avoid
    that (they write datetimes by insert/replace), and this reader accepts both forms anyway.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(StrEnum):
    WEB = "web"
    MTPROTO = "mtproto"


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    ROUND_VIDEO = "round_video"
    GIF = "gif"
    VOICE = "voice"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"


class MediaRef(Record):
    """One media item as a message shows it: where to get it and what the page says about it.

    ``sha256`` stays None until the media stage has fetched and hashed the bytes; ``locator`` is an
    opaque source-specific handle (e.g. MTProto file location) the matching fetcher understands.
    """

    kind: MediaKind
    url: str | None = None
    thumb_url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    size: int | None = None
    size_text: str | None = None
    mime: str | None = None
    file_name: str | None = None
    title: str | None = None
    performer: str | None = None  # audio: the performer line (web preview) or attribute (MTProto)
    emoji: str | None = None
    locator: dict[str, Any] | None = None
    sha256: str | None = None
    error: dict[str, Any] | None = None

    def identity(self) -> str:
        """What makes two sightings the same media item for versioning, without its digest.

        Web-preview media URLs are signed CDN links that change between fetches, and a digest may be
        missing on one crawl (fetch failed) and present on the next, so neither takes part here;
        digests are compared separately (``Message.media_digests``) when both sides have them all.
        """
        if self.locator and "id" in self.locator:
            return f"{self.kind}:id:{self.locator['id']}"
        return f"{self.kind}:{self.file_name or self.title or ''}:{self.duration or ''}"


class ForwardInfo(Record):
    name: str | None = None
    link: str | None = None
    username: str | None = None
    channel_id: int | None = None
    msg_id: int | None = None
    date: UtcDatetime | None = None


class PollOption(Record):
    text: str
    percent: float | None = None
    voters: int | None = None


class Poll(Record):
    question: str
    options: list[PollOption] = Field(default_factory=list)
    kind: str | None = None  # "anonymous poll", "quiz", …
    voters: int | None = None


class Location(Record):
    latitude: float | None = None
    longitude: float | None = None
    title: str | None = None
    address: str | None = None
    url: str | None = None


class LinkPreview(Record):
    url: str | None = None
    site: str | None = None
    title: str | None = None
    description: str | None = None
    image_url: str | None = None


class Reaction(Record):
    """One reaction under a message as any source shows it: a standard emoji or a custom one, and how many.

    Web preview and MTProto both fill this; ``custom_emoji_id`` is Telegram's document id of a custom
    emoji (kept as text: it does not fit a JavaScript number), ``paid`` marks the star reaction.
    """

    emoji: str | None = None
    custom_emoji_id: str | None = None
    count: int | None = None
    paid: bool = False


#: hostile-data bounds: a message or bot stuffed with thousands of reactions, buttons or commands keeps
#: this many (the raw capture keeps everything) and says so in a notice; Telegram's own limits are lower
MAX_REACTIONS = 200
MAX_BUTTON_ROWS = 100
MAX_BUTTONS = 200
MAX_BUTTON_TEXT = 1024
MAX_BOT_COMMANDS = 200
MAX_BOT_COMMAND_TEXT = 1024


def _cut(value: object, limit: int) -> object:
    return value[: limit - 1] + "…" if isinstance(value, str) and len(value) > limit else value


class Button(Record):
    """One inline keyboard button under a message: what it says and, for a link button, where it goes.

    ``kind`` is the source's own name for other buttons (``callback``, ``switch_inline`` …), kept so a
    button without a URL is still recorded rather than dropped.
    """

    text: str
    url: str | None = None
    kind: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("text"), str) and len(data["text"]) > MAX_BUTTON_TEXT:
            data = {**data, "text": _cut(data["text"], MAX_BUTTON_TEXT)}
        return data


class RawCapture(Record):
    """The evidence form of a record: exactly what the source returned, with its digest."""

    kind: Literal["html", "tl_json"]
    content: str
    sha256: str
    url: str | None = None
    request: str | None = None
    fetched_at: UtcDatetime

    @classmethod
    def of(
        cls,
        kind: Literal["html", "tl_json"],
        content: str,
        *,
        fetched_at: datetime,
        url: str | None = None,
        request: str | None = None,
    ) -> RawCapture:
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        return cls(kind=kind, content=content, sha256=digest, url=url, request=request, fetched_at=fetched_at)


class ChannelRef(Record):
    """How a source names a channel. Ingest resolves it to the stable ``channel_key``."""

    username: str | None = None
    tg_id: int | None = None

    def model_post_init(self, __context: Any) -> None:
        if not self.username and self.tg_id is None:
            raise ValueError("a ChannelRef needs a username or a numeric id")
        if self.username and self.username != self.username.lower().lstrip("@"):
            object.__setattr__(self, "username", self.username.lower().lstrip("@"))

    def natural_key(self) -> str:
        """The key a channel gets when first seen: numeric id when known, else the username."""
        return f"id{self.tg_id}" if self.tg_id is not None else str(self.username)


class ChannelState(StrEnum):
    OK = "ok"
    NO_PREVIEW = "no_preview"  # exists, but t.me/s/NAME redirects to t.me/NAME
    NOT_FOUND = "not_found"
    PRIVATE = "private"
    BANNED = "banned"
    INVALID = "invalid"


class Counters(Record):
    subscribers: int | None = None
    members: int | None = None
    online: int | None = None
    monthly_users: int | None = None  # bots: the "monthly users" figure of the bot's page
    photos: int | None = None
    videos: int | None = None
    files: int | None = None
    links: int | None = None


class Sender(Record):
    """Who wrote a group message: only the public fields needed to say so (display name, username, id).

    Kept on the message itself and nowhere else: tgwatch keeps no profile of group members, only the
    author of each message they wrote (see docs/architecture.md, "MTProto reach").
    """

    tg_id: int | None = None
    name: str | None = None
    username: str | None = None
    bot: bool = False


class ForumTopic(Record):
    """One topic of a forum supergroup; its messages carry ``Message.topic_id`` == ``id``."""

    id: int
    title: str
    date: UtcDatetime | None = None
    closed: bool = False
    pinned: bool = False
    hidden: bool = False
    icon_emoji_id: str | None = None  # a custom emoji document id, as text (too big for JavaScript)
    top_message: int | None = None


class BotCommand(Record):
    """One command a bot announces (``/start`` …) with its description."""

    command: str
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, **{k: _cut(data[k], MAX_BOT_COMMAND_TEXT) for k in ("command", "description") if k in data}}
        return data


class Channel(Record):
    """A snapshot of a channel's header as a source saw it at ``seen_at``."""

    ref: ChannelRef
    source: Source
    seen_at: UtcDatetime
    title: str | None = None
    description: str | None = None
    avatar_url: str | None = None
    verified: bool = False
    kind: str | None = None  # channel, group, megagroup, user, bot
    counters: Counters = Field(default_factory=Counters)
    state: ChannelState = ChannelState.OK
    state_reason: str | None = None
    raw: RawCapture | None = None
    linked_chat_id: int | None = None  # a channel's discussion group (comments), or a group's channel
    forum: bool = False
    topics: list[ForumTopic] = Field(default_factory=list)
    bot_commands: list[BotCommand] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)  # what was cut (e.g. a forum's topic list), never silently

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        commands = data.get("bot_commands") if isinstance(data, dict) else None
        if isinstance(commands, list) and len(commands) > MAX_BOT_COMMANDS:
            data = {**data, "bot_commands": commands[:MAX_BOT_COMMANDS]}
        return data


class Message(Record):
    """One message, normalized. ``channel_key`` is filled by ingest from ``ref``."""

    ref: ChannelRef
    msg_id: int
    source: Source
    date: UtcDatetime | None = None
    channel_key: str | None = None
    permalink: str | None = None
    edited: bool = False
    edit_date: UtcDatetime | None = None
    author: str | None = None
    author_username: str | None = None  # the sender's username (group messages), lower-case, no "@"
    text: str = ""
    html: str | None = None
    links: list[str] = Field(default_factory=list)
    mentions: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    views: int | None = None
    forwards: int | None = None
    forwarded_from: ForwardInfo | None = None
    reply_to: int | None = None
    via_bot: str | None = None
    grouped_id: str | None = None
    media: list[MediaRef] = Field(default_factory=list)
    poll: Poll | None = None
    location: Location | None = None
    link_preview: LinkPreview | None = None
    reactions: list[Reaction] = Field(default_factory=list)
    buttons: list[list[Button]] = Field(default_factory=list)  # rows of the inline keyboard
    service: str | None = None
    notices: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    raw: RawCapture | None = None
    #: ``story`` for a channel's story (``msg_id`` is the story id; stories have their own numbering)
    kind: Literal["message", "story"] = "message"
    thread_root: int | None = None  # comments: the discussion chat's copy of the channel post they answer
    topic_id: int | None = None  # forum supergroups: the topic the message was posted in
    pinned: bool = False
    sender: Sender | None = None  # group messages: their author's public name (nothing else of members)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        """Hostile data stays bounded: past ``MAX_REACTIONS``/``MAX_BUTTONS`` the rest is left to the raw
        capture, and a notice records how much was cut (so the cut is visible, never silent)."""
        if not isinstance(data, dict):
            return data
        notices: list[str] = []
        reactions = data.get("reactions")
        if isinstance(reactions, list) and len(reactions) > MAX_REACTIONS:
            notices.append(f"reactions: {len(reactions)} kinds, the first {MAX_REACTIONS} kept")
            data = {**data, "reactions": reactions[:MAX_REACTIONS]}
        rows = data.get("buttons")
        if isinstance(rows, list) and all(isinstance(r, list) for r in rows):
            total = sum(len(r) for r in rows)
            if len(rows) > MAX_BUTTON_ROWS or total > MAX_BUTTONS:
                kept: list[list[Any]] = []
                room = MAX_BUTTONS
                for row in rows[:MAX_BUTTON_ROWS]:
                    if room <= 0:
                        break
                    kept.append(row[:room])
                    room -= len(kept[-1])
                notices.append(f"buttons: {total} in {len(rows)} rows, {MAX_BUTTONS - room} kept")
                data = {**data, "buttons": kept}
        if notices:
            data = {**data, "notices": [*(data.get("notices") or []), *notices]}
        return data

    @property
    def key(self) -> str:
        if self.channel_key is None:
            raise ValueError("channel_key is set by ingest; this message has not been through it")
        if self.kind == "story":
            return f"{self.channel_key}/s{self.msg_id}"
        return f"{self.channel_key}/{self.msg_id}"

    def content_hash(self) -> str:
        """The digest that decides whether a re-ingested message is a new version.

        Only what the author can change counts: text, media, poll question/options, location, link buttons.
        Views, forwards and fetch times change on every crawl and must not create versions.
        """
        content: dict[str, Any] = {
            "text": self.text,
            "media": [m.identity() for m in self.media],
            "poll": [self.poll.question, [o.text for o in self.poll.options]] if self.poll else None,
            "location": self.location.model_dump(mode="json") if self.location else None,
            "service": self.service,
        }
        links = [[b.text, b.url] for row in self.buttons for b in row if b.url]
        if links:  # an edited link button (a new bot, a new payment page) is a new version; absent = old hashes
            content["buttons"] = links
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def media_digests(self) -> list[str] | None:
        """Every media item's SHA-256 in order, or None while any is still unknown."""
        digests = [m.sha256 for m in self.media]
        return None if any(d is None for d in digests) else [str(d) for d in digests]

    def to_doc(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python", exclude={"raw"})
        doc["_id"] = self.key
        doc["media_digests"] = self.media_digests()
        # epoch seconds beside the datetime: range queries on numbers are indexed on every server
        doc["date_ts"] = self.date.timestamp() if self.date else None
        doc["channel"] = self.channel_key
        doc["ref"] = self.ref.model_dump(mode="python")
        doc["content_hash"] = self.content_hash()
        if self.raw is not None:
            doc["raw_sha256"] = self.raw.sha256
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        data = {k: v for k, v in doc.items() if k in cls.model_fields}
        for name in ("date", "edit_date"):
            data[name] = from_mongo_dt(data.get(name))
        fwd = data.get("forwarded_from")
        if fwd and fwd.get("date") is not None:
            fwd = {**fwd, "date": from_mongo_dt(fwd["date"])}
            data["forwarded_from"] = fwd
        return cls.model_validate(data)


class Deletion(Record):
    """A source saw these messages disappear. Ingest marks them; it never removes anything."""

    ref: ChannelRef
    msg_ids: list[int]
    source: Source
    seen_at: UtcDatetime


#: headers a stored page never keeps, request or response: they carry sessions and credentials
#: (cookies, the egress proxy's password, auth challenges), which a case bundle must not hand out
#: and which prove nothing about what the page showed. Their names are kept (``withheld``).
WITHHELD_HEADERS = frozenset(
    {"set-cookie", "set-cookie2", "cookie", "authorization", "proxy-authorization", "www-authenticate",
     "proxy-authenticate"}
)  # fmt: skip
MAX_PAGE_HEADERS = 200
MAX_PAGE_HEADER_VALUE = 8192

Headers = tuple[tuple[str, str], ...]


def _kept_headers(pairs: list[tuple[str, str]], withheld: set[str]) -> Headers:
    """The headers kept as they were sent; a secret one, an over-long one or one past the count
    limit is left out whole (never shortened: a changed header would misstate what was sent) and
    named in ``withheld``."""
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if name.lower() in WITHHELD_HEADERS or len(value) > MAX_PAGE_HEADER_VALUE or len(kept) >= MAX_PAGE_HEADERS:
            if len(withheld) < MAX_PAGE_HEADERS:
                withheld.add(name.lower()[:200])
        else:
            kept.append((name, value))
    return tuple(kept)


class WebPage(Record):
    """One HTTP exchange of a web source, kept whole (status, headers, body) so that a web archive
    replays what the server sent, not only the parts tgwatch parsed. The body is as the HTTP client
    handed it over (content and transfer encodings undone); ``sha256`` is its digest. ``ref`` is the
    channel the page belongs to (for the ledger's subjects and cases)."""

    ref: ChannelRef
    url: str
    method: str = "GET"
    request_headers: Headers = ()
    protocol: str = "HTTP/1.1"
    status: int
    reason: str = ""
    headers: Headers = ()
    #: lower-case names of headers that were sent but not kept (``WITHHELD_HEADERS``)
    withheld: tuple[str, ...] = ()
    body: bytes
    sha256: str
    fetched_at: UtcDatetime

    @classmethod
    def of(
        cls,
        *,
        ref: ChannelRef,
        url: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        fetched_at: datetime,
        method: str = "GET",
        request_headers: list[tuple[str, str]] | None = None,
        protocol: str | None = None,
        reason: str = "",
    ) -> WebPage:
        withheld: set[str] = set()
        kept_request = _kept_headers(request_headers or [], withheld)
        kept = _kept_headers(headers, withheld)
        return cls(
            ref=ref, url=url, method=method, request_headers=kept_request, protocol=protocol or "HTTP/1.1",
            status=status, reason=reason, headers=kept, withheld=tuple(sorted(withheld)), body=body,
            sha256=hashlib.sha256(body).hexdigest(), fetched_at=fetched_at,
        )  # fmt: skip


class Checkpoint(Record):
    """How far a source has read one stream (e.g. ``web:durov``), saved only after its batch is stored.

    ``newest_id`` is the highest id such that everything from ``oldest_id`` up to it has been read
    without a gap; ``walk_top``/``walk_low`` describe a newest-first walk still in progress, so that a
    crash mid-walk resumes below ``walk_low`` instead of skipping the gap down to ``newest_id``.
    ``complete`` means the walk reached the channel's first message.
    """

    stream: str
    newest_id: int | None = None
    oldest_id: int | None = None
    complete: bool = False
    walk_top: int | None = None
    walk_low: int | None = None
    updated_at: UtcDatetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python")
        doc["_id"] = self.stream
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        data = {k: v for k, v in doc.items() if k in cls.model_fields}
        data["updated_at"] = from_mongo_dt(data.get("updated_at"))
        return cls.model_validate(data)


class Decision(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    UNKNOWN = "unknown"
    #: the face of a consenting, enrolled person (``Verdict.matches`` says who, how close, where)
    WATCHLIST_MATCH = "watchlist_match"


#: the consent-based watchlist's detector (docs/watchlist.md). Its verdicts, a match or not, are
#: review-only: shown in no media view, media document or verdict search, since a ``negative``
#: next to a missing verdict would tell a reader which media matched an enrolled person
WATCHLIST_DETECTOR = "faces"


class Verdict(Record):
    """What a detector said about one media item. Never overwritten: a newer verdict supersedes."""

    sha256: str
    detector: str
    detector_version: str = "unknown"
    decision: Decision
    labels: dict[str, float] = Field(default_factory=dict)
    job_id: str | None = None
    decided_at: UtcDatetime
    #: for ``watchlist_match``: ``{"person", "distance", "box", "frame"}`` per matched face (never an
    #: embedding: the embeddings of the faces seen stay in the detector's memory)
    matches: list[dict[str, Any]] = Field(default_factory=list)

    def model_post_init(self, __context: Any) -> None:
        for label, score in self.labels.items():
            if not (0.0 <= score <= 1.0) or score != score:
                raise ValueError(f"label {label!r} has score {score!r}; scores are between 0 and 1")


class AlertKind(StrEnum):
    HASH_MATCH = "hash_match"
    DETECTION = "detection"
    REUPLOAD = "reupload"
    CRAWL_FAILURE = "crawl_failure"
    TARGET_FAILURE = "target_failure"
    #: an enrolled person's face found (docs/watchlist.md): human review only, never a takedown by policy
    WATCHLIST_MATCH = "watchlist_match"
    HASH_LIST_QUARANTINE = "hash_list_quarantine"  # a runaway list entry was held for review


class Alert(Record):
    """Something staff must look at. ``key`` makes raising the same alert twice a no-op."""

    key: str
    kind: AlertKind
    sha256: str | None = None
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=list)
    raised_at: UtcDatetime
    status: Literal["open", "acknowledged", "closed"] = "open"

    def to_doc(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python")
        doc["_id"] = self.key
        return doc
