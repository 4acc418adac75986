"""A synthetic invite-link aggregator ("Room Finder") and the rooms it lists, for discovery tests.

Why: the aggregator spider, its site rules and triage need a site that advertises Telegram links
the way real directories do — paginated listings, category pages repeating the same entries, tags,
descriptions with unlinked ``t.me`` text and ``@mentions``, every link spelling (``telegram.me``,
``telegram.dog``, ``/s/``, ``tg://``, ``+HASH``, ``joinchat``), junk (share/proxy links, invalid
names, other sites) — without touching the internet. Everything here is invented and neutral.

Routes (added to ``SampleSite`` before its ``/NAME`` catch-all)::

    /directory/                     listings, newest first, LISTINGS_PER_PAGE per page; ?page=N
    /directory/category/SLUG        the listings of one category (the same entries again)
    /blog/rooms.html                a page with no site rules: links inside paragraphs and a list
    /+HASH, /joinchat/HASH          invite preview pages (valid group, valid channel, expired)
    /NAME                           (via ``room_page``) preview pages of the extra rooms: groups, a bot

``EXPECTED`` says, per canonical link, what the rules should find; tests compare against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spiders.sample_site.render import _head, _page_shell, esc, spaced

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web

LISTINGS_PER_PAGE = 5


@dataclass(frozen=True)
class Listing:
    title: str
    description: str  # may hold an unlinked t.me link or @mention (plain text, escaped when rendered)
    category: str  # slug
    tags: tuple[str, ...]
    href: str  # the join link as the site writes it
    canonical: str | None  # what the normalizer must make of href; None = junk, must be ignored


CATEGORIES = {"news": "News", "community": "Community", "reports": "Reports", "tools": "Tools"}

LISTINGS: tuple[Listing, ...] = (
    Listing("Daily Brief (sample)", "Invented local news, updated daily.", "news", ("news", "english"),
            "https://t.me/Daily_Brief", "https://t.me/daily_brief"),
    Listing("코리아 나우 (샘플)", "테스트용 가상 뉴스 채널입니다. 자매 채널: @quiet_room", "news", ("뉴스", "한국어"),
            "http://telegram.me/s/korea_now?utm_source=roomfinder", "https://t.me/korea_now"),
    Listing("Study Circle (sample group)", "스터디 모임: 매주 토요일 온라인 모임.", "community", ("study", "group"),
            "https://telegram.dog/study_circle_kr", "https://t.me/study_circle_kr"),
    Listing("AI 합성 사진 제보방 (샘플)", "딥페이크 합성 피해 제보 안내. 지인 사진 유출 신고 방법을 알려 드립니다.",
            "reports", ("합성", "제보"), "https://t.me/+AbCdSampleInvite01", "https://t.me/+AbCdSampleInvite01"),
    Listing("Deepfake Watch Reports (sample)",
            "Reports about deepfake and face swap leak sites. Mirror: t.me/city_hobby_group",
            "reports", ("deepfake", "reports"), "https://t.me/joinchat/SampleChanInvite02",
            "https://t.me/+SampleChanInvite02"),
    Listing("Old Room (sample)", "This invite no longer works.", "community", ("archive",),
            "tg://join?invite=ExpiredSample0003", "https://t.me/+ExpiredSample0003"),
    Listing("Vanished Room (sample)", "The owner deleted this username.", "community", ("archive",),
            "https://t.me/gone_room_2024", "https://t.me/gone_room_2024"),
    Listing("Helper Bot (sample)", "A bot that answers directory questions.", "tools", ("bot",),
            "tg://resolve?domain=room_finder_bot", "https://t.me/room_finder_bot"),
    Listing("Daily Brief — post (sample)", "A single post of a listed channel.", "news", ("news",),
            "https://t.me/daily_brief/12?single", "https://t.me/daily_brief"),
    Listing("Share this directory", "Junk: a share link is not a room.", "tools", ("junk",),
            "https://t.me/share/url?url=https%3A%2F%2Fexample.org", None),
    Listing("Proxy list", "Junk: a proxy is not a room.", "tools", ("junk",),
            "https://t.me/proxy?server=proxy.example.org&port=443&secret=00", None),
    Listing("Too short", "Junk: not a valid username.", "tools", ("junk",), "https://t.me/ab", None),
)  # fmt: skip

#: links the *rules* must find: canonical → listing titles that show it (context), unlinked text included
EXPECTED_BY_RULES: dict[str, set[str]] = {}
for _listing in LISTINGS:
    if _listing.canonical is not None:
        EXPECTED_BY_RULES.setdefault(_listing.canonical, set()).add(_listing.title)
EXPECTED_BY_RULES.setdefault("https://t.me/quiet_room", set()).add("코리아 나우 (샘플)")  # @mention in a description
EXPECTED_BY_RULES.setdefault("https://t.me/city_hobby_group", set()).add("Deepfake Watch Reports (sample)")

#: links outside the listings (footer, sidebar): the rules skip them, the generic rule takes them
FOOTER_LINKS = {"https://t.me/room_finder_news": "Follow Room Finder news: https://t.me/room_finder_news"}


@dataclass(frozen=True)
class Room:
    """A room served at ``/NAME`` or ``/+HASH`` that is not one of the world's channels."""

    key: str  # username (lower-case) or "+HASH"
    title: str
    description: str
    kind: str  # group | channel | bot
    members: int = 0
    online: int = 0
    expired: bool = False


