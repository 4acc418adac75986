"""The offline sample site: its world is deterministic, its pages carry exactly that world, its faults fire.

Every test talks to the real aiohttp server over loopback with a real ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import av
import lxml.html
import pytest
from parsel import Selector
from PIL import Image

from spiders.sample_site import ChannelKind, FaultKind, MediaKind, SampleSite, World, build_world, iter_media
from spiders.sample_site.render import compact, render_channel_page, render_not_found, render_profile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture
async def site(world: World) -> AsyncIterator[SampleSite]:
    async with SampleSite.serve(world) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as r:
        assert r.status == 200, url
        return await r.text()


def message_text(node: lxml.html.HtmlElement) -> str:
    """Plain text of a ``tgme_widget_message_text`` node, ``<br/>`` as newline."""
    for br in node.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return node.text_content()


async def walk_preview(http: aiohttp.ClientSession, site: SampleSite, name: str) -> list[Selector]:
    """Follow ``data-before`` links from the newest page to the oldest; return each page."""
    pages = []
    url: str | None = site.url(f"/s/{name}")
    while url is not None:
        sel = Selector(text=await get_text(http, url))
        pages.append(sel)
        href = sel.css("a.tme_messages_more[data-before]::attr(href)").get()
        url = site.url(href) if href else None
        assert len(pages) < 100, "pagination does not end"
    return pages


def post_ids(pages: list[Selector]) -> list[int]:
    """Message ids from ``data-post`` attributes, page by page."""
    return [
        int(p.split("/")[1]) for page in pages for p in page.css("div.tgme_widget_message::attr(data-post)").getall()
    ]


# -- the world -------------------------------------------------------------------------------------


def test_same_seed_same_world_other_seed_other_world() -> None:
    assert build_world(seed=5) == build_world(seed=5)
    assert build_world(seed=5, generation=2) == build_world(seed=5, generation=2)
    a, b = build_world(seed=5), build_world(seed=6)
    assert a.channels["daily_brief"].messages != b.channels["daily_brief"].messages


def test_big_channel_size_is_a_parameter_and_leaves_the_others_alone() -> None:
    small, large = build_world(big_size=50), build_world(big_size=900)
    assert len(small.channels["big_feed"].messages) == 50
    assert len(large.channels["big_feed"].messages) == 900
    assert small.channels["korea_now"] == large.channels["korea_now"]


def test_world_covers_every_kind_the_preview_shows(world: World) -> None:
    lab = world.channels["media_lab"]
    kinds = {k for m in lab.messages for k in m.media_kinds}
    assert kinds == set(MediaKind)
    assert any(m.poll for m in lab.messages)
    assert any(m.location for m in lab.messages)
    assert any(m.link_preview and m.link_preview.image_id for m in lab.messages)
    assert any(m.service for m in lab.messages)
    assert any(m.via_bot for m in lab.messages)
    assert any(m.reply_to for m in lab.messages)
    assert any(m.forwarded_from and m.forwarded_from.username for m in lab.messages)
    assert any(m.forwarded_from and not m.forwarded_from.username for m in lab.messages)
    assert any(x.too_big for m in lab.messages for x in m.media)
    albums = [m for m in lab.messages if m.grouped]
    assert albums and all(len(m.covered_ids) == len(m.media) > 1 for m in albums)
    assert {MediaKind.PHOTO, MediaKind.VIDEO} <= {x.kind for m in albums for x in m.media}

    korean = world.channels["korea_now"]
    assert any("\uac00" <= c <= "\ud7a3" for m in korean.messages for c in m.text.plain)
    news = world.channels["daily_brief"]
    assert any(m.text.mentions for m in news.messages) and any(m.text.hashtags for m in news.messages)
    assert any(m.text.links for m in news.messages) and any(m.edited for m in news.messages)
    ids = [i for m in news.messages for i in m.covered_ids]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert set(range(1, ids[-1] + 1)) - set(ids), "some ids should be missing (deleted messages)"
    assert world.channels["quiet_room"].kind is ChannelKind.NO_PREVIEW
    assert world.channels["closed_club"].kind is ChannelKind.PRIVATE
    assert world.channel("no_such_channel") is None


def test_generation_two_differs_exactly_as_declared(world: World) -> None:
    gen2 = build_world(generation=2)
    for name, old in world.channels.items():
        new, change = gen2.channels[name], gen2.changes[name]
        old_by_id = {m.id: m for m in old.messages}
        new_by_id = {m.id: m for m in new.messages}
        assert set(new_by_id) == (set(old_by_id) - set(change.deleted)) | set(change.added)
        assert not set(change.added) & set(old_by_id)
        if old.messages:
            assert len(change.edited) == 3 and len(change.deleted) == 2 and len(change.added) >= 3
            assert min(change.added) > max(i for m in old.messages for i in m.covered_ids)
        for msg_id in set(old_by_id) & set(new_by_id):
            before, after = old_by_id[msg_id], new_by_id[msg_id]
            if msg_id in change.edited:
                assert after.edited and after.text.plain != before.text.plain
                assert after.text.plain.startswith(before.text.plain)
                assert (after.date, after.views, after.media) == (before.date, before.views, before.media)
            else:
                assert after == before


# -- pages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["daily_brief", "korea_now", "media_lab", "big_feed"])
async def test_pagination_covers_every_post_once(
    world: World, site: SampleSite, http: aiohttp.ClientSession, name: str
) -> None:
    ch = world.channels[name]
    pages = await walk_preview(http, site, name)
    seen = post_ids(pages)
    assert sorted(seen) == list(ch.ids)
    assert len(seen) == len(set(seen))
    assert len(pages) == len(ch.pages())
    assert all(len(p.css("div.tgme_widget_message")) <= world.page_size for p in pages)
    assert pages[0].css("a.tme_messages_more[data-after]").get() is None
    assert all(p.css("a.tme_messages_more[data-after]").get() for p in pages[1:])
    # ?after= walks back up: from the oldest page's data-after to the newest
    after = pages[-1].css("a.tme_messages_more[data-after]::attr(data-after)").get()
    if after is not None:
        sel = Selector(text=await get_text(http, site.url(f"/s/{name}?after={after}")))
        first = sel.css("div.tgme_widget_message::attr(data-post)").get()
        assert first is not None and int(first.split("/")[1]) > int(after)


async def test_messages_carry_the_ground_truth(world: World, site: SampleSite, http: aiohttp.ClientSession) -> None:
    for name in ("daily_brief", "korea_now", "media_lab"):
        ch = world.channels[name]
        for page in await walk_preview(http, site, name):
            doc = lxml.html.fromstring(page.get())
            for node in doc.cssselect("div.tgme_widget_message"):
                msg = ch.message(int(node.get("data-post").split("/")[1]))
                assert msg is not None
                texts = node.cssselect(".js-message_text")
                assert (message_text(texts[0]) if texts else "") == msg.text.plain
                assert node.cssselect("time")[-1].get("datetime") == msg.date.isoformat()
                views = node.cssselect(".tgme_widget_message_views")
                assert (views[0].text if views else None) == (compact(msg.views) if msg.views is not None else None)
                meta = node.cssselect(".tgme_widget_message_meta")[0].text_content()
                assert ("edited" in meta) == msg.edited
                photos = node.cssselect(".tgme_widget_message_photo_wrap")
                assert len(photos) == msg.media_kinds.count(MediaKind.PHOTO)
                assert bool(node.cssselect(".tgme_widget_message_reply")) == (msg.reply_to is not None)
                assert bool(node.cssselect(".tgme_widget_message_forwarded_from")) == (msg.forwarded_from is not None)
                assert bool(node.cssselect(".tgme_widget_message_via_bot")) == (msg.via_bot is not None)
                assert bool(node.cssselect(".tgme_widget_message_poll")) == (msg.poll is not None)
                assert bool(node.cssselect(".tgme_widget_message_link_preview")) == (msg.link_preview is not None)
                assert ("service_message" in node.get("class")) == (msg.service is not None)


async def test_channel_header(world: World, site: SampleSite, http: aiohttp.ClientSession) -> None:
    ch = world.channels["daily_brief"]
    sel = Selector(text=await get_text(http, site.url("/s/daily_brief")))
    info = sel.css(".tgme_channel_info")
    assert info.css(".tgme_channel_info_header_title span::text").get() == ch.title
    assert info.css(".tgme_channel_info_header_username a::text").get() == "@daily_brief"
    assert info.css(".verified-icon").get() is not None
    assert info.css(".tgme_channel_info_description::text").get() == ch.description
    counters = dict(
        zip(info.css(".counter_type::text").getall(), info.css(".counter_value::text").getall(), strict=True)
    )
    assert counters == {k: compact(v) for k, v in ch.counters.items()}


async def test_channels_without_preview_redirect_to_their_profile(
    world: World, site: SampleSite, http: aiohttp.ClientSession
) -> None:
    for name in ("quiet_room", "closed_club", "no_such_channel", "anything_else"):
        async with http.get(site.url(f"/s/{name}"), allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == f"/{name}"
    quiet = Selector(text=await get_text(http, site.url("/s/quiet_room")))  # redirect followed
    assert quiet.css(".tgme_page_title span::text").get() == world.channels["quiet_room"].title
    assert quiet.css(".tgme_page_context_link").get() is None
    assert quiet.css(".tgme_channel_info").get() is None
    private = Selector(text=await get_text(http, site.url("/closed_club")))
    assert "private" in (private.css(".tgme_page_additional").get() or "")
    missing = Selector(text=await get_text(http, site.url("/no_such_channel")))
    assert missing.css(".tgme_page_title").get() is None and missing.css(".tgme_icon_user").get() is not None
    daily = Selector(text=await get_text(http, site.url("/daily_brief")))
    assert daily.css(".tgme_page_context_link::attr(href)").get() == "/s/daily_brief"
    assert (daily.css(".tgme_page_extra::text").get() or "").endswith("subscribers")


async def test_single_post_page(world: World, site: SampleSite, http: aiohttp.ClientSession) -> None:
    msg = world.channels["media_lab"].messages[-1]
    sel = Selector(text=await get_text(http, site.url(f"/media_lab/{msg.id}")))
    assert sel.css("div.tgme_widget_message::attr(data-post)").get() == f"media_lab/{msg.id}"
    gone = Selector(text=await get_text(http, site.url("/media_lab/99999")))
    assert gone.css(".tgme_widget_message_error::text").get() == "Post not found"


async def test_next_generation_on_the_same_address(world: World, site: SampleSite, http: aiohttp.ClientSession) -> None:
    gen2 = build_world(generation=2)
    site.set_world(gen2)
    pages = await walk_preview(http, site, "korea_now")
    seen = set(post_ids(pages))
    change = gen2.changes["korea_now"]
    assert set(change.added) <= seen and not set(change.deleted) & seen


# -- faults ----------------------------------------------------------------------------------------


async def test_rate_limit_carries_retry_after(site: SampleSite, http: aiohttp.ClientSession) -> None:
    site.faults.rate_limit("/s/daily_brief", times=2, retry_after=3)
    statuses = []
    for _ in range(3):
        async with http.get(site.url("/s/daily_brief")) as r:
            statuses.append((r.status, r.headers.get("Retry-After")))
    assert statuses == [(429, "3"), (429, "3"), (200, None)]
    assert [h.fault for h in site.hits_for("/s/daily_brief")] == [FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT, None]


async def test_server_errors_then_recovery_and_query_patterns(site: SampleSite, http: aiohttp.ClientSession) -> None:
    site.faults.server_error("/s/daily_brief?before=*", times=1, status=502)
    async with http.get(site.url("/s/daily_brief")) as r:
        assert r.status == 200  # the pattern names a query, the bare path does not match
    async with http.get(site.url("/s/daily_brief?before=40")) as r:
        assert r.status == 502
    async with http.get(site.url("/s/daily_brief?before=40")) as r:
        assert r.status == 200


async def test_slow_answers_outlast_a_short_client_timeout(site: SampleSite, http: aiohttp.ClientSession) -> None:
    site.faults.slow("/s/korea_now", seconds=0.6, times=1)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(site.url("/s/korea_now"), timeout=aiohttp.ClientTimeout(total=0.1)) as r:
            await r.read()
    async with http.get(site.url("/s/korea_now")) as r:
        assert r.status == 200


async def test_truncated_page_ends_inside_a_message(site: SampleSite, http: aiohttp.ClientSession) -> None:
    full = await get_text(http, site.url("/s/daily_brief"))
    site.faults.truncate("/s/daily_brief")
    cut = await get_text(http, site.url("/s/daily_brief"))
    assert len(cut) < len(full) and full.startswith(cut)
    assert "</html>" not in cut and not cut.rstrip().endswith("</div></div>")
    wraps = cut.count('<div class="tgme_widget_message_wrap')
    assert 0 < wraps < full.count('<div class="tgme_widget_message_wrap')
    assert cut.count("tgme_widget_message_footer") == wraps - 1  # the last message lost its footer


async def test_cut_connection_and_dropped_connection(site: SampleSite, http: aiohttp.ClientSession) -> None:
    site.faults.cut("/s/media_lab")
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(site.url("/s/media_lab")) as r:
            await r.read()
    site.faults.drop("/s/media_lab", times=None)  # forever: aiohttp retries once on a reused connection
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        async with http.get(site.url("/s/media_lab")) as r:
            await r.read()
    assert site.hits[-1].fault is FaultKind.DROP and site.hits[-1].status == 0
    site.faults.clear()
    async with http.get(site.url("/s/media_lab")) as r:
        assert r.status == 200


# -- media -----------------------------------------------------------------------------------------


async def test_media_bytes_decode(world: World, site: SampleSite, http: aiohttp.ClientSession) -> None:
    page = Selector(text=await get_text(http, site.url("/s/media_lab")))
    older = Selector(text=await get_text(http, site.url(f"/s/media_lab?before={world.channels['media_lab'].ids[-20]}")))
    urls = page.css("video::attr(src), audio::attr(src), source::attr(srcset)").getall()
    urls += older.css("video::attr(src), audio::attr(src), source::attr(srcset)").getall()
    seen: set[str] = set()
    for url in urls:
        ext = url.rsplit(".", 1)[1]
        if ext in seen:
            continue
        seen.add(ext)
        async with http.get(url) as r:
            assert r.status == 200
            data = await r.read()
        if ext == "mp4":
            with av.open(io.BytesIO(data), mode="r") as c:
                frames = list(c.decode(video=0))
                assert frames and c.streams.video[0].codec_context.name == "h264"
        elif ext == "ogg":
            with av.open(io.BytesIO(data), mode="r") as c:
                assert c.streams.audio[0].codec_context.name == "opus"
                assert sum(f.samples for f in c.decode(audio=0)) >= 48000
        elif ext == "tgs":
            assert json.loads(gzip.decompress(data))["layers"]
        elif ext == "webp":
            assert Image.open(io.BytesIO(data)).format == "WEBP"
    assert seen >= {"mp4", "ogg", "tgs", "webp"}

    photo = next(m for _, _, m in iter_media(world) if m.kind is MediaKind.PHOTO)
    async with http.get(site.url(f"/media/file/{photo.media_id}.jpg")) as r:
        first = await r.read()
    img = Image.open(io.BytesIO(first))
    assert (img.format, img.size) == ("JPEG", (photo.width, photo.height))
    async with http.get(site.url(f"/media/file/{photo.media_id}.jpg")) as r:
        assert await r.read() == first  # deterministic
    async with http.get(site.url("/media/file/nope.jpg")) as r:
        assert r.status == 404


# -- against the real pages ------------------------------------------------------------------------

#: classes the sample uses that the corpus happens not to contain (known from other t.me parsers)
NOT_IN_CORPUS = {
    "tgme_widget_message_location_wrap",
    "tgme_widget_message_location",
    "tgme_widget_message_location_point",
    "tgme_widget_message_via_bot",
}


@pytest.mark.corpus
def test_markup_uses_only_class_names_of_real_pages(world: World, corpus_dir: Path) -> None:
    def classes(html: str) -> set[str]:
        return {c for m in re.finditer(r'class="([^"]*)"', html) for c in m.group(1).split() if not c.isdigit()}

    ours = ""
    for ch in world.channels.values():
        for page in ch.pages():
            ours += render_channel_page(world, ch, page, "http://127.0.0.1:1", before=1, after=1)
        ours += render_profile(ch, "http://127.0.0.1:1")
    ours += render_not_found("no_such_channel")
    real = "".join(p.read_text() for p in corpus_dir.glob("*/*.html"))
    assert classes(ours) - classes(real) == NOT_IN_CORPUS


# -- by hand ---------------------------------------------------------------------------------------


def test_command_line_serves_and_prints_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spiders.sample_site", "--port", "0", "--generation", "2", "--big-size", "30"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")

        async def fetch() -> str:
            async with aiohttp.ClientSession() as s, s.get(base + "/") as r:
                return await r.text()

        assert "generation 2" in asyncio.run(fetch())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- takedown re-checks: a channel blocked, a message removed -------------------------------------


def test_world_helpers_return_new_worlds_and_leave_the_old_one_alone(world: World) -> None:
    daily = world.channels["daily_brief"]
    gone_id = daily.ids[len(daily.ids) // 2]
    without = world.without_message("Daily_Brief", gone_id)
    assert gone_id not in without.channels["daily_brief"].ids
    assert set(without.channels["daily_brief"].ids) == set(daily.ids) - {gone_id}
    assert gone_id in world.channels["daily_brief"].ids, "the original world is unchanged"
    blocked = world.with_kind("daily_brief", ChannelKind.BLOCKED)
    assert (
        blocked.channels["daily_brief"].kind is ChannelKind.BLOCKED and not blocked.channels["daily_brief"].has_preview
    )
    assert world.channels["daily_brief"].kind is ChannelKind.PUBLIC
    assert blocked.channels["korea_now"] is world.channels["korea_now"]
    with pytest.raises(KeyError):
        world.without_message("daily_brief", 999_999)
    with pytest.raises(KeyError):
        world.with_kind("no_such_channel", ChannelKind.BLOCKED)


async def test_blocked_channel_and_removed_message_on_the_same_address(
    world: World, site: SampleSite, http: aiohttp.ClientSession
) -> None:
    korea = world.channels["korea_now"]
    msg_id = korea.messages[-1].id
    site.set_world(world.without_message("korea_now", msg_id))
    gone = Selector(text=await get_text(http, site.url(f"/korea_now/{msg_id}")))
    assert gone.css(".tgme_widget_message_error::text").get() == "Post not found"
    assert msg_id not in post_ids(await walk_preview(http, site, "korea_now"))

    site.set_world(world.with_kind("korea_now", ChannelKind.BLOCKED))
    async with http.get(site.url("/s/korea_now"), allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "/korea_now"
    profile = Selector(text=await get_text(http, site.url("/korea_now")))
    assert profile.css(".tgme_page_title span::text").get() == korea.title
    assert profile.css(".tgme_page_description::text").get() == (
        "This channel can't be displayed because it violated Telegram's Terms of Service."
    )
    assert profile.css(".tgme_page_context_link").get() is None
    post = Selector(text=await get_text(http, site.url(f"/korea_now/{korea.messages[0].id}")))
    assert post.css("div.tgme_widget_message").get() is None, "a blocked channel shows no post"
    assert "can't be displayed" in (post.css(".tgme_page_description::text").get() or "")


def test_command_line_world_options(world: World) -> None:
    from spiders.sample_site.__main__ import parse_args, world_of

    msg_id = world.channels["media_lab"].ids[-1]
    args = parse_args(["--blocked", "daily_brief", "--remove", f"media_lab/{msg_id}"])
    served = world_of(args)
    assert served.channels["daily_brief"].kind is ChannelKind.BLOCKED
    assert msg_id not in served.channels["media_lab"].ids
    with pytest.raises(SystemExit):
        world_of(parse_args(["--remove", "media_lab"]))


# speed (bench/crawl.py): a page is bisected out of the sorted ids instead of filtering every post
async def test_pages_before_and_after_any_id_hold_the_posts_next_to_it(
    world: World, site: SampleSite, http: aiohttp.ClientSession
) -> None:
    """``?before=N`` serves the ``page_size`` posts just below N, ``?after=N`` those just above, for any
    N: a post's id, an id inside an album or a gap, and ids beyond either end."""
    ch = world.channels["media_lab"]
    size = world.page_size
    probes = sorted({0, 1, *ch.ids[::7], *(i + 1 for i in ch.ids[::5]), ch.ids[-1], ch.ids[-1] + 5})
    for n in probes:
        for arg, want in (
            ("before", [i for i in ch.ids if i < n][-size:]),
            ("after", [i for i in ch.ids if i > n][:size]),
        ):
            sel = Selector(text=await get_text(http, site.url(f"/s/media_lab?{arg}={n}")))
            got = [int(p.split("/")[1]) for p in sel.css("div.tgme_widget_message::attr(data-post)").getall()]
            assert got == want, (arg, n)
    assert world.channels["media_lab"].counters == ch.counters  # counted once, handed out as a copy
    ch.counters["subscribers"] = -1
    assert ch.counters["subscribers"] != -1
