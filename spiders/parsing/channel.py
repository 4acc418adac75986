"""Parse t.me web-preview pages (``t.me/s/NAME``, ``t.me/NAME/ID?embed=1``) into records.

One pass of lxml over each message bubble, dispatching on the ``tgme_widget_message_*`` class of
every child element. Why not CSS selectors per field: a page of 20 messages would run ~40 selector
queries per message; one walk that consumes each element once is several times faster and, more
important, tells us exactly which elements we did *not* understand. Those are kept verbatim in
``Message.unknown`` (and counted on the page), never dropped: the markup changes without notice and
the raw fragment is evidence.

The parser is pure (HTML in, records out); the spider decides what to fetch next from
``ChannelPage.before`` and records ``ChannelPage.problems`` as ``BadPage`` errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from lxml import etree

from crawler.errors import BadPage
from crawler.models import (
    Channel,
    ChannelRef,
    ChannelState,
    Counters,
    ForwardInfo,
    LinkPreview,
    Location,
    MediaKind,
    MediaRef,
    Message,
    Poll,
    PollOption,
    RawCapture,
    Source,
)
from spiders.parsing.numbers import parse_count

PageKind = Literal["channel", "post", "post_outer", "error", "empty"]

_XP_MESSAGES = etree.XPath("//div[@data-post]")
_XP_MORE = etree.XPath("//a[@data-before or @data-after]")
_HTML_PARSER = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True, collect_ids=False)
_URL_RE = re.compile(r"url\((['\"]?)(.*?)\1\)")
_WIDTH_RE = re.compile(r"(?:^|;)\s*width:\s*([\d.]+)px")
_PAD_RE = re.compile(r"padding-top:\s*([\d.]+)%")
_MENTION_RE = re.compile(r"(?<![\w@/])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
_HASHTAG_RE = re.compile(r"(?<![\w/&#])#(\w+)")
_WS_NL_RE = re.compile(r"[ \t\r\f\v]*\n\s*")
_SPACE_AROUND_NL = re.compile(r" *\n *")
_BR_MARK = "\ue000"  # private-use char: never in page text, legal in XML

# class tokens that carry no data (layout, decoration, chrome), skipped without being "unknown"
_SKIP = frozenset(
    {
        "tgme_widget_message_bubble_tail",
        "tgme_widget_message_bubble_logo",
        "tgme_widget_message_user",
        "tgme_widget_message_reactions",
        "media_not_supported_cont",  # generic "Please open Telegram" fallback shown on every post
        "tgme_widget_message_service_date_wrap",
        "message_video_play",
        "tgme_widget_message_link",  # footer "t.me/NAME/ID" shortcut in embeds
        "copyonly",
        "tgme_widget_message_inline_keyboard",  # bot buttons: kept in the raw fragment
    }
)
# pure containers: their children are walked as if they sat in the bubble
_DESCEND = frozenset(
    {
        "media_supported_cont",
        "tgme_widget_message_one_media",
        "tgme_widget_message_grouped",
        "tgme_widget_message_grouped_layer",
        "tgme_widget_message_footer",
        "tgme_widget_message_info",
        "grouped_media_helper",
        "tgme_widget_message_tgsticker_wrap",
        "tgme_widget_message_service_photo_wrap",
    }
)
_SERVICE_KINDS: tuple[tuple[str, str], ...] = (
    ("channel created", "channel_created"),
    ("group created", "group_created"),
    ("photo updated", "photo_changed"),
    ("photo changed", "photo_changed"),
    ("photo removed", "photo_removed"),
    ("name was changed", "title_changed"),
    ("name changed", "title_changed"),
    ("renamed", "title_changed"),
    ("pinned", "pinned"),
    ("live stream", "video_chat"),
    ("video chat", "video_chat"),
    ("voice chat", "video_chat"),
    ("joined", "member_joined"),
    ("left", "member_left"),
    ("service message", "service"),
)


@dataclass(frozen=True, slots=True)
class PageProblem:
    """Something wrong with a page that did not stop us from keeping what it held."""

    url: str
    kind: str  # "truncated", "incomplete_message", "malformed", "not_a_preview", "error_page"
    detail: str
    msg_id: int | None = None

    def to_error(self) -> BadPage:
        where = f" (message {self.msg_id})" if self.msg_id is not None else ""
        return BadPage(f"{self.kind}: {self.detail}{where}", url=self.url)


@dataclass(slots=True)
class ChannelPage:
    """Everything one fetched page yields."""

    url: str
    fetched_at: datetime
    kind: PageKind
    channel: Channel | None = None
    messages: list[Message] = field(default_factory=list)
    before: int | None = None  # id for the next older page (``?before=``); None = first message reached
    after: int | None = None  # id for the next newer page, when the page offers one
    problems: list[PageProblem] = field(default_factory=list)
    unknown_count: int = 0
    error_text: str | None = None

    @property
    def ids(self) -> list[int]:
        return [m.msg_id for m in self.messages]

    @property
    def media_count(self) -> int:
        return sum(len(m.media) for m in self.messages)

    @property
    def truncated(self) -> bool:
        return any(p.kind in ("truncated", "incomplete_message") for p in self.problems)


# ---------------------------------------------------------------------------------------------- helpers


def parse_duration(text: str | None) -> float | None:
    """``"0:09"`` → 9.0, ``"1:02:03"`` → 3723.0."""
    if not text:
        return None
    total = 0.0
    try:
        for part in text.strip().split(":"):
            total = total * 60 + float(part)
    except ValueError:
        return None
    return total


def _classes(el: Any) -> list[str]:
    cls = el.get("class")
    return cls.split() if cls else []


def _bg_url(style: str | None) -> str | None:
    if not style:
        return None
    m = _URL_RE.search(style)
    if not m:
        return None
    url = m.group(2)
    return "https:" + url if url.startswith("//") else url


def _dims(style: str | None, ratio_style: str | None) -> tuple[int | None, int | None]:
    width = height = None
    if style and (m := _WIDTH_RE.search(style)):
        width = round(float(m.group(1)))
    if width is not None and ratio_style and (p := _PAD_RE.search(ratio_style)):
        height = round(width * float(p.group(1)) / 100)
    return width, height


def _text(el: Any) -> str:
    """Visible text of an element: ``<br>`` → newline, pretty-print whitespace collapsed."""
    for br in el.iter("br"):
        br.tail = _BR_MARK + (br.tail or "")
    raw = "".join(el.itertext())
    if "\n" in raw:  # only pretty-printed saves have raw newlines; t.me writes <br/>
        raw = _WS_NL_RE.sub(" ", raw)
        raw = raw.replace(_BR_MARK, "\n")
        raw = _SPACE_AROUND_NL.sub("\n", raw)
    else:
        raw = raw.replace(_BR_MARK, "\n")
    return raw.strip()


def _inner_html(el: Any) -> str:
    outer = etree.tostring(el, encoding="unicode", with_tail=False)
    start = outer.find(">") + 1
    end = outer.rfind("</")
    return (outer[start:end] if end >= start else outer[start:]).strip()


def _outer_html(el: Any) -> str:
    return etree.tostring(el, encoding="unicode", with_tail=False)


def _first(el: Any, cls: str) -> Any | None:
    for node in el.iter():
        c = node.get("class")
        if c and cls in c.split():
            return node
    return None


def _first_of(el: Any, *classes: str) -> Any | None:
    for cls in classes:
        node = _first(el, cls)
        if node is not None:
            return node
    return None


def _post_id(href: str | None) -> int | None:
    """``https://t.me/name/123`` or ``…/123?single`` → 123."""
    if not href:
        return None
    path = urlsplit(href).path.rstrip("/")
    tail = path.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _username_from_link(href: str | None) -> str | None:
    if not href:
        return None
    parts = [p for p in urlsplit(href).path.split("/") if p]
    if parts and parts[0] == "s":
        parts = parts[1:]
    return parts[0] if parts and not parts[0].startswith("+") else None


