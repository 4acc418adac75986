"""Build one ``Message`` from one message bubble in a single walk of its elements.

One pass of lxml over each message bubble, dispatching on the ``tgme_widget_message_*`` class of
every child element. Why not CSS selectors per field: a page of 20 messages would run ~40 selector
queries per message; one walk that consumes each element once is several times faster and, more
important, tells us exactly which elements we did *not* understand. Those are kept verbatim in
``Message.unknown`` (and counted on the page), never dropped: the markup changes without notice and
the raw fragment is evidence.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from foundation.models import Button, ChannelRef, ForwardInfo, MediaRef, Message, RawCapture, Reaction, Source
from spiders.parsing.attachments import AttachmentHandlers
from spiders.parsing.markup import (
    class_tokens,
    find_class,
    inner_html,
    outer_html,
    post_id_from_link,
    username_from_link,
    visible_text,
)
from spiders.parsing.numbers import parse_count

_MENTION_RE = re.compile(r"(?<![\w@/])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
_HASHTAG_RE = re.compile(r"(?<![\w/&#])#(\w+)")

# class tokens that carry no data (layout, decoration, chrome), skipped without being "unknown"
_SKIP = frozenset(
    {
        "tgme_widget_message_bubble_tail",
        "tgme_widget_message_bubble_logo",
        "tgme_widget_message_user",
        "media_not_supported_cont",  # generic "Please open Telegram" fallback shown on every post
        "tgme_widget_message_service_date_wrap",
        "message_video_play",
        "tgme_widget_message_link",  # footer "t.me/NAME/ID" shortcut in embeds
        "copyonly",
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


def _service_kind(text: str) -> str:
    low = text.lower()
    for needle, kind in _SERVICE_KINDS:
        if needle in low:
            return kind
    return "other"


class MessageBuilder(AttachmentHandlers):
    """Collects one message's fields while walking its bubble once."""

    def __init__(self, el: Any, page_url: str, fetched_at: datetime) -> None:
        self.el = el
        self.page_url = page_url
        self.fetched_at = fetched_at
        post = el.get("data-post") or ""
        username, _, id_text = post.rpartition("/")
        if not post:  # markup from before ``data-post``: the id is only in the message's own links
            username, id_text = _id_from_links(el, _page_username(page_url))
        self.username: str = username
        # Telegram numbers posts from 1: an id of 0 is a damaged or injected block, not a post
        self.msg_id = int(id_text) if id_text.isdigit() and int(id_text) > 0 else None
        self.fields: dict[str, Any] = {}
        self.media: list[MediaRef] = []
        self.notices: list[str] = []
        self.unknown: list[str] = []
        self.text_el: Any | None = None
        self.reactions: list[Reaction] = []
        self.buttons: list[list[Button]] = []
        self.in_album = False
        self.raw_html = outer_html(el)

    # The walk ---------------------------------------------------------------------------------------

    def build(self) -> Message | None:
        if self.msg_id is None or not self.username:
            return None
        classes = class_tokens(self.el)
        bubble = None
        for child in self.el:
            if isinstance(child.tag, str) and "tgme_widget_message_bubble" in class_tokens(child):
                bubble = child
            elif isinstance(child.tag, str) and "tgme_widget_message_inline_keyboard" in class_tokens(child):
                self.keyboard(child)  # bot buttons sit under the bubble, not in it
            elif isinstance(child.tag, str) and not (set(class_tokens(child)) & _SKIP):
                self._unknown(child)
        self._walk(bubble if bubble is not None else self.el)
        if "service_message" in classes and "service" not in self.fields:
            text = visible_text(self.text_el) if self.text_el is not None else ""
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
            reactions=self.reactions,
            buttons=self.buttons,
            raw=raw,
            **{k: v for k, v in self.fields.items() if not k.startswith("_")},
        )

    def _walk(self, parent: Any) -> None:
        for child in parent:
            if not isinstance(child.tag, str):
                continue
            classes = class_tokens(child)
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
        self.unknown.append(outer_html(el))

    # Handlers ---------------------------------------------------------------------------------------

    def author(self, el: Any) -> None:
        sender = find_class(el, "tgme_widget_message_author_name")
        if sender is not None:  # a group message: "SENDER in GROUP" (a channel post names only the owner)
            self.fields["author"] = visible_text(next(iter(sender.iter("span")), sender)) or None
            username = username_from_link(sender.get("href"))
            self.fields["author_username"] = username.lower() if username else None
            if find_class(el, "tgme_widget_message_owner_name") is not None:
                self.fields["_in_group"] = True
        owner = find_class(el, "tgme_widget_message_owner_name")
        if owner is not None:
            name = next(iter(owner.iter("span")), owner)  # the name span, without the verified icon
            self.fields.setdefault("_owner", visible_text(name))
            if find_class(el, "verified-icon") is not None:
                self.fields["_verified"] = True
        bot = find_class(el, "tgme_widget_message_via_bot")  # "Owner via @bot" sits in the author line
        if bot is not None:
            self.via_bot(bot)

    def text(self, el: Any) -> None:
        if self.text_el is None:
            self.text_el = el
        else:  # a second text block (rare): keep it rather than guess
            self._unknown(el)

    def forwarded(self, el: Any) -> None:
        name_el = find_class(el, "tgme_widget_message_forwarded_from_name")
        link = name_el.get("href") if name_el is not None else None
        name = visible_text(name_el) if name_el is not None else visible_text(el).removeprefix("Forwarded from").strip()
        self.fields["forwarded_from"] = ForwardInfo(
            name=name or None,
            link=urljoin(self.page_url, link) if link else None,
            username=username_from_link(link),
            msg_id=post_id_from_link(link),
        )

    def reply(self, el: Any) -> None:
        self.fields["reply_to"] = post_id_from_link(el.get("href"))

    def via_bot(self, el: Any) -> None:
        bot = (
            find_class(el, "tgme_widget_message_via_bot")
            if "tgme_widget_message_via_bot" not in class_tokens(el)
            else el
        )
        name = visible_text(bot if bot is not None else el).lstrip("@").strip()
        self.fields["via_bot"] = name or username_from_link((bot if bot is not None else el).get("href"))

    def grouped(self, el: Any) -> None:
        self.in_album = True
        self._walk(el)

    def not_supported(self, el: Any) -> None:
        label_el = find_class(el, "message_media_not_supported_label")
        label = visible_text(label_el) if label_el is not None else visible_text(el)
        if label.lower() == "service message":
            self.fields["service"] = "service"
        if label and label not in self.notices:
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
                self.fields["author"] = visible_text(node) or None
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

    def reactions_block(self, el: Any) -> None:
        for node in el.iter():
            if not isinstance(node.tag, str) or "tgme_reaction" not in class_tokens(node):
                continue
            emoji = custom = None
            for part in node.iter():
                if not isinstance(part.tag, str):
                    continue
                if part.tag == "tg-emoji" and part.get("emoji-id"):
                    custom = part.get("emoji-id")
                elif part.tag == "b" and (part.text or "").strip() and emoji is None:
                    emoji = (part.text or "").strip()
            # the count is the text after the emoji element(s)
            count_text = "".join(child.tail or "" for child in node) or (node.text or "")
            self.reactions.append(
                Reaction(
                    emoji=emoji,
                    custom_emoji_id=custom,
                    count=parse_count(count_text),
                    paid="tgme_reaction_paid" in class_tokens(node),
                )
            )

    def keyboard(self, el: Any) -> None:
        rows: list[list[Button]] = []
        for row in el:
            if not isinstance(row.tag, str):
                continue
            buttons = [_button(self.page_url, b) for b in _button_elements(row)]
            if buttons:
                rows.append(buttons)
        if not rows:  # buttons straight in the keyboard, without row wrappers
            buttons = [_button(self.page_url, b) for b in _button_elements(el)]
            rows = [buttons] if buttons else []
        self.buttons.extend(rows)

    def contact(self, el: Any) -> None:
        # shared contact: no media kind for it; keep it visible as a notice and raw as unknown
        self.notices.append("contact: " + visible_text(el))
        self._unknown(el)

    # Text -------------------------------------------------------------------------------------------

    def _read_text(self, el: Any) -> None:
        html = inner_html(el)
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
        text = visible_text(el)
        for m in _HASHTAG_RE.finditer(text):
            if m.group(1) not in hashtags:
                hashtags.append(m.group(1))
        for m in _MENTION_RE.finditer(text):
            name = m.group(1)
            if name not in mentions:
                mentions.append(name)
        self.fields.update(text=text, html=html, links=links, hashtags=hashtags, mentions=mentions)


