"""Telegram links in any spelling → one canonical form and kind.

Why: discovery meets the same channel as ``t.me/Name``, ``https://telegram.me/s/name``,
``tg://resolve?domain=name`` and ``@name``; the links collection is keyed by the normalized link
(DESIGN §3), so every spelling must collapse to one string or the same room is queued many times.

Kinds and canonical forms::

    username   https://t.me/NAME               public channel / group / user / bot
    invite     https://t.me/+HASH              (hash keeps its case: it is case-sensitive)
    message    https://t.me/NAME/123           public post
               https://t.me/c/ID/123           post in a private channel (ID without -100)
    folder     https://t.me/addlist/SLUG       shared chat folder

Everything else Telegram links to — proxies, ``share``, ``login``, ``setlanguage``, stickers,
themes, phone numbers, invoices, boosts … — is not a room, so ``normalize`` returns ``None``.

Username rule (Telegram's, as its clients enforce it): a-z, 0-9 and ``_``; starts with a letter;
does not end with ``_``; no ``__``; 5–32 characters; compared case-insensitively (stored
lower-case). Two documented exceptions:

* 4-character names are accepted in explicit link forms (``t.me/abcd``, ``tg://resolve``,
  ``abcd.t.me``): Fragment sells 4-character collectible usernames and t.me serves them. A bare
  ``@abcd`` in free text is *not* accepted — too many false positives for too little gain.
* a few official 3–4-character inline bots (``@gif``, ``@vid``, ``@pic`` …, ``KNOWN_SHORT_BOTS``)
  are accepted in every form.

Reserved first path segments (``RESERVED``) are never usernames. Query strings and fragments are
dropped (``?single``, ``?comment=``, ``?start=``, utm tracking …); a topic link
``t.me/NAME/TOPIC/MSG`` keeps only the message, which Telegram resolves without the topic.

This module parses strings only (``html.parser`` from the standard library for hrefs): the core
does not parse pages with Scrapy or lxml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from html import unescape
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "KNOWN_SHORT_BOTS",
    "RESERVED",
    "LinkKind",
    "TgLink",
    "find_links",
    "is_valid_username",
    "normalize",
]

HOSTS = frozenset({"t.me", "telegram.me", "telegram.dog"})
SUBDOMAIN_HOST = "t.me"  # NAME.t.me

RESERVED = frozenset(
    {
        "a", "k", "z", "c", "s", "m", "i", "iv", "dl", "bg", "api", "web", "auth", "blog", "apps", "faq",
        "joinchat", "addlist", "share", "msg", "msg_url", "proxy", "socks", "login", "setlanguage",
        "addstickers", "addemoji", "addtheme", "confirmphone", "invoice", "boost", "giftcode", "contact",
        "privacy", "premium", "premium_offer", "premium_multigift", "stars", "stars_topup", "nft", "passport",
        "settings", "download", "telegram_passport", "tos", "widget", "embed", "js", "css", "img", "static",
    }
)  # fmt: skip

KNOWN_SHORT_BOTS = frozenset({"gif", "vid", "pic", "bing", "wiki", "imdb", "bold", "vote", "like"})

MIN_USERNAME = 5
MIN_USERNAME_IN_LINK = 4
MAX_USERNAME = 32
MAX_MSG_ID = 2**31 - 1
MAX_CHANNEL_ID = 10**13

_USERNAME_CHARS = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]")
_HASH = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SLUG = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class LinkKind(StrEnum):
    USERNAME = "username"
    INVITE = "invite"
    MESSAGE = "message"
    FOLDER = "folder"


@dataclass(frozen=True, slots=True)
class TgLink:
    """One Telegram link, normalized. ``canonical`` is the natural key of a link record."""

    kind: LinkKind
    canonical: str
    username: str | None = None
    invite_hash: str | None = None
    msg_id: int | None = None
    channel_id: int | None = None
    slug: str | None = None


def is_valid_username(name: str, *, in_link: bool = False) -> bool:
    """Telegram's username rule on an already lower-cased name (see the module docstring)."""
    if name in KNOWN_SHORT_BOTS:
        return True
    if name in RESERVED:
        return False
    low = MIN_USERNAME_IN_LINK if in_link else MIN_USERNAME
    if not low <= len(name) <= MAX_USERNAME:
        return False
    return _USERNAME_CHARS.fullmatch(name) is not None and "__" not in name