ROOMS: dict[str, Room] = {
    room.key: room
    for room in (
        Room("study_circle_kr", "Study Circle (sample group)", "스터디 모임 테스트 그룹입니다.", "group", 1234, 56),
        Room("city_hobby_group", "City Hobby Group (sample)", "Weekend hobbies in the city.", "group", 980, 12),
        Room("room_finder_bot", "Room Finder Bot (sample)", "Answers questions about the directory.", "bot"),
        Room("+AbCdSampleInvite01", "AI 합성 사진 제보방 (샘플)", "", "group", 321, 9),
        Room("+SampleChanInvite02", "Deepfake Watch Reports (sample)", "", "channel", 4567),
        Room("+ExpiredSample0003", "", "", "group", expired=True),
    )
}

BLOG_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Community links we like (sample blog)</title></head>
<body>
  <header><nav><a href="/">home</a> · <a href="https://example.org/about">about</a></nav></header>
  <main>
    <h1>Community links we like</h1>
    <p>For local news we read <a href="https://t.me/daily_brief">the Daily Brief channel</a> every morning.</p>
    <div class="card"><h3>Study group</h3>
      <span>Join the weekly study group at t.me/study_circle_kr — everyone welcome.</span></div>
    <ul>
      <li>Reports room (invite): <a href="https://t.me/+AbCdSampleInvite01">join</a></li>
      <li>Not Telegram: <a href="https://example.org/rooms">example.org rooms</a></li>
      <li>Junk: <a href="https://t.me/share/url?url=x">share</a></li>
    </ul>
  </main>
  <footer><p>Contact us on <a href="mailto:editor@example.org">email</a>.</p></footer>
</body></html>
"""

#: what the generic rule must find on the blog page: canonical → a phrase of its nearest block's text
EXPECTED_GENERIC = {
    "https://t.me/daily_brief": "For local news we read the Daily Brief channel every morning.",
    "https://t.me/study_circle_kr": "Join the weekly study group",
    "https://t.me/+AbCdSampleInvite01": "Reports room (invite)",
}


def _listing_html(item: Listing) -> str:
    tags = "".join(f"<li>{esc(tag)}</li>" for tag in item.tags)
    return (
        '      <article class="listing">\n'
        f'        <h2 class="listing-title">{esc(item.title)}</h2>\n'
        f'        <span class="listing-category">{esc(CATEGORIES[item.category])}</span>\n'
        f'        <p class="listing-desc">{esc(item.description)}</p>\n'
        f'        <ul class="listing-tags">{tags}</ul>\n'
        f'        <a class="listing-join" href="{esc(item.href)}" rel="nofollow">Join</a>\n'
        "      </article>\n"
    )


def render_directory(items: list[Listing], *, heading: str, page: int, pages: int, base_path: str) -> str:
    nav = "".join(f'<a href="/directory/category/{slug}">{esc(name)}</a> ' for slug, name in CATEGORIES.items())
    pager = ""
    if page > 1:
        pager += f'<a class="prev" href="{base_path}?page={page - 1}">Previous</a> '
    if page < pages:
        pager += f'<a class="next" rel="next" href="{base_path}?page={page + 1}">Next</a>'
    body = "".join(_listing_html(item) for item in items)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Room Finder (sample aggregator)</title></head>\n'
        "<body>\n  <header><h1>Room Finder</h1>\n"
        f'    <nav class="categories">{nav}</nav>\n'
        '    <a class="share" href="https://t.me/share/url?url=https%3A%2F%2Froomfinder.example">Share</a>\n'
        "  </header>\n"
        f'  <main>\n    <h2 class="heading">{esc(heading)} — page {page} of {pages}</h2>\n{body}'
        f'    <nav class="pagination">{pager}</nav>\n  </main>\n'
        '  <footer><p class="follow">Follow Room Finder news: '
        '<a href="https://t.me/room_finder_news">https://t.me/room_finder_news</a></p>'
        '<p><a href="https://example.org/privacy">privacy</a> · <a href="https://telegram.org/">Telegram</a></p>'
        "</footer>\n</body></html>\n"
    )


def render_room(room: Room, base: str) -> str:
    """t.me's preview markup for an extra room (the same shapes ``parse_profile`` reads)."""
    is_invite = room.key.startswith("+")
    deep = f"tg://join?invite={room.key[1:]}" if is_invite else f"tg://resolve?domain={room.key}"
    noun = {"group": "Group", "channel": "Channel", "bot": "Bot"}[room.kind]
    if room.expired:
        head = _head(f"Telegram: Join {noun}", f"Telegram: Join {noun}", "", "/img/t_logo_2x.png",
                     '    <meta name="robots" content="noindex, nofollow">\n')  # fmt: skip
        inner = (
            f'<div class="tgme_page_icon"><i class="tgme_icon_{room.kind}"></i></div>\n'
            f'<div class="tgme_page_action"><a class="tgme_action_button_new" href="{deep}">Join {noun}</a></div>'
        )
        return _page_shell(head, inner)
    avatar = f"{base}/media/file/room-{room.key.lstrip('+').lower()}.jpg"
    if room.kind == "bot":
        extra, action = "", "Start Bot"
    elif room.kind == "channel":
        extra, action = f"{spaced(room.members)} subscribers", "Join Channel" if is_invite else "View in Telegram"
    else:
        extra = f"{spaced(room.members)} members, {spaced(room.online)} online"
        action = "Join Group" if is_invite else "View in Telegram"
    additional = (
        f"You are invited to the {room.kind} <strong>{esc(room.title)}</strong>."
        if is_invite
        else f"If you have <strong>Telegram</strong>, you can contact <strong>{esc(room.title)}</strong> right away."
    )
    description = ""
    if room.description:
        description = f'<div class="tgme_page_description" dir="auto">{esc(room.description)}</div>\n'
    page_title = f"Telegram: Join {noun}" if is_invite else f"Telegram: View @{room.key}"
    head = _head(page_title, room.title, room.description, avatar)
    inner = (
        f'<div class="tgme_page_photo"><a href="{deep}"><img class="tgme_page_photo_image" src="{avatar}"></a></div>\n'
        f'<div class="tgme_page_title" dir="auto"><span dir="auto">{esc(room.title)}</span></div>\n'
        + (f'<div class="tgme_page_extra">@{room.key}</div>\n' if not is_invite else "")
        + (f'<div class="tgme_page_extra">{extra}</div>\n' if extra else "")
        + description
        + f'<div class="tgme_page_action"><a class="tgme_action_button_new shine" href="{deep}">{action}</a></div>\n'
        f'<div class="tgme_page_additional">{additional}</div>'
    )
    return _page_shell(head, inner)


