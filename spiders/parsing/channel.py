"""Parse t.me web-preview pages (``t.me/s/NAME``, ``t.me/NAME/ID?embed=1``) into records.

This module owns the page: what kind of page it is, the channel header, paging ids, and the
problems that let the spider re-fetch instead of storing half a page. Each message bubble is handed
to ``message.MessageBuilder``; the shared markup readers live in ``markup``.

The parser is pure (HTML in, records out); the spider decides what to fetch next from
``ChannelPage.before`` and records ``ChannelPage.problems`` as ``BadPage`` errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from lxml import etree

from foundation.errors import BadPage
from foundation.models import Channel, ChannelRef, ChannelState, Counters, Message, RawCapture, Source
from spiders.parsing.markup import class_tokens, find_class, outer_html, parse_duration, visible_text
from spiders.parsing.message import MessageBuilder
from spiders.parsing.numbers import parse_count

__all__ = ["ChannelPage", "PageKind", "PageProblem", "parse_duration", "parse_page"]

PageKind = Literal["channel", "post", "post_outer", "error", "empty"]

# by class, not by ``data-post``: widget markup from before ``data-post`` names the post only in its links
_XP_MESSAGES = etree.XPath("//div[contains(concat(' ', normalize-space(@class), ' '), ' tgme_widget_message ')]")
_XP_MORE = etree.XPath("//a[@data-before or @data-after]")
_HTML_PARSER = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True, collect_ids=False)


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
    undated_count: int = 0  # messages kept without a date footer (the 2026 markup prints none on some)
    no_posts: bool = False  # the page said "No posts found" (throttling answers so): not an empty channel
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
    title_el = find_class(info, "tgme_channel_info_header_title")
    user_el = find_class(info, "tgme_channel_info_header_username")
    desc_el = find_class(info, "tgme_channel_info_description")
    labels = find_class(info, "tgme_channel_info_header_labels")
    avatar = None
    photo = find_class(info, "tgme_page_photo_image")
    if photo is not None:
        for img in photo.iter("img"):
            avatar = img.get("src")
            break
    username = visible_text(user_el).lstrip("@").strip() if user_el is not None else ""
    username = username or (fallback_username or "")
    if not username:
        return None
    counters: dict[str, int | None] = {}
    for node in info.iter():
        if "tgme_channel_info_counter" not in class_tokens(node):
            continue
        value_el = find_class(node, "counter_value")
        type_el = find_class(node, "counter_type")
        kind = visible_text(type_el).lower() if type_el is not None else ""
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
    verified = labels is not None and find_class(labels, "verified-icon") is not None
    return Channel(
        ref=ChannelRef(username=username),
        source=Source.WEB,
        seen_at=fetched_at,
        title=visible_text(title_el) or None if title_el is not None else None,
        description=(visible_text(desc_el) or None) if desc_el is not None else None,
        avatar_url=avatar,
        verified=verified,
        kind="channel",  # only channels have a /s/ page; older markup labels their audience "members"
        counters=Counters(**_channel_audience(counters)),
        state=ChannelState.OK,
        raw=RawCapture.of("html", outer_html(info), url=url, fetched_at=fetched_at),
    )


def _channel_audience(counters: dict[str, int | None]) -> dict[str, int | None]:
    if counters.get("subscribers") is None and counters.get("members") is not None:
        counters = {**counters, "subscribers": counters["members"]}
        counters.pop("members")
    return counters


def _embed_channel(msg: Message, builder_fields: dict[str, Any], fetched_at: datetime, url: str) -> Channel:
    return Channel(
        ref=msg.ref,
        source=Source.WEB,
        seen_at=fetched_at,
        title=builder_fields.get("_owner"),
        verified=bool(builder_fields.get("_verified")),
        kind="group" if builder_fields.get("_in_group") else "channel",  # "SENDER in GROUP"
    )


# ----------------------------------------------------------------------------------------------- page


def _message_elements(root: Any) -> Iterable[Any]:
    for node in _XP_MESSAGES(root):
        classes = class_tokens(node)
        if "tgme_widget_message" in classes and "err_message" not in classes:  # "Post not found" is no message
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
    page_cut = _looks_truncated(text)
    if page_cut:
        page.problems.append(PageProblem(url, "truncated", "page ends before </html>"))

    seen: set[int] = set()
    first_fields: dict[str, Any] | None = None
    for el in _message_elements(root):
        builder = MessageBuilder(el, url, fetched_at)
        try:
            msg = builder.build()
        except (ValueError, TypeError) as exc:  # pydantic validation and friends: keep going
            page.problems.append(PageProblem(url, "malformed", f"message not understood: {exc}", builder.msg_id))
            continue
        if msg is None:
            detail = "message without a usable post id (no data-post, no link to its own post)"
            page.problems.append(PageProblem(url, "malformed", detail))
            continue
        if msg.msg_id in seen:
            page.problems.append(PageProblem(url, "malformed", "duplicate data-post on one page", msg.msg_id))
            continue
        if msg.date is None:
            bad = builder.fields.get("_bad_date")
            if bad:
                page.problems.append(PageProblem(url, "malformed", f"unparseable datetime {bad!r}", msg.msg_id))
            elif page_cut:
                detail = "message without its date footer (cut off?)"
                page.problems.append(PageProblem(url, "incomplete_message", detail, msg.msg_id))
                continue  # a cut-off message is fetched again rather than stored half
            else:
                page.undated_count += 1  # a whole page whose messages carry no date: kept with what they hold
        seen.add(msg.msg_id)
        if first_fields is None:
            first_fields = builder.fields
        page.unknown_count += len(msg.unknown)
        page.messages.append(msg)

    for a in _XP_MORE(root):
        if "tme_messages_more" in class_tokens(a):
            if a.get("data-before"):
                page.before = int(a.get("data-before")) if a.get("data-before", "").isdigit() else None
            elif a.get("data-after"):
                page.after = int(a.get("data-after")) if a.get("data-after", "").isdigit() else None

    if not page.messages and (
        _first_class(root, "tme_no_messages_found") is not None or "no posts found" in text.lower()
    ):
        page.no_posts = True
    if not page.messages and not page.problems and _first_class(root, "tgme_widget_message_wrap") is not None:
        page.problems.append(PageProblem(url, "malformed", "message blocks found but none understood"))
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
            page.error_text = visible_text(err)
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