# --- constructors: the only places a TgLink is built, so canonical forms cannot drift -------------


def _is_digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


def _username(name: str, *, in_link: bool = True) -> TgLink | None:
    if not name.isascii():  # before lower(): "\u212a".lower() is an ASCII "k"
        return None
    name = name.lower()
    if not is_valid_username(name, in_link=in_link):
        return None
    return TgLink(LinkKind.USERNAME, f"https://t.me/{name}", username=name)


def _invite(invite_hash: str) -> TgLink | None:
    if _HASH.fullmatch(invite_hash) is None or invite_hash.isdigit():
        return None  # all digits after "+" is a phone number link, not an invite
    return TgLink(LinkKind.INVITE, f"https://t.me/+{invite_hash}", invite_hash=invite_hash)


def _number(text: str, limit: int) -> int | None:
    if not _is_digits(text):
        return None
    value = int(text)
    return value if 0 < value <= limit else None


def _public_post(name: str, msg: str) -> TgLink | None:
    user = _username(name)
    msg_id = _number(msg, MAX_MSG_ID)
    if user is None or msg_id is None:
        return None
    return TgLink(LinkKind.MESSAGE, f"{user.canonical}/{msg_id}", username=user.username, msg_id=msg_id)


def _private_post(channel: str, msg: str) -> TgLink | None:
    channel_id = _number(channel, MAX_CHANNEL_ID)
    msg_id = _number(msg, MAX_MSG_ID)
    if channel_id is None or msg_id is None:
        return None
    return TgLink(LinkKind.MESSAGE, f"https://t.me/c/{channel_id}/{msg_id}", msg_id=msg_id, channel_id=channel_id)


def _folder(slug: str) -> TgLink | None:
    if _SLUG.fullmatch(slug) is None:
        return None
    return TgLink(LinkKind.FOLDER, f"https://t.me/addlist/{slug}", slug=slug)


# --- parsers per spelling ------------------------------------------------------------------------


def _from_path(segments: list[str]) -> TgLink | None:
    """``t.me/<segments>`` (query and fragment already dropped)."""
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head.startswith("+"):
        return _invite(head[1:])
    match head.lower():
        case "joinchat":
            return _invite(rest[0]) if rest else None
        case "addlist":
            return _folder(rest[0]) if rest else None
        case "s":
            if not rest:
                return None
            if len(rest) >= 2 and _is_digits(rest[1]):
                return _public_post(rest[0], rest[1])
            return _username(rest[0])
        case "c":
            # c/ID/MSG or c/ID/TOPIC/MSG
            return _private_post(rest[0], rest[-1]) if len(rest) in (2, 3) else None
    if head.lower() in RESERVED:
        return None
    if rest and _is_digits(rest[0]):
        # NAME/MSG or NAME/TOPIC/MSG
        if len(rest) >= 2 and _is_digits(rest[1]):
            return _public_post(head, rest[1])
        return _public_post(head, rest[0])
    # NAME, NAME/s/STORY (story), NAME/APP (mini app of a bot): all point at the entity NAME
    return _username(head)


def _from_tg(url: str) -> TgLink | None:
    """``tg://resolve?domain=…``, ``tg://join?invite=…``, ``tg://privatepost?…``, ``tg://addlist?slug=…``."""
    parts = urlsplit(url)
    action = (parts.netloc or parts.path.lstrip("/")).lower()
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    match action:
        case "resolve":
            domain = query.get("domain")
            if domain is None:
                return None  # tg://resolve?phone=… is a phone number
            post = query.get("post")
            return _public_post(domain, post) if post is not None else _username(domain)
        case "join":
            invite = query.get("invite")
            return _invite(invite) if invite is not None else None
        case "privatepost":
            channel, post = query.get("channel"), query.get("post")
            return _private_post(channel, post) if channel is not None and post is not None else None
        case "addlist":
            slug = query.get("slug")
            return _folder(slug) if slug is not None else None
    return None


