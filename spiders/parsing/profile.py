"""``t.me/NAME`` and ``t.me/+HASH`` preview pages → ``ProfilePage`` (triage's view of a candidate).

Why a pure function: triage fetches thousands of these pages; the spider owns the fetching and
error mapping (429/5xx), this module only reads markup, so it can be tested on saved real pages.

How the page is read (learned from ``../shared/corpus/profile`` and ``invite``)::

    .tgme_page_photo img.tgme_page_photo_image   avatar
    .tgme_page_title (+ i.verified-icon)         title, verified mark
    .tgme_page_extra (0..n)                       "@name" and/or counters ("97 957 members, 4 138 online")
    .tgme_page_description                        description (links and <br> kept as text)
    .tgme_page_action a                           "View in Telegram" | "Send Message" | "Start Bot" |
                                                  "Join Group" | "Join Channel"; href tg://resolve | tg://join
    a.tgme_page_context_link[href^="/s/"]         "Preview channel": a web preview exists
    .tgme_page_additional                         "you can view and join" | "contact" | "launch" |
                                                  "You are invited to the group/channel"

Type, strongest signal first: a decisive action button (Start Bot / Send Message / Join Group /
Join Channel); the "Preview channel" link (``/s/``: only channels have one, and it outranks the
counter label because older markup labels a channel's audience "members" — such a count is then
read as subscribers); the counters' label (subscribers → channel, members/online → group, monthly
users → bot); the invitation sentence; the ``<title>`` verb ("Launch @").
"View in Telegram" alone is ambiguous (channels and groups both show it). The ``<title>`` verb is
weakest: a 2024 channel page says "Contact @DiaboxApp".

State needs positive proof (an unfamiliar or throttled page must not be reported as "not found"):
``valid`` when the page has a non-empty ``.tgme_page_title``; ``not_found`` / ``expired_invite``
when it has the ``.tgme_page`` frame but no title and shows the placeholder icon
(``.tgme_page_icon``) or the ``noindex`` robots tag, or says the invite link is invalid/expired;
``unknown`` otherwise, with a problem recorded.

``blocked`` (checked before ``valid``, because the page of a blocked channel still shows its title):
the frame's ``.tgme_page_description`` or ``.tgme_page_additional`` carries Telegram's block notice
("This channel can't be displayed because it violated Telegram's Terms of Service.", "This group
can’t be displayed …", "This channel is blocked because …", "… is unavailable due to copyright
infringement"); the notice's text is kept in ``blocked_notice``. Takedown re-checks read it as
proof of removal, so only those two blocks are read: a description that merely quotes the notice
somewhere in its middle does not count, the notice must open the block's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from parsel import Selector

from foundation.links import LinkKind, TgLink, find_links, normalize
from spiders.parsing.numbers import parse_counters

__all__ = ["EntityType", "PageState", "ProfilePage", "parse_profile"]


class EntityType(StrEnum):
    CHANNEL = "channel"
    GROUP = "group"
    USER = "user"
    BOT = "bot"
    UNKNOWN = "unknown"


class PageState(StrEnum):
    VALID = "valid"
    EXPIRED_INVITE = "expired_invite"  # invite hash revoked, expired or never valid
    NOT_FOUND = "not_found"  # username not (or no longer) taken
    BLOCKED = "blocked"  # Telegram blocked the channel/group: the page shows its block notice
    UNKNOWN = "unknown"  # not a preview page we recognise (throttle page, truncated, markup change)


@dataclass(frozen=True, slots=True)
class ProfilePage:
    """What a preview page says. Fields are ``None`` when the page does not say."""

    state: PageState
    type: EntityType = EntityType.UNKNOWN
    is_invite: bool = False
    username: str | None = None  # lower-cased
    invite_hash: str | None = None  # case kept
    title: str | None = None
    description: str | None = None
    description_links: tuple[TgLink, ...] = ()  # t.me links and @mentions in the description (snowball)
    counters_text: str | None = None
    counters: dict[str, int] = field(default_factory=dict)  # {"members": 97957, "online": 4138}
    members: int | None = None
    subscribers: int | None = None
    online: int | None = None
    monthly_users: int | None = None
    verified: bool = False
    avatar_url: str | None = None
    has_web_preview: bool = False
    action_text: str | None = None
    action_url: str | None = None
    is_private: bool = False  # "This channel/group is private": it exists, its content is not public
    blocked_notice: str | None = None  # the block notice's text when ``state`` is ``blocked``
    problems: tuple[str, ...] = ()


_DECISIVE_ACTIONS: dict[str, EntityType] = {
    "start bot": EntityType.BOT,
    "send message": EntityType.USER,
    "join group": EntityType.GROUP,
    "join channel": EntityType.CHANNEL,
    "view channel": EntityType.CHANNEL,
    "open channel": EntityType.CHANNEL,
    "preview channel": EntityType.CHANNEL,
    "view group": EntityType.GROUP,
    "open group": EntityType.GROUP,
}
_COUNTER_TYPES: tuple[tuple[str, EntityType], ...] = (
    ("subscribers", EntityType.CHANNEL),
    ("members", EntityType.GROUP),
    ("online", EntityType.GROUP),
    ("monthly_users", EntityType.BOT),
)
_ADDITIONAL_TYPES: tuple[tuple[str, EntityType], ...] = (
    ("invited to the channel", EntityType.CHANNEL),
    ("invited to the group", EntityType.GROUP),
    ("invited to a group", EntityType.GROUP),
    ("you can launch", EntityType.BOT),
    ("you can contact", EntityType.USER),
)
_TITLE_TYPES: tuple[tuple[str, EntityType], ...] = (
    ("telegram: launch @", EntityType.BOT),
    ("telegram: join channel", EntityType.CHANNEL),
    ("telegram: join group", EntityType.GROUP),
)
_INVALID_INVITE = re.compile(r"invite link (?:is invalid|has expired)|link (?:has )?expired", re.IGNORECASE)
#: Telegram's block notice (straight, curly or no apostrophe); must open the block it sits in
_BLOCKED_NOTICE = re.compile(
    r"^\W*this (?P<noun>channel|group|chat|bot|account|user) (?:"
    r"can['’‘`´]?t be displayed|cannot be displayed|can not be displayed"
    r"|is blocked\b|has been blocked\b|was blocked\b"
    r"|is unavailable due to\b|is not available due to\b"
    r")",
    re.IGNORECASE,
)
_NOTICE_TYPES = {"channel": EntityType.CHANNEL, "group": EntityType.GROUP, "bot": EntityType.BOT}
_PRIVATE_NOTE = re.compile(r"\bthis (?:channel|group) is private\b", re.IGNORECASE)
_COUNTER_HINT = re.compile(r"\d|\bno\s+\w+", re.IGNORECASE)
_DEFAULT_IMAGE = "telegram.org/img/t_logo"
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def _clean(text: str | None) -> str | None:
    """Collapse runs of spaces, keep line breaks (from ``<br>``), strip; empty → ``None``."""
    if text is None:
        return None
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    cleaned = "\n".join(lines).strip()
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned or None


_VISIBLE = "not(ancestor::script) and not(ancestor::style)"
_NOT_BADGE = "not(ancestor::i[contains(@class, 'verified')])"


def _text(node: Selector | None, condition: str = _VISIBLE) -> str | None:
    """Visible text of a node, ``<br>`` as a newline, markup line breaks as spaces."""
    if node is None:
        return None
    parts: list[str] = []
    for piece in node.xpath(f".//text()[{condition}] | .//br"):
        if isinstance(piece.root, str):
            parts.append(piece.root.replace("\n", " "))
        else:
            parts.append("\n")
    return _clean("".join(parts))


def _first(selector: Selector, css: str) -> Selector | None:
    found = selector.css(css)
    return found[0] if found else None


def _meta(selector: Selector, prop: str) -> str | None:
    value = selector.xpath(f"//meta[@property='{prop}' or @name='{prop}']/@content").get()
    return value.strip() if value else None


def _blocked_notice(selector: Selector) -> str | None:
    """The block notice of a blocked channel's page (its first sentence-bearing block), or None."""
    for css in (".tgme_page .tgme_page_description", ".tgme_page .tgme_page_additional"):
        for node in selector.css(css):
            text = _text(node)
            if text is not None and _BLOCKED_NOTICE.search(text):
                return text
    return None