def _page_username(page_url: str) -> str:
    """The channel a preview page is about: ``/s/NAME`` or ``/NAME/ID?embed=1`` (lower case), else ""."""
    parts = [p for p in urlsplit(page_url).path.split("/") if p]
    if parts and parts[0] == "s":
        parts = parts[1:]
    return parts[0].lower() if parts else ""


def _id_from_links(el: Any, page_username: str) -> tuple[str, str]:
    """(username, id text) from the message's date link, else from the first link to a post of its own.

    "Its own": a link in the text is the author's to choose, so only one to a post of the page's own
    channel may stand in for the date link; a link to another channel's post never names this message
    (else one author could write a record into another channel's history)."""
    date = find_class(el, "tgme_widget_message_date")
    candidates = [(date, True)] if date is not None else []
    candidates.extend((a, False) for a in el.iter("a") if "tgme_widget_message_reply" not in class_tokens(a))
    for a, own in candidates:
        href = a.get("href")
        msg_id = post_id_from_link(href)
        username = username_from_link(href)
        if msg_id is None or not username or username == "c":  # t.me/c/ID/N names no public post
            continue
        if own or (page_username and username.lower() == page_username):
            return username, str(msg_id)
    return "", ""


def _button_elements(el: Any) -> list[Any]:
    return [
        node
        for node in el.iter()
        if isinstance(node.tag, str) and "tgme_widget_message_inline_button" in class_tokens(node)
    ]


