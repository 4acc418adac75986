"""The synthetic world behind the sample site: channels, messages and media, as typed ground truth.

Everything here is plain data built from a seed, so a test can crawl the served pages and compare
what it stored with what the world says is there. Nothing in this module knows HTML or HTTP: the
markup lives in ``render.py`` and the bytes of media in ``media.py``.

Determinism: every channel draws from its own ``random.Random(f"{seed}:{username}")``, so the size
of the benchmark channel does not shift the content of the others, and generation ``g`` is
generation ``g - 1`` with the changes drawn from ``random.Random(f"{seed}:{username}:gen{g}")``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property

#: every date in the world is an offset from this instant (UTC), never from "now"
BASE_TIME = datetime(2025, 3, 3, 6, 0, 0, tzinfo=UTC)
#: t.me shows about twenty posts per ``/s/NAME`` page
PAGE_SIZE = 20
#: usernames that resolve to nothing (any other unknown name behaves the same)
MISSING_USERNAMES = ("no_such_channel",)


class ChannelKind(StrEnum):
    """How t.me exposes a username."""

    PUBLIC = "public"  # /s/NAME web preview with history
    NO_PREVIEW = "no_preview"  # public channel whose /s/NAME redirects to the /NAME profile page
    PRIVATE = "private"  # the profile page says the channel is private; no preview
    BLOCKED = "blocked"  # Telegram blocked it: /NAME shows the block notice, /s/NAME and /NAME/ID lead there


class MediaKind(StrEnum):
    """A media item as the web preview shows it (one per album slot)."""

    PHOTO = "photo"
    VIDEO = "video"
    ROUND_VIDEO = "round_video"
    GIF = "gif"
    VOICE = "voice"
    DOCUMENT = "document"
    STICKER = "sticker"
    UNSUPPORTED = "unsupported"  # "This media is not supported in your browser", nothing to fetch


#: kinds whose bytes the site serves (a document or an unsupported item has no URL on t.me)
FETCHABLE_KINDS = frozenset(
    {MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.ROUND_VIDEO, MediaKind.GIF, MediaKind.VOICE, MediaKind.STICKER}
)


@dataclass(frozen=True)
class Span:
    """One run of message text; ``kind`` is text, bold, italic, link, mention, hashtag, emoji or br."""

    kind: str
    text: str = ""
    href: str = ""

    @property
    def plain(self) -> str:
        if self.kind == "br":
            return "\n"
        if self.kind == "mention":
            return "@" + self.text
        if self.kind == "hashtag":
            return "#" + self.text
        return self.text


@dataclass(frozen=True)
class Text:
    """Formatted message text; the plain form is what a parser should get from the rendered HTML."""

    spans: tuple[Span, ...] = ()

    @property
    def plain(self) -> str:
        return "".join(s.plain for s in self.spans)

    @property
    def links(self) -> tuple[str, ...]:
        """External link targets (absolute URLs), in order, duplicates kept."""
        return tuple(s.href for s in self.spans if s.kind == "link")

    @property
    def mentions(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.spans if s.kind == "mention")

    @property
    def hashtags(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.spans if s.kind == "hashtag")

    def __bool__(self) -> bool:
        return bool(self.spans)


@dataclass(frozen=True)
class Media:
    """One media slot. ``item_id`` is the message id of the slot (albums span several ids).

    ``content_seed`` decides the bytes: a forwarded copy reuses its source's seed, so the same
    picture appears under two URLs, which is what media deduplication has to notice.
    """

    media_id: str
    kind: MediaKind
    item_id: int
    content_seed: str
    width: int = 0
    height: int = 0
    duration: int = 0  # seconds, for video/round video/gif/voice
    title: str = ""  # documents
    size_bytes: int = 0  # documents
    too_big: bool = False  # video shown with "Media is too big" and no <video src>

    @property
    def fetchable(self) -> bool:
        return self.kind in FETCHABLE_KINDS and not self.too_big


@dataclass(frozen=True)
class PollOption:
    text: str
    percent: int


@dataclass(frozen=True)
class Poll:
    question: str
    options: tuple[PollOption, ...]
    voters: int
    anonymous: bool = True


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    media_id: str  # the map tile image


@dataclass(frozen=True)
class LinkPreview:
    url: str
    site_name: str
    title: str
    description: str
    image_id: str | None = None  # a served picture, or None for a preview without image


@dataclass(frozen=True)
class Forward:
    """Forwarded-from: ``username``/``post_id`` are None when the origin hides its link."""

    name: str
    username: str | None = None
    post_id: int | None = None


@dataclass(frozen=True)
class Message:
    """One post as the web preview shows it (an album is one post whose media span several ids)."""

    id: int
    date: datetime
    text: Text = field(default_factory=Text)
    views: int | None = None  # None for service messages
    edited: bool = False
    author: str | None = None  # signature
    forwarded_from: Forward | None = None
    reply_to: int | None = None
    via_bot: str | None = None
    media: tuple[Media, ...] = ()
    poll: Poll | None = None
    location: Location | None = None
    link_preview: LinkPreview | None = None
    service: str | None = None  # "Channel created", "Channel photo updated", ...
    reactions: tuple[tuple[str, int], ...] = ()

    @property
    def grouped(self) -> bool:
        return len(self.media) > 1

    @property
    def covered_ids(self) -> tuple[int, ...]:
        """Every message id this post occupies (several for an album)."""
        return tuple(sorted({self.id, *(m.item_id for m in self.media)}))

    @property
    def media_kinds(self) -> tuple[MediaKind, ...]:
        return tuple(m.kind for m in self.media)


@dataclass(frozen=True)
class ChannelChanges:
    """What a generation changed in one channel relative to the generation before it."""

    edited: tuple[int, ...] = ()
    deleted: tuple[int, ...] = ()
    added: tuple[int, ...] = ()


@dataclass(frozen=True)
class Channel:
    username: str
    title: str
    description: str
    kind: ChannelKind
    subscribers: int
    verified: bool = False
    messages: tuple[Message, ...] = ()  # ascending id
    avatar_id: str = ""

    @property
    def has_preview(self) -> bool:
        return self.kind is ChannelKind.PUBLIC

    @cached_property
    def ids(self) -> tuple[int, ...]:
        """Ascending, as ``messages`` is: the server bisects a page out of them."""
        return tuple(m.id for m in self.messages)

    def message(self, msg_id: int) -> Message | None:
        for m in self.messages:
            if m.id == msg_id:
                return m
        return None

    @property
    def counters(self) -> dict[str, int]:
        """The header counters t.me shows, in its order; zero counts are left out as t.me does."""
        return dict(self._counters)

    @cached_property
    def _counters(self) -> dict[str, int]:
        # counted once per channel value (a frozen dataclass: a publish or a new generation makes a
        # new one): every served page shows them, and counting all posts per request made the
        # site's own work grow with the channel (a third of bench/crawl.py's time on 2,000 posts)
        media = [m for msg in self.messages for m in msg.media]
        photos = sum(1 for m in media if m.kind is MediaKind.PHOTO)
        videos = sum(1 for m in media if m.kind in (MediaKind.VIDEO, MediaKind.ROUND_VIDEO, MediaKind.GIF))
        files = sum(1 for m in media if m.kind is MediaKind.DOCUMENT)
        links = sum(1 for msg in self.messages if msg.link_preview is not None or msg.text.links)
        out = {"subscribers": self.subscribers}
        for name, value in (("photos", photos), ("videos", videos), ("files", files), ("links", links)):
            if value:
                out[name] = value
        return out

    def pages(self, page_size: int = PAGE_SIZE) -> list[list[Message]]:
        """The ``/s/NAME`` pages, newest first, each ascending by id (as the server serves them)."""
        out: list[list[Message]] = []
        msgs = list(self.messages)
        while msgs:
            out.append(msgs[-page_size:])
            msgs = msgs[:-page_size]
        return out


@dataclass(frozen=True)
class World:
    seed: int
    generation: int
    channels: dict[str, Channel]  # key: lower-cased username
    changes: dict[str, ChannelChanges]  # relative to generation - 1 (empty for generation 1)
    missing: tuple[str, ...] = MISSING_USERNAMES
    page_size: int = PAGE_SIZE

    def channel(self, username: str) -> Channel | None:
        return self.channels.get(username.lower())

    def without_message(self, username: str, msg_id: int) -> World:
        """This world with one message gone (deleted by its channel or removed by Telegram).

        Tests swap it in with ``site.set_world(...)`` to see what a re-check finds on the same
        address; ``changes`` (the generation's own edits) is left as it was."""
        ch = self._known(username)
        if ch.message(msg_id) is None:
            raise KeyError(f"@{ch.username} has no message {msg_id}")
        kept = tuple(m for m in ch.messages if m.id != msg_id)
        return replace(self, channels={**self.channels, ch.username.lower(): replace(ch, messages=kept)})

    def with_kind(self, username: str, kind: ChannelKind) -> World:
        """This world with one channel answering as ``kind`` (e.g. ``BLOCKED``, ``PRIVATE``)."""
        ch = self._known(username)
        return replace(self, channels={**self.channels, ch.username.lower(): replace(ch, kind=kind)})

    def _known(self, username: str) -> Channel:
        ch = self.channel(username)
        if ch is None:
            raise KeyError(f"no channel @{username} in this world")
        return ch

    def media_index(self) -> dict[str, Media]:
        """media_id → Media for every served item, including link-preview and map images."""
        out: dict[str, Media] = {}
        for ch in self.channels.values():
            for msg in ch.messages:
                for m in msg.media:
                    out[m.media_id] = m
                if msg.location is not None:
                    mid = msg.location.media_id
                    out[mid] = Media(mid, MediaKind.PHOTO, msg.id, mid, 400, 300)
                if msg.link_preview is not None and msg.link_preview.image_id is not None:
                    mid = msg.link_preview.image_id
                    out[mid] = Media(mid, MediaKind.PHOTO, msg.id, mid, 640, 336)
            out[ch.avatar_id] = Media(ch.avatar_id, MediaKind.PHOTO, 0, ch.avatar_id, 160, 160)
        return out


# --------------------------------------------------------------------------------------------------
# text material (neutral, invented; example.* domains only)

EN_HEADLINES = (
    "City council approves new riverside bike lanes",
    "Library extends weekend opening hours from next month",
    "Weather: clear skies expected through the weekend",
    "Local bakery wins regional bread competition",
    "Night buses to run every 15 minutes during the festival",
    "Museum opens a hands-on science gallery for children",
    "Volunteers plant 300 trees along the northern park",
    "Tech meetup announces free workshops on data literacy",
    "Harbour ferry timetable changes on public holidays",
    "Students build a solar-powered weather station",
    "Farmers market moves to the old train depot",
    "Community radio celebrates its tenth anniversary",
)
EN_BODIES = (
    "The decision follows months of public consultation.",
    "Residents can read the full plan online.",
    "Organisers expect a large turnout this year.",
    "More details will follow later today.",
    "The project is funded by a local grant.",
    "Officials thanked everyone who took part.",
)
KO_HEADLINES = (
    "오늘 서울은 맑고 따뜻한 날씨가 이어지겠습니다",
    "시립 도서관 주말 운영 시간이 늘어납니다",
    "한강 자전거 도로 새 구간이 개통되었습니다",
    "지역 시장에서 봄맞이 행사가 열립니다",
    "대중교통 요금 안내가 업데이트되었습니다",
    "청소년 과학 캠프 참가 신청을 받습니다",
    "부산 불꽃 축제 일정이 발표되었습니다",
    "동네 공원에 새 산책로가 생겼습니다",
    "무료 코딩 교실이 다음 주에 시작됩니다",
    "전통 시장 상인회가 새 안내 지도를 만들었습니다",
)
KO_BODIES = (
    "자세한 내용은 아래 링크에서 확인하세요.",
    "많은 관심과 참여 부탁드립니다.",
    "시민 여러분의 의견을 기다립니다.",
    "변경 사항은 추후 다시 안내하겠습니다.",
    "현장 사진을 함께 전해 드립니다.",
)
EN_TAGS = ("news", "city", "weather", "culture", "transport", "science")
KO_TAGS = ("서울", "뉴스", "날씨", "문화", "교통", "행사")
EMOJI = ("🔥", "📢", "✅", "🌤", "🚲", "📚", "🎉", "💡", "🌳", "⚡")
REACTIONS = ("👍", "❤", "🔥", "🎉", "👏")
BOTS = ("sample_helper_bot", "sample_poll_bot")
AUTHORS_EN = ("Alex Kim", "Sam Rivera", "Jordan Lee")
AUTHORS_KO = ("김하늘", "이서준", "박민지")


def _round3(n: int) -> int:
    """Round down to three significant digits, so "12.3K"-style counters parse back exactly."""
    if n < 1000:
        return n
    digits = len(str(n))
    step = 10 ** (digits - 3)
    return n // step * step


class _Builder:
    """Draws one channel's messages; holds the id and clock cursors and the channel's rng."""

    def __init__(self, rng: random.Random, username: str, korean: bool, start: datetime) -> None:
        self.rng = rng
        self.username = username
        self.korean = korean
        self.next_id = 1
        self.clock = start
        self.messages: list[Message] = []

    # -- cursors ------------------------------------------------------------------------------
    def take_id(self, slots: int = 1, allow_gap: bool = True) -> int:
        if allow_gap and self.messages and self.rng.random() < 0.1:
            self.next_id += self.rng.randint(1, 3)  # deleted before we ever saw them
        first = self.next_id
        self.next_id += slots
        return first

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=self.rng.randint(9, 14 * 60), seconds=self.rng.randint(0, 59))
        return self.clock

    def media_id(self, msg_id: int, index: int, kind: MediaKind) -> str:
        return f"{self.username}-{msg_id}-{index}-{kind.value}"

    # -- text ---------------------------------------------------------------------------------
    def text(self, *, long: bool = False, links: bool = True) -> Text:
        rng = self.rng
        heads, bodies, tags = (KO_HEADLINES, KO_BODIES, KO_TAGS) if self.korean else (EN_HEADLINES, EN_BODIES, EN_TAGS)
        spans: list[Span] = []
        if rng.random() < 0.5:
            spans += [Span("emoji", rng.choice(EMOJI)), Span("text", " ")]
        spans.append(Span("bold", rng.choice(heads)))
        spans += [Span("br"), Span("br"), Span("text", rng.choice(bodies))]
        if long:
            spans += [Span("text", " "), Span("italic", rng.choice(bodies))]
        if links and rng.random() < 0.45:
            domain = rng.choice(("com", "org", "net"))
            url = f"https://example.{domain}/{'ko' if self.korean else 'en'}/{rng.randint(100, 999)}"
            label = "자세히 보기" if self.korean else "Read more"
            spans += [Span("br"), Span("link", label, url)]
        if rng.random() < 0.35:
            who = rng.choice(("daily_brief", "korea_now", "media_lab"))
            spans += [Span("text", " — " if not self.korean else " · "), Span("mention", who)]
        if rng.random() < 0.5:
            spans += [Span("br"), Span("hashtag", rng.choice(tags))]
            if rng.random() < 0.4:
                spans += [Span("text", " "), Span("hashtag", rng.choice(tags) + "2025")]
        return Text(tuple(spans))

    def views(self) -> int:
        return _round3(int(self.rng.lognormvariate(7.5, 1.2)) + 1)

    def reactions(self) -> tuple[tuple[str, int], ...]:
        if self.rng.random() < 0.5:
            return ()
        picks = self.rng.sample(REACTIONS, self.rng.randint(1, 3))
        return tuple((e, self.rng.randint(1, 400)) for e in picks)

    # -- media --------------------------------------------------------------------------------
    def photo(self, msg_id: int, index: int = 0) -> Media:
        w, h = self.rng.choice(((800, 600), (640, 800), (720, 720), (1024, 576)))
        mid = self.media_id(msg_id, index, MediaKind.PHOTO)
        return Media(mid, MediaKind.PHOTO, msg_id + index, mid, w, h)

    def video(self, msg_id: int, index: int = 0, kind: MediaKind = MediaKind.VIDEO, too_big: bool = False) -> Media:
        w, h = (240, 240) if kind is MediaKind.ROUND_VIDEO else self.rng.choice(((320, 180), (240, 320)))
        mid = self.media_id(msg_id, index, kind)
        return Media(mid, kind, msg_id + index, mid, w, h, duration=self.rng.randint(1, 3), too_big=too_big)

    # -- messages -----------------------------------------------------------------------------
    def add(self, make: Callable[[int, datetime], Message], slots: int = 1) -> Message:
        msg = make(self.take_id(slots), self.tick())
        self.messages.append(msg)
        return msg

    def service(self, label: str) -> Message:
        return self.add(lambda i, d: Message(i, d, Text((Span("text", label),)), service=label))

    def post(self, kind: str) -> Message:
        """One post of a named recipe (see ``RECIPES``)."""
        slots = 1
        if kind in ("album", "mixed_album"):
            slots = self.rng.randint(2, 4)
        return self.add(lambda i, d: self._post(kind, i, d, slots), slots)

    def _post(self, kind: str, i: int, d: datetime, slots: int) -> Message:
        rng = self.rng
        authors = AUTHORS_KO if self.korean else AUTHORS_EN
        base = Message(
            i,
            d,
            self.text(long=rng.random() < 0.3),
            views=self.views(),
            edited=rng.random() < 0.08,
            author=rng.choice(authors) if rng.random() < 0.3 else None,
            reactions=self.reactions(),
        )
        if kind == "text":
            return base
        if kind == "photo":
            return replace(base, media=(self.photo(i),))
        if kind == "album":
            return replace(base, media=tuple(self.photo(i, k) for k in range(slots)))
        if kind == "mixed_album":
            items = tuple(self.video(i, k) if k % 2 else self.photo(i, k) for k in range(slots))
            return replace(base, media=items)
        if kind == "video":
            return replace(base, media=(self.video(i),))
        if kind == "video_too_big":
            return replace(base, media=(self.video(i, too_big=True),))
        if kind == "round_video":
            return replace(base, text=Text(), media=(self.video(i, kind=MediaKind.ROUND_VIDEO),))
        if kind == "gif":
            return replace(base, media=(self.video(i, kind=MediaKind.GIF),))
        if kind == "voice":
            mid = self.media_id(i, 0, MediaKind.VOICE)
            return replace(base, media=(Media(mid, MediaKind.VOICE, i, mid, duration=rng.randint(1, 3)),))
        if kind == "document":
            title = rng.choice(("report-2025.pdf", "timetable.xlsx", "안내문.pdf", "notes.txt"))
            mid = self.media_id(i, 0, MediaKind.DOCUMENT)
            size = rng.choice((2_150_000, 48_300, 730, 12_600_000))
            return replace(base, media=(Media(mid, MediaKind.DOCUMENT, i, mid, title=title, size_bytes=size),))
        if kind == "sticker":
            mid = self.media_id(i, 0, MediaKind.STICKER)
            return replace(base, text=Text(), media=(Media(mid, MediaKind.STICKER, i, mid, 256, 256),))
        if kind == "unsupported":
            mid = self.media_id(i, 0, MediaKind.UNSUPPORTED)
            return replace(base, media=(Media(mid, MediaKind.UNSUPPORTED, i, mid),))
        if kind == "poll":
            return replace(base, text=Text(), poll=self._poll())
        if kind == "location":
            lat = round(37.5 + rng.random(), 6) if self.korean else round(51.4 + rng.random() / 4, 6)
            lon = round(126.9 + rng.random(), 6) if self.korean else round(-0.2 + rng.random() / 4, 6)
            return replace(base, text=Text(), location=Location(lat, lon, f"{self.username}-{i}-map"))
        if kind == "link_preview":
            url = f"https://example.org/{'ko' if self.korean else 'en'}/story/{i}"
            spans = (*base.text.spans, Span("br"), Span("link", url, url))
            preview = LinkPreview(
                url,
                "Example News" if not self.korean else "예시 뉴스",
                rng.choice(KO_HEADLINES if self.korean else EN_HEADLINES),
                rng.choice(KO_BODIES if self.korean else EN_BODIES),
                f"{self.username}-{i}-preview" if rng.random() < 0.7 else None,
            )
            return replace(base, text=Text(spans), link_preview=preview)
        if kind == "forward":
            return replace(base, forwarded_from=self._forward(), media=(self.photo(i),))
        if kind == "forward_hidden":
            name = "익명의 제보자" if self.korean else "A hidden sender"
            return replace(base, forwarded_from=Forward(name))
        if kind == "reply":
            earlier = [m.id for m in self.messages if m.service is None]
            return replace(base, reply_to=rng.choice(earlier) if earlier else None)
        if kind == "via_bot":
            return replace(base, via_bot=rng.choice(BOTS))
        raise ValueError(f"unknown recipe {kind!r}")

    def _poll(self) -> Poll:
        rng = self.rng
        if self.korean:
            question, opts = "다음 모임 장소는 어디가 좋을까요?", ["도서관", "공원", "카페", "온라인"]
        else:
            question, opts = "Which workshop should we run next?", ["Maps", "Spreadsheets", "Photography", "Radio"]
        n = rng.randint(2, 4)
        cuts = sorted(rng.sample(range(1, 100), n - 1))
        percents = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        options = tuple(PollOption(t, p) for t, p in zip(opts[:n], percents, strict=True))
        return Poll(question, options, voters=rng.randint(10, 900), anonymous=rng.random() < 0.8)

    def _forward(self) -> Forward:
        rng = self.rng
        src = rng.choice(("korea_now", "daily_brief", "media_lab"))
        if src == self.username:
            src = "big_feed"
        return Forward(
            {"korea_now": "코리아 나우", "daily_brief": "Daily Brief", "media_lab": "Media Lab"}.get(src, "Big Feed"),
            src,
            rng.randint(2, 40),
        )