def _service_kind(text: str) -> str:
    low = text.lower()
    for needle, kind in _SERVICE_KINDS:
        if needle in low:
            return kind
    return "other"


# ------------------------------------------------------------------------------------------- messages


class _MessageBuilder:
    """Collects one message's fields while walking its bubble once."""

    def __init__(self, el: Any, page_url: str, fetched_at: datetime) -> None:
        self.el = el
        self.page_url = page_url
        self.fetched_at = fetched_at
        post = el.get("data-post") or ""
        username, _, id_text = post.rpartition("/")
        self.username: str = username
        self.msg_id = int(id_text) if id_text.isdigit() else None
        self.fields: dict[str, Any] = {}
        self.media: list[MediaRef] = []
        self.notices: list[str] = []
        self.unknown: list[str] = []
        self.text_el: Any | None = None
        self.in_album = False
        self.raw_html = _outer_html(el)

    # The walk ---------------------------------------------------------------------------------------

    def build(self) -> Message | None:
        if self.msg_id is None or not self.username:
            return None
        classes = _classes(self.el)
        bubble = None
        for child in self.el:
            if isinstance(child.tag, str) and "tgme_widget_message_bubble" in _classes(child):
                bubble = child
            elif isinstance(child.tag, str) and not (set(_classes(child)) & _SKIP):
                self._unknown(child)
        self._walk(bubble if bubble is not None else self.el)
        if "service_message" in classes and "service" not in self.fields:
            text = _text(self.text_el) if self.text_el is not None else ""
            self.fields["service"] = _service_kind(text) if text else "other"
        if self.text_el is not None:
            self._read_text(self.text_el)
        if self.in_album:
            self.fields["grouped_id"] = f"{self.username.lower()}/{self.msg_id}"
        raw = RawCapture.of("html", self.raw_html, url=self.page_url, fetched_at=self.fetched_at)
        return Message(
            ref=ChannelRef(username=self.username),
            msg_id=self.msg_id,
            source=Source.WEB,
            media=self.media,
            notices=self.notices,
            unknown=self.unknown,
            raw=raw,
            **{k: v for k, v in self.fields.items() if not k.startswith("_")},
        )

    def _walk(self, parent: Any) -> None:
        for child in parent:
            if not isinstance(child.tag, str):
                continue
            classes = _classes(child)
            if not classes:
                if child.tag in ("br",) or (not len(child) and not (child.text or "").strip()):
                    continue
                self._unknown(child)
                continue
            if not _SKIP.isdisjoint(classes):
                continue
            for cls in classes:
                handler = _HANDLERS.get(cls)
                if handler is not None:
                    handler(self, child)
                    break
                if cls in _DESCEND:
                    self._walk(child)
                    break
            else:
                self._unknown(child)

    def _unknown(self, el: Any) -> None:
        self.unknown.append(_outer_html(el))

    # Handlers ---------------------------------------------------------------------------------------

    def author(self, el: Any) -> None:
        owner = _first(el, "tgme_widget_message_owner_name")
        if owner is not None:
            name = next(iter(owner.iter("span")), owner)  # the name span, without the verified icon
            self.fields.setdefault("_owner", _text(name))
            if _first(el, "verified-icon") is not None:
                self.fields["_verified"] = True
        bot = _first(el, "tgme_widget_message_via_bot")  # "Owner via @bot" sits in the author line
        if bot is not None:
            self.via_bot(bot)

    def text(self, el: Any) -> None:
        if self.text_el is None:
            self.text_el = el
        else:  # a second text block (rare): keep it rather than guess
            self._unknown(el)

    def forwarded(self, el: Any) -> None:
        name_el = _first(el, "tgme_widget_message_forwarded_from_name")
        link = name_el.get("href") if name_el is not None else None
        name = _text(name_el) if name_el is not None else _text(el).removeprefix("Forwarded from").strip()
        self.fields["forwarded_from"] = ForwardInfo(
            name=name or None,
            link=urljoin(self.page_url, link) if link else None,
            username=_username_from_link(link),
            msg_id=_post_id(link),
        )

    def reply(self, el: Any) -> None:
        self.fields["reply_to"] = _post_id(el.get("href"))

    def via_bot(self, el: Any) -> None:
        bot = _first(el, "tgme_widget_message_via_bot") if "tgme_widget_message_via_bot" not in _classes(el) else el
        name = _text(bot if bot is not None else el).lstrip("@").strip()
        self.fields["via_bot"] = name or _username_from_link((bot if bot is not None else el).get("href"))

    def photo(self, el: Any) -> None:
        classes = _classes(el)
        grouped = "grouped_media_wrap" in classes
        inner = _first(el, "tgme_widget_message_photo")
        ratio_style = inner.get("style") if inner is not None else None
        width, height = (None, None) if grouped else _dims(el.get("style"), ratio_style)
        locator: dict[str, Any] = {"post": el.get("href")}
        if len(classes) > 1 and classes[1].isdigit():
            locator["web_photo_id"] = classes[1]
        self.media.append(
            MediaRef(kind=MediaKind.PHOTO, url=_bg_url(el.get("style")), width=width, height=height, locator=locator)
        )

    def video(self, el: Any) -> None:
        video_el = None
        for node in el.iter("video"):
            video_el = node
            break
        thumb = _first(el, "tgme_widget_message_video_thumb")
        wrap = _first(el, "tgme_widget_message_video_wrap")
        duration_el = _first(el, "message_video_duration")
        grouped = "grouped_media_wrap" in _classes(el)
        width, height = (None, None) if grouped or wrap is None else _dims(wrap.get("style"), wrap.get("style"))
        duration = parse_duration(duration_el.text if duration_el is not None else None)
        is_gif = (
            video_el is not None
            and duration_el is None
            and video_el.get("autoplay") is not None
            and video_el.get("loop") is not None
        )
        self._player_notice(el)
        self.media.append(
            MediaRef(
                kind=MediaKind.GIF if is_gif else MediaKind.VIDEO,
                url=video_el.get("src") if video_el is not None else None,
                thumb_url=_bg_url(thumb.get("style")) if thumb is not None else None,
                width=width,
                height=height,
                duration=duration,
                locator={"post": el.get("href")},
            )
        )

    def roundvideo(self, el: Any) -> None:
        video_el = _first(el, "tgme_widget_message_roundvideo")
        thumb = _first(el, "tgme_widget_message_roundvideo_thumb")
        duration_el = _first(el, "tgme_widget_message_roundvideo_duration")
        self._player_notice(el)
        self.media.append(
            MediaRef(
                kind=MediaKind.ROUND_VIDEO,
                url=video_el.get("src") if video_el is not None else None,
                thumb_url=_bg_url(thumb.get("style")) if thumb is not None else None,
                duration=parse_duration(duration_el.text if duration_el is not None else None),
            )
        )

    def voice(self, el: Any) -> None:
        audio = None
        for node in el.iter("audio"):
            audio = node
            break
        duration_el = _first(el, "tgme_widget_message_voice_duration")
        self.media.append(
            MediaRef(
                kind=MediaKind.VOICE,
                url=audio.get("src") if audio is not None else None,
                duration=parse_duration(duration_el.text if duration_el is not None else None),
                mime="audio/ogg" if audio is not None and audio.get("data-ogg") is not None else None,
            )
        )

    def document(self, el: Any) -> None:
        title_el = _first(el, "tgme_widget_message_document_title")
        extra_el = _first(el, "tgme_widget_message_document_extra")
        icon = _first(el, "tgme_widget_message_document_icon")
        thumb = _first(el, "tgme_widget_message_document_thumb")
        title = _text(title_el) if title_el is not None else None
        title = " ".join(title.split()) if title else None
        size_text = _text(extra_el) if extra_el is not None else None
        is_audio = icon is not None and "audio" in _classes(icon)
        self.media.append(
            MediaRef(
                kind=MediaKind.AUDIO if is_audio else MediaKind.DOCUMENT,
                title=title,
                file_name=title if title and "." in title and not is_audio else None,
                size_text=size_text,
                size=_size_bytes(size_text),
                thumb_url=_bg_url(thumb.get("style")) if thumb is not None else None,
                locator={"post": el.get("href")},
            )
        )

    def sticker(self, el: Any) -> None:
        url = mime = None
        for node in el.iter():
            if not isinstance(node.tag, str):
                continue
            if node.tag == "source" and node.get("srcset"):
                url, mime = node.get("srcset"), node.get("type")
                break
            if node.tag == "video" and node.get("src"):
                url, mime = node.get("src"), "video/webm"
                break
            if "tgme_widget_message_sticker" in _classes(node):
                url = node.get("data-webp") or _bg_url(node.get("style"))
                mime = "image/webp"
                break
        emoji = None
        for node in el.iter():
            if isinstance(node.tag, str) and node.get("data-sticker-emoji"):
                emoji = node.get("data-sticker-emoji")
                break
        picture = _first_of(el, "tgme_widget_message_tgsticker", "tgme_widget_message_sticker")
        width, _ = _dims(picture.get("style") if picture is not None else None, None)
        self.media.append(MediaRef(kind=MediaKind.STICKER, url=url, mime=mime, emoji=emoji, width=width, height=width))

    def poll(self, el: Any) -> None:
        question_el = _first(el, "tgme_widget_message_poll_question")
        type_el = _first(el, "tgme_widget_message_poll_type")
        options = []
        for opt in el.iter():
            if "tgme_widget_message_poll_option" not in _classes(opt):
                continue
            text_el = _first(opt, "tgme_widget_message_poll_option_text")
            pct_el = _first(opt, "tgme_widget_message_poll_option_percent")
            pct = (pct_el.text or "").strip().rstrip("%") if pct_el is not None else ""
            options.append(
                PollOption(
                    text=_text(text_el) if text_el is not None else "",
                    percent=float(pct) if pct.replace(".", "", 1).isdigit() else None,
                )
            )
        self.fields["poll"] = Poll(
            question=_text(question_el) if question_el is not None else "",
            options=options,
            kind=_text(type_el) if type_el is not None else None,
            voters=self.fields.get("_voters"),
        )

    def voters(self, el: Any) -> None:
        voters = parse_count(el.text or "")
        self.fields["_voters"] = voters
        if "poll" in self.fields:
            self.fields["poll"] = self.fields["poll"].model_copy(update={"voters": voters})

    def location(self, el: Any) -> None:
        href = el.get("href") or ""
        lat = lon = None
        q = parse_qs(urlsplit(href).query).get("q", [""])[0]
        if "," in q:
            a, _, b = q.partition(",")
            try:
                lat, lon = float(a), float(b)
            except ValueError:
                lat = lon = None
        title_el = _first(el, "tgme_widget_message_venue_title")
        addr_el = _first(el, "tgme_widget_message_venue_address")
        self.fields["location"] = Location(
            latitude=lat,
            longitude=lon,
            title=_text(title_el) if title_el is not None else None,
            address=_text(addr_el) if addr_el is not None else None,
            url=href or None,
        )

    def venue(self, el: Any) -> None:  # venue text sits beside the map in some layouts
        title_el = _first(el, "tgme_widget_message_venue_title")
        addr_el = _first(el, "tgme_widget_message_venue_address")
        loc = self.fields.get("location") or Location()
        self.fields["location"] = loc.model_copy(
            update={
                "title": _text(title_el) if title_el is not None else loc.title,
                "address": _text(addr_el) if addr_el is not None else loc.address,
            }
        )

    def link_preview(self, el: Any) -> None:
        def part(cls: str) -> str | None:
            node = _first(el, cls)
            return _text(node) or None if node is not None else None

        image = _first_of(el, "link_preview_image", "link_preview_right_image")
        href = el.get("href")
        self.fields["link_preview"] = LinkPreview(
            url=urljoin(self.page_url, href) if href else None,
            site=part("link_preview_site_name"),
            title=part("link_preview_title"),
            description=part("link_preview_description"),
            image_url=_bg_url(image.get("style")) if image is not None else None,
        )

    def grouped(self, el: Any) -> None:
        self.in_album = True
        self._walk(el)

    def not_supported(self, el: Any) -> None:
        label_el = _first(el, "message_media_not_supported_label")
        label = _text(label_el) if label_el is not None else _text(el)
        if label.lower() == "service message":
            self.fields["service"] = "service"
        if label and label not in self.notices:
            self.notices.append(label)

    def _player_notice(self, el: Any) -> None:
        """A notice inside a player matters only when it is not the stock "not supported in your browser"."""
        label_el = _first(el, "message_media_not_supported_label")
        if label_el is None:
            return
        label = _text(label_el)
        if label and "in your browser" not in label and label not in self.notices:
            self.notices.append(label)

    def views(self, el: Any) -> None:
        self.fields["views"] = parse_count(el.text or "")

    def meta(self, el: Any) -> None:
        own = (el.text or "") + "".join(c.tail or "" for c in el)
        if "edited" in own:
            self.fields["edited"] = True
        for node in el.iter():
            cls = node.get("class") if isinstance(node.tag, str) else None
            if not cls:
                continue
            if "tgme_widget_message_from_author" in cls:
                self.fields["author"] = _text(node) or None
            elif "tgme_widget_message_date" in cls:
                self.date(node)
            elif "tgme_widget_message_views" in cls and "views" not in self.fields:
                self.views(node)

    def date(self, el: Any) -> None:
        href = el.get("href")
        if href:
            self.fields["permalink"] = urljoin(self.page_url, href)
        for t in el.iter("time"):
            stamp = t.get("datetime")
            if stamp:
                try:
                    self.fields["date"] = datetime.fromisoformat(stamp)
                except ValueError:
                    self.fields["_bad_date"] = stamp
            break

    def service_photo(self, el: Any) -> None:
        img = None
        for node in el.iter("img"):
            img = node
            break
        self.media.append(
            MediaRef(
                kind=MediaKind.PHOTO,
                url=img.get("src") if img is not None else _bg_url(el.get("style")),
                locator={"post": el.get("href"), "service": True},
            )
        )

    def contact(self, el: Any) -> None:
        # shared contact: no media kind for it; keep it visible as a notice and raw as unknown
        self.notices.append("contact: " + _text(el))
        self._unknown(el)

    # Text -------------------------------------------------------------------------------------------

    def _read_text(self, el: Any) -> None:
        html = _inner_html(el)
        links: list[str] = []
        hashtags: list[str] = []
        mentions: list[str] = []
        for a in el.iter("a"):
            href = a.get("href")
            if not href:
                continue
            if href.startswith("?q="):
                tag = unquote(href[3:]).lstrip("#")
                if tag and tag not in hashtags:
                    hashtags.append(tag)
                continue
            full = urljoin(self.page_url, href)
            if full not in links:
                links.append(full)
        text = _text(el)
        for m in _HASHTAG_RE.finditer(text):
            if m.group(1) not in hashtags:
                hashtags.append(m.group(1))
        for m in _MENTION_RE.finditer(text):
            name = m.group(1)
            if name not in mentions:
                mentions.append(name)
        self.fields.update(text=text, html=html, links=links, hashtags=hashtags, mentions=mentions)