def _button(page_url: str, el: Any) -> Button:
    href = el.get("href")
    text_el = find_class(el, "tgme_widget_message_inline_button_text")
    text = visible_text(text_el if text_el is not None else el)
    kinds = [
        c.removesuffix("_button")
        for c in class_tokens(el)
        if c.endswith("_button") and c != "tgme_widget_message_inline_button"
    ]
    return Button(
        text=text,
        url=urljoin(page_url, href) if href else None,
        kind=kinds[0] if kinds else ("url" if href else None),
    )


_HANDLERS: dict[str, Any] = {
    "tgme_widget_message_author": MessageBuilder.author,
    "tgme_widget_message_text": MessageBuilder.text,
    "tgme_widget_message_forwarded_from": MessageBuilder.forwarded,
    "tgme_widget_message_reply": MessageBuilder.reply,
    "tgme_widget_message_via_bot": MessageBuilder.via_bot,
    "tgme_widget_message_photo_wrap": MessageBuilder.photo,
    "tgme_widget_message_video_player": MessageBuilder.video,
    "tgme_widget_message_roundvideo_player": MessageBuilder.roundvideo,
    "tgme_widget_message_voice_player": MessageBuilder.voice,
    "tgme_widget_message_document_wrap": MessageBuilder.document,
    "tgme_widget_message_sticker_wrap": MessageBuilder.sticker,
    "tgme_widget_message_poll": MessageBuilder.poll,
    "tgme_widget_message_voters": MessageBuilder.voters,
    "tgme_widget_message_location_wrap": MessageBuilder.location,
    "tgme_widget_message_venue_wrap": MessageBuilder.venue,
    "tgme_widget_message_link_preview": MessageBuilder.link_preview,
    "tgme_widget_message_grouped_wrap": MessageBuilder.grouped,
    "message_media_not_supported_wrap": MessageBuilder.not_supported,
    "tgme_widget_message_views": MessageBuilder.views,
    "tgme_widget_message_meta": MessageBuilder.meta,
    "tgme_widget_message_date": MessageBuilder.date,
    "tgme_widget_message_service_photo": MessageBuilder.service_photo,
    "tgme_widget_message_contact_wrap": MessageBuilder.contact,
    "tgme_widget_message_reactions": MessageBuilder.reactions_block,
    "tgme_widget_message_inline_keyboard": MessageBuilder.keyboard,
}