#: how often each recipe is drawn for the mixed channels (weights)
MIXED = (
    ("text", 30),
    ("photo", 18),
    ("album", 6),
    ("video", 5),
    ("link_preview", 8),
    ("forward", 4),
    ("forward_hidden", 2),
    ("reply", 5),
    ("via_bot", 2),
    ("document", 3),
    ("voice", 2),
    ("poll", 2),
    ("gif", 1),
)
#: the media channel walks this list (twice), so every kind shows up on more than one page
EVERY_KIND = (
    "photo", "album", "mixed_album", "video", "video_too_big", "round_video", "gif", "voice", "document",
    "sticker", "poll", "location", "link_preview", "unsupported", "forward", "forward_hidden", "reply",
    "via_bot", "text",
)  # fmt: skip


def _mixed_history(b: _Builder, count: int) -> None:
    kinds = [k for k, _ in MIXED]
    weights = [w for _, w in MIXED]
    b.service("Channel created")
    while len(b.messages) < count:
        roll = b.rng.random()
        if roll < 0.01:
            b.service("Channel photo updated")
        elif roll < 0.015:
            b.service("Pinned message")
        else:
            b.post(b.rng.choices(kinds, weights)[0])


def _every_kind_history(b: _Builder) -> None:
    b.service("Channel created")
    b.service("Channel photo updated")
    for _ in range(2):
        for kind in EVERY_KIND:
            b.post(kind)
    b.service("Channel name was changed to «Media Lab»")
    b.service("Pinned message")