def room_page(key: str, base: str) -> str | None:
    """The page of an extra room (``key`` = username or ``+HASH``), or None when there is none."""
    room = ROOMS.get(key if key.startswith("+") else key.lower())
    return render_room(room, base) if room is not None else None


def _pages(items: list[Listing]) -> int:
    return max(1, -(-len(items) // LISTINGS_PER_PAGE))


def _page_arg(request: web.Request) -> int:
    value = request.query.get("page", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def add_routes(app: web.Application, html: Callable[[str], web.Response]) -> None:
    """Register the aggregator's routes (call before the site's ``/{name}`` catch-all)."""
    from aiohttp import web

    async def directory(request: web.Request) -> web.StreamResponse:
        items = list(LISTINGS)
        return _paged(request, items, "All rooms", "/directory/")

    async def category(request: web.Request) -> web.StreamResponse:
        slug = request.match_info["slug"]
        if slug not in CATEGORIES:
            raise web.HTTPNotFound()
        items = [item for item in LISTINGS if item.category == slug]
        return _paged(request, items, CATEGORIES[slug], f"/directory/category/{slug}")

    def _paged(request: web.Request, items: list[Listing], heading: str, path: str) -> web.StreamResponse:
        page, pages = _page_arg(request), _pages(items)
        if page > pages:
            raise web.HTTPNotFound()
        chunk = items[(page - 1) * LISTINGS_PER_PAGE : page * LISTINGS_PER_PAGE]
        return html(render_directory(chunk, heading=heading, page=page, pages=pages, base_path=path))

    async def blog(request: web.Request) -> web.StreamResponse:
        return html(BLOG_HTML)

    async def invite(request: web.Request) -> web.StreamResponse:
        key = "+" + request.match_info["hash"]
        page = room_page(key, str(request.url.origin()))
        if page is None:  # t.me answers an unknown hash with the expired-invite page
            page = render_room(Room(key, "", "", "group", expired=True), str(request.url.origin()))
        return html(page)

    app.router.add_get("/directory/", directory)
    app.router.add_get("/directory/category/{slug}", category)
    app.router.add_get("/blog/rooms.html", blog)
    app.router.add_get(r"/+{hash:[A-Za-z0-9_-]+}", invite)
    app.router.add_get(r"/joinchat/{hash:[A-Za-z0-9_-]+}", invite)