def _classify_type(
    action_text: str | None,
    counters: dict[str, int],
    has_web_preview: bool,
    additional: str | None,
    page_title: str | None,
) -> EntityType:
    action = (action_text or "").strip().lower()
    if action in _DECISIVE_ACTIONS:
        return _DECISIVE_ACTIONS[action]
    if has_web_preview:
        return EntityType.CHANNEL  # only channels have a /s/ web preview; outranks the counter label
    for key, entity in _COUNTER_TYPES:
        if key in counters:
            return entity
    lowered = (additional or "").lower()
    for phrase, entity in _ADDITIONAL_TYPES:
        if phrase in lowered:
            return entity
    lowered_title = (page_title or "").lower()
    for prefix, entity in _TITLE_TYPES:
        if lowered_title.startswith(prefix):
            return entity
    return EntityType.UNKNOWN


def parse_profile(html: str | bytes, url: str | None = None) -> ProfilePage:
    """Parse a ``t.me/NAME`` or ``t.me/+HASH`` preview page. Never raises.

    ``url`` (the page's address, any spelling) says whether an invite or a username was asked
    for; without it the page's own ``tg://join`` / ``tg://resolve`` links decide. Problems with
    the page go to ``ProfilePage.problems``; what could be read is kept.
    """
    problems: list[str] = []
    try:
        if isinstance(html, bytes):
            html = html.decode("utf-8", errors="replace")
        selector = Selector(text=html or "<html></html>")
    except Exception as exc:  # lxml on hostile input; the page is then unreadable, not fatal
        return ProfilePage(state=PageState.UNKNOWN, problems=(f"unparseable HTML: {type(exc).__name__}",))

    asked = normalize(url) if url else None
    if url and asked is None:
        problems.append(f"url is not a Telegram username or invite link: {url!r}")

    page = _first(selector, "div.tgme_page")
    action = _first(selector, ".tgme_page_action a")
    action_text = _text(action)
    action_url = action.attrib.get("href") if action is not None else None
    # the page's own deep links: action button, avatar link, username link
    own_links = [
        link
        for href in selector.css(".tgme_page a::attr(href)").getall()
        if href.startswith("tg:") and (link := normalize(href)) is not None
    ]
    own_invite = next((link for link in own_links if link.kind is LinkKind.INVITE), None)
    own_user = next((link for link in own_links if link.kind is LinkKind.USERNAME), None)

    # the asked-for link decides; else the page's own deep links (an invite page has no tg://resolve)
    is_invite = asked.kind is LinkKind.INVITE if asked is not None else (own_invite is not None and own_user is None)
    username = asked.username if asked is not None and not is_invite else None
    invite_hash = asked.invite_hash if asked is not None and is_invite else None
    if not is_invite and own_user is not None:
        if username is not None and own_user.username != username:
            problems.append(f"page is for @{own_user.username}, asked for @{username}")
        username = username or own_user.username
    if is_invite and own_invite is not None:
        invite_hash = invite_hash or own_invite.invite_hash

    title_node = _first(selector, ".tgme_page_title")
    title = _text(title_node, f"{_VISIBLE} and {_NOT_BADGE}")
    verified = title_node is not None and bool(title_node.css("[class*=verified]"))

    page_title = _clean(selector.xpath("//title/text()").get())
    additional = _text(_first(selector, ".tgme_page_additional"))
    whole_text = " ".join(filter(None, [page_title, _text(page), additional]))

    blocked_notice = _blocked_notice(selector) if page is not None else None
    if page is None:
        state = PageState.UNKNOWN
        problems.append("no div.tgme_page: not a t.me preview page (throttled, truncated or changed)")
    elif blocked_notice is not None:
        state = PageState.BLOCKED
    elif title is not None:
        state = PageState.VALID
    elif (
        selector.css(".tgme_page_icon")
        or "noindex" in (_meta(selector, "robots") or "")
        or _INVALID_INVITE.search(whole_text)
    ):
        state = PageState.EXPIRED_INVITE if is_invite else PageState.NOT_FOUND
    else:
        state = PageState.UNKNOWN
        problems.append("preview frame without a title or a not-found mark")

    if title is None or state not in (PageState.VALID, PageState.BLOCKED):
        return ProfilePage(
            state=state,
            is_invite=is_invite,
            username=username,
            invite_hash=invite_hash,
            action_text=action_text,
            action_url=action_url,
            blocked_notice=blocked_notice,
            problems=tuple(problems),
        )

    counters_text: str | None = None
    counters: dict[str, int] = {}
    for extra in selector.css(".tgme_page_extra"):
        extra_text = _text(extra)
        if extra_text is None:
            continue
        if extra_text.startswith("@"):
            shown = normalize(extra_text)
            if shown is not None and username is None and not is_invite:
                username = shown.username
            continue
        if counters_text is None and _COUNTER_HINT.search(extra_text):
            counters_text = extra_text
            counters = parse_counters(extra_text)
            if not counters:
                problems.append(f"counters not understood: {extra_text!r}")

    description_node = _first(selector, ".tgme_page_description")
    description = _text(description_node)
    description_links = tuple(find_links("", description_node.get())) if description_node is not None else ()
    avatar_url = selector.css(".tgme_page_photo img::attr(src)").get()
    if avatar_url is None:
        og_image = _meta(selector, "og:image")
        if og_image and _DEFAULT_IMAGE not in og_image:
            avatar_url = og_image
    if avatar_url is not None and avatar_url.startswith("//"):
        avatar_url = "https:" + avatar_url

    has_web_preview = any(
        (link := normalize(href if "//" in href or not href.startswith("/") else "t.me" + href)) is not None
        and link.kind is LinkKind.USERNAME
        and "/s/" in href
        for href in selector.css(".tgme_page a::attr(href)").getall()
    )

    entity = _classify_type(action_text, counters, has_web_preview, additional, page_title)
    if entity is EntityType.UNKNOWN and blocked_notice is not None:
        notice = _BLOCKED_NOTICE.search(blocked_notice)
        entity = _NOTICE_TYPES.get(notice.group("noun").lower(), entity) if notice else entity  # "This group …"
    if state is PageState.VALID:  # a blocked page is read as it stands: a missing button is normal there
        if entity is EntityType.UNKNOWN:
            problems.append("entity type not recognised from button, counters or text")
        if action is None:
            problems.append("no action button")

    members, subscribers = counters.get("members"), counters.get("subscribers")
    if entity is EntityType.CHANNEL and subscribers is None and members is not None:
        members, subscribers = None, members  # older markup labels a channel's audience "members"

    return ProfilePage(
        state=state,
        type=entity,
        is_invite=is_invite,
        username=username,
        invite_hash=invite_hash,
        title=title,
        description=description,
        description_links=description_links,
        counters_text=counters_text,
        counters=counters,
        members=members,
        subscribers=subscribers,
        online=counters.get("online"),
        monthly_users=counters.get("monthly_users"),
        verified=verified,
        avatar_url=avatar_url,
        has_web_preview=has_web_preview,
        action_text=action_text,
        action_url=action_url,
        is_private=bool(_PRIVATE_NOTE.search(" ".join(filter(None, [additional, description])))),
        blocked_notice=blocked_notice,
        problems=tuple(problems),
    )