def _channel(
    seed: int,
    username: str,
    title: str,
    description: str,
    *,
    kind: ChannelKind = ChannelKind.PUBLIC,
    korean: bool = False,
    verified: bool = False,
    history: Callable[[_Builder], None] | None = None,
) -> Channel:
    rng = random.Random(f"{seed}:{username}")
    b = _Builder(rng, username, korean, BASE_TIME + timedelta(days=rng.randint(0, 30)))
    if history is not None:
        history(b)
    return Channel(
        username=username,
        title=title,
        description=description,
        kind=kind,
        subscribers=_round3(rng.randint(300, 2_000_000)),
        verified=verified,
        messages=tuple(b.messages),
        avatar_id=f"{username}-avatar",
    )


def _apply_generation(seed: int, generation: int, ch: Channel) -> tuple[Channel, ChannelChanges]:
    """Edit a few posts, delete a few, append a few: the changes a re-crawl must turn into versions."""
    if not ch.messages:
        return ch, ChannelChanges()
    rng = random.Random(f"{seed}:{ch.username}:gen{generation}")
    candidates = [m.id for m in ch.messages if m.service is None and m.text]
    edited = sorted(rng.sample(candidates, min(3, len(candidates))))
    rest = [i for i in candidates if i not in edited and i != ch.messages[-1].id]
    deleted = sorted(rng.sample(rest, min(2, len(rest))))
    korean = any("\uac00" <= c <= "\ud7a3" for c in ch.title)
    note = f"수정 {generation}: 내용을 바로잡았습니다." if korean else f"Update {generation}: corrected details."
    out: list[Message] = []
    for m in ch.messages:
        if m.id in deleted:
            continue
        if m.id in edited:
            m = replace(m, text=Text((*m.text.spans, Span("br"), Span("italic", note))), edited=True)
        out.append(m)
    b = _Builder(rng, ch.username, korean, ch.messages[-1].date)
    b.next_id = max(i for m in ch.messages for i in m.covered_ids) + 1
    b.messages = list(out)
    for _ in range(rng.randint(3, 6)):
        b.post(rng.choice(("text", "photo", "link_preview", "album")))
    added = tuple(m.id for m in b.messages[len(out) :])
    return replace(ch, messages=tuple(b.messages)), ChannelChanges(tuple(edited), tuple(deleted), added)