def _size_bytes(text: str | None) -> int | None:
    if not text:
        return None
    m = re.match(r"^\s*([\d.,]+)\s*(B|KB|MB|GB|TB)\s*$", text, re.IGNORECASE)
    if not m:
        return None
    mult = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}[m.group(2).upper()]
    return round(float(m.group(1).replace(",", ".")) * mult)


_HANDLERS: dict[str, Any] = {
    "tgme_widget_message_author": _MessageBuilder.author,
    "tgme_widget_message_text": _MessageBuilder.text,
    "tgme_widget_message_forwarded_from": _MessageBuilder.forwarded,
    "tgme_widget_message_reply": _MessageBuilder.reply,
    "tgme_widget_message_via_bot": _MessageBuilder.via_bot,
    "tgme_widget_message_photo_wrap": _MessageBuilder.photo,
    "tgme_widget_message_video_player": _MessageBuilder.video,
    "tgme_widget_message_roundvideo_player": _MessageBuilder.roundvideo,
    "tgme_widget_message_voice_player": _MessageBuilder.voice,
    "tgme_widget_message_document_wrap": _MessageBuilder.document,
    "tgme_widget_message_sticker_wrap": _MessageBuilder.sticker,
    "tgme_widget_message_poll": _MessageBuilder.poll,
    "tgme_widget_message_voters": _MessageBuilder.voters,
    "tgme_widget_message_location_wrap": _MessageBuilder.location,
    "tgme_widget_message_venue_wrap": _MessageBuilder.venue,
    "tgme_widget_message_link_preview": _MessageBuilder.link_preview,
    "tgme_widget_message_grouped_wrap": _MessageBuilder.grouped,
    "message_media_not_supported_wrap": _MessageBuilder.not_supported,
    "tgme_widget_message_views": _MessageBuilder.views,
    "tgme_widget_message_meta": _MessageBuilder.meta,
    "tgme_widget_message_date": _MessageBuilder.date,
    "tgme_widget_message_service_photo": _MessageBuilder.service_photo,
    "tgme_widget_message_contact_wrap": _MessageBuilder.contact,
}