def _from_web(url: str) -> TgLink | None:
    """http(s) or scheme-less ``t.me`` / ``telegram.me`` / ``telegram.dog`` / ``NAME.t.me`` URLs."""
    if url.startswith("//"):
        url = "https:" + url
    elif "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    if parts.username is not None or parts.password is not None:
        return None  # t.me@evil.example: the real host is evil.example
    host = (parts.hostname or "").rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    segments = [segment for segment in parts.path.split("/") if segment]
    if host in HOSTS:
        return _from_path(segments)
    if host.endswith("." + SUBDOMAIN_HOST) and host.count(".") == 2:
        name = host.split(".", 1)[0]
        if not segments:
            return _username(name)
        if len(segments) == 1 and _is_digits(segments[0]):
            return _public_post(name, segments[0])
        return _username(name) if not _is_digits(segments[0]) else None
    return None


def normalize(text_or_url: str) -> TgLink | None:
    """One link or ``@mention`` (surrounding whitespace allowed) → ``TgLink``, or ``None``.

    Never raises: anything that is not a Telegram link to a room, post or folder is ``None``.
    """
    try:
        text = text_or_url.strip().strip("<>")
        if not text or any(char.isspace() for char in text):
            return None
        if text.startswith("@"):
            return _username(text[1:], in_link=False)
        if text[:3].lower() == "tg:":
            return _from_tg(text)
        return _from_web(text)
    except ValueError:  # urlsplit on a malformed netloc (e.g. an unbalanced "[")
        return None


# --- extraction from free text and HTML ----------------------------------------------------------

_WEB_LINK = re.compile(
    r"""(?<![\w.@/+-])
        (?:(?:https?:)?//)?
        (?:[a-z0-9_-]+\.)?
        (?:t\.me|telegram\.me|telegram\.dog)
        (?![\w-]|\.[\w-])
        (?:[/?#][^\s<>"'`\\]*)?""",
    re.IGNORECASE | re.VERBOSE,
)
_TG_LINK = re.compile(r"(?<![\w.+-])tg:(?://)?[a-z]+\?[^\s<>\"'`\\]*", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@/.+-])@([A-Za-z][A-Za-z0-9_]{2,31})(?![\w@]|\.[A-Za-z0-9])")
_TRAILING = ".,;:!?)]}»”’'\"…"


def _candidates(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for pattern in (_WEB_LINK, _TG_LINK):
        for match in pattern.finditer(text):
            found.append((match.start(), match.group(0).rstrip(_TRAILING)))
    for match in _MENTION.finditer(text):
        found.append((match.start(), match.group(0)))
    found.sort(key=lambda item: item[0])
    return found


def _links_in_text(text: str) -> list[TgLink]:
    links = []
    for _, candidate in _candidates(text):
        link = normalize(candidate)
        if link is not None:
            links.append(link)
    return links


#: one tag (name, attributes bounded in length) or one run of text; every match attempt is bounded,
#: so a page of unterminated tags costs linear time (html.parser is quadratic on such input)
_TOKEN = re.compile(r"<(/?)([a-zA-Z][\w:-]{0,40})([^<>]{0,8192})>|([^<]+)")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template"})


def _links_in_html(html: str) -> list[TgLink]:
    """Links in hrefs and in visible text, in document order (scripts and styles skipped)."""
    links: list[TgLink] = []
    skipping = 0
    for match in _TOKEN.finditer(html):
        closing, tag, attrs, text = match.groups()
        if text is not None:
            if not skipping and text.strip():
                links.extend(_links_in_text(unescape(text)))
            continue
        name = tag.lower()
        if name in _SKIP_TAGS:
            skipping = max(0, skipping - 1) if closing else skipping + (0 if attrs.rstrip().endswith("/") else 1)
            continue
        if closing or skipping:
            continue
        for href in _HREF.finditer(attrs):
            value = unescape(next(g for g in href.groups() if g is not None)).strip()
            link = normalize(value) if value else None
            if link is not None:
                links.append(link)
    return links


def find_links(text: str, html: str | None = None) -> list[TgLink]:
    """Every Telegram link and bare ``@mention`` in ``text`` then ``html`` (hrefs and visible text).

    Deduplicated by canonical form, in order of first appearance. Relative hrefs are not resolved
    (there is no base URL here); ``t.me`` pages linking to ``/s/NAME`` are the spider's business.
    """
    found = _links_in_text(text or "")
    if html:
        found.extend(_links_in_html(html))
    seen: set[str] = set()
    unique: list[TgLink] = []
    for link in found:
        if link.canonical not in seen:
            seen.add(link.canonical)
            unique.append(link)
    return unique