def build_world(seed: int = 20250303, generation: int = 1, big_size: int = 400) -> World:
    """The whole sample site's content; same arguments, same world (byte for byte once rendered).

    ``big_size`` is the number of posts in ``big_feed``, the channel benchmarks crawl.
    """
    if generation < 1:
        raise ValueError(f"generation must be >= 1, got {generation}")
    channels = [
        _channel(
            seed, "daily_brief", "Daily Brief (sample)", "Invented local news for tgwatch tests. No real events.",
            verified=True, history=lambda b: _mixed_history(b, 64),
        ),
        _channel(
            seed, "korea_now", "코리아 나우 (샘플)", "테스트용 가상 뉴스 채널입니다. 실제 사건이 아닙니다.",
            korean=True, history=lambda b: _mixed_history(b, 47),
        ),
        _channel(
            seed, "media_lab", "Media Lab (sample)", "Every kind of post the web preview can show.",
            history=_every_kind_history,
        ),
        _channel(
            seed, "big_feed", "Big Feed (sample)", "A long synthetic history for benchmarks.",
            history=lambda b: _mixed_history(b, big_size),
        ),
        _channel(
            seed, "quiet_room", "Quiet Room (sample)", "A public channel whose history is not shown on the web.",
            kind=ChannelKind.NO_PREVIEW,
        ),
        _channel(
            seed, "closed_club", "Closed Club (sample)", "", kind=ChannelKind.PRIVATE,
        ),
    ]  # fmt: skip
    by_name = {c.username.lower(): c for c in channels}
    changes: dict[str, ChannelChanges] = {}
    for g in range(2, generation + 1):
        for name, ch in list(by_name.items()):
            by_name[name], changes[name] = _apply_generation(seed, g, ch)
    return World(seed=seed, generation=generation, channels=by_name, changes=changes)


def iter_media(world: World) -> Iterator[tuple[Channel, Message, Media]]:
    """Every media slot of every post, for tests that fetch media."""
    for ch in world.channels.values():
        for msg in ch.messages:
            for m in msg.media:
                yield ch, msg, m