# --------------------------------------------------------------------------------------------- header


def _channel_header(root: Any, url: str, fetched_at: datetime, fallback_username: str | None) -> Channel | None:
    info = None
    for node in root.iter("div", "section"):
        c = node.get("class")
        if c and "tgme_channel_info" in c.split():
            info = node
            break
    if info is None:
        return None
    title_el = _first(info, "tgme_channel_info_header_title")
    user_el = _first(info, "tgme_channel_info_header_username")
    desc_el = _first(info, "tgme_channel_info_description")
    labels = _first(info, "tgme_channel_info_header_labels")
    avatar = None
    photo = _first(info, "tgme_page_photo_image")
    if photo is not None:
        for img in photo.iter("img"):
            avatar = img.get("src")
            break
    username = _text(user_el).lstrip("@").strip() if user_el is not None else ""
    username = username or (fallback_username or "")
    if not username:
        return None
    counters: dict[str, int | None] = {}
    for node in info.iter():
        if "tgme_channel_info_counter" not in _classes(node):
            continue
        value_el = _first(node, "counter_value")
        type_el = _first(node, "counter_type")
        kind = _text(type_el).lower() if type_el is not None else ""
        value = parse_count(value_el.text or "") if value_el is not None else None
        key = {
            "subscriber": "subscribers",
            "member": "members",
            "photo": "photos",
            "video": "videos",
            "file": "files",
            "link": "links",
            "online": "online",
        }.get(kind.rstrip("s") if kind != "online" else kind)
        if key:
            counters[key] = value
    verified = labels is not None and _first(labels, "verified-icon") is not None
    return Channel(
        ref=ChannelRef(username=username),
        source=Source.WEB,
        seen_at=fetched_at,
        title=_text(title_el) or None if title_el is not None else None,
        description=(_text(desc_el) or None) if desc_el is not None else None,
        avatar_url=avatar,
        verified=verified,
        kind="group" if "members" in counters else "channel",
        counters=Counters(**counters),
        state=ChannelState.OK,
        raw=RawCapture.of("html", _outer_html(info), url=url, fetched_at=fetched_at),
    )


def _embed_channel(msg: Message, builder_fields: dict[str, Any], fetched_at: datetime, url: str) -> Channel:
    return Channel(
        ref=msg.ref,
        source=Source.WEB,
        seen_at=fetched_at,
        title=builder_fields.get("_owner"),
        verified=bool(builder_fields.get("_verified")),
        kind="channel",
    )


# ----------------------------------------------------------------------------------------------- page


def _message_elements(root: Any) -> Iterable[Any]:
    for node in _XP_MESSAGES(root):
        if "tgme_widget_message" in _classes(node):
            yield node


def _looks_truncated(text: str) -> bool:
    head = text[:2048].lower()
    if "<html" not in head:
        return False  # a fragment, not a page
    tail = text[-512:].lower().rstrip()
    while tail.endswith("-->"):
        start = tail.rfind("<!--")
        if start < 0:
            break
        tail = tail[:start].rstrip()
    return not tail.endswith("</html>")


def parse_page(
    content: str | bytes,
    url: str,
    *,
    fetched_at: datetime | None = None,
    username: str | None = None,
) -> ChannelPage:
    """Parse one t.me page. Never raises on bad markup: problems are returned on the page."""
    fetched_at = fetched_at or datetime.now(UTC)
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    page = ChannelPage(url=url, fetched_at=fetched_at, kind="empty")
    if not text.strip():
        page.problems.append(PageProblem(url, "malformed", "empty response body"))
        return page
    try:
        root = etree.fromstring(text, _HTML_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        page.problems.append(PageProblem(url, "malformed", f"unparseable HTML: {exc}"))
        return page
    if root is None:
        page.problems.append(PageProblem(url, "malformed", "no HTML document"))
        return page
    if _looks_truncated(text):
        page.problems.append(PageProblem(url, "truncated", "page ends before </html>"))

    seen: set[int] = set()
    first_fields: dict[str, Any] | None = None
    for el in _message_elements(root):
        builder = _MessageBuilder(el, url, fetched_at)
        try:
            msg = builder.build()
        except (ValueError, TypeError) as exc:  # pydantic validation and friends: keep going
            page.problems.append(PageProblem(url, "malformed", f"message not understood: {exc}", builder.msg_id))
            continue
        if msg is None:
            page.problems.append(PageProblem(url, "malformed", "message without a usable data-post id"))
            continue
        if msg.msg_id in seen:
            page.problems.append(PageProblem(url, "malformed", "duplicate data-post on one page", msg.msg_id))
            continue
        if msg.date is None:
            bad = builder.fields.get("_bad_date")
            kind = "malformed" if bad else "incomplete_message"
            detail = f"unparseable datetime {bad!r}" if bad else "message without its date footer (cut off?)"
            page.problems.append(PageProblem(url, kind, detail, msg.msg_id))
            if not bad:
                continue  # a cut-off message is fetched again rather than stored half
        seen.add(msg.msg_id)
        if first_fields is None:
            first_fields = builder.fields
        page.unknown_count += len(msg.unknown)
        page.messages.append(msg)

    for a in _XP_MORE(root):
        if "tme_messages_more" in _classes(a):
            if a.get("data-before"):
                page.before = int(a.get("data-before")) if a.get("data-before", "").isdigit() else None
            elif a.get("data-after"):
                page.after = int(a.get("data-after")) if a.get("data-after", "").isdigit() else None

    page.channel = _channel_header(root, url, fetched_at, username)
    if _first_class(root, "tgme_channel_history") is not None or page.channel is not None:
        page.kind = "channel"
    elif page.messages:
        page.kind = "post"
        if first_fields is not None:
            page.channel = _embed_channel(page.messages[0], first_fields, fetched_at, url)
    else:
        err = _first_class(root, "tgme_widget_message_error")
        if err is not None:
            page.kind = "error"
            page.error_text = _text(err)
        elif _first_class(root, "tgme_page_widget") is not None:
            page.kind = "post_outer"
    page.messages.sort(key=lambda m: m.msg_id)
    return page


def _first_class(root: Any, cls: str) -> Any | None:
    for node in root.iter():
        c = node.get("class") if isinstance(node.tag, str) else None
        if c and cls in c.split():
            return node
    return None
