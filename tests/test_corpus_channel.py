"""The channel-page parser against real t.me pages nobody here wrote (``../shared/corpus``).

Every expectation is counted independently from the markup with plain regular expressions, so a
parser bug cannot hide behind the same bug in the test.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from foundation.models import ChannelState, MediaKind
from spiders.parsing.channel import ChannelPage, parse_page

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
pytestmark = pytest.mark.corpus

_PAGES = sorted([*CORPUS.glob("channel/*.html"), *CORPUS.glob("post/*.html")]) if CORPUS.is_dir() else []

_OPEN_TAG = re.compile(r"<div\b[^>]*>", re.S)
_DATA_POST = re.compile(r'data-post="[^"/]+/(\d+)"')
_MESSAGE_CLASS = re.compile(r'class="tgme_widget_message(?:\s[^"]*)?"')
_MEDIA = {
    MediaKind.PHOTO: re.compile(r'class="tgme_widget_message_photo_wrap\b'),
    "video": re.compile(r'class="tgme_widget_message_video_player\b'),
    MediaKind.ROUND_VIDEO: re.compile(r'class="tgme_widget_message_roundvideo_player\b'),
    MediaKind.VOICE: re.compile(r'class="tgme_widget_message_voice_player\b'),
    "document": re.compile(r'class="tgme_widget_message_document_wrap\b'),
    MediaKind.STICKER: re.compile(r'class="tgme_widget_message_sticker_wrap\b'),
}
_DATES = re.compile(r'class="tgme_widget_message_date"[^>]*>\s*<time\s+datetime="([^"]+)"', re.S)


def _require_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (it lives beside the repository)")


def _markup_ids(html: str) -> list[int]:
    ids = []
    for tag in _OPEN_TAG.findall(html):
        post = _DATA_POST.search(tag)
        if post and _MESSAGE_CLASS.search(tag):
            ids.append(int(post.group(1)))
    return ids


def _parse(path: Path) -> tuple[str, ChannelPage]:
    html = path.read_text(encoding="utf-8")
    return html, parse_page(html, f"https://t.me/s/{path.stem}")


def test_corpus_is_present() -> None:
    _require_corpus()
    assert len(_PAGES) >= 19


@pytest.mark.parametrize("path", _PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_message_once_with_its_date_and_media(path: Path, record_property: object) -> None:
    html, page = _parse(path)
    markup_ids = _markup_ids(html)
    parsed_ids = page.ids
    # every data-post in the markup is found exactly once
    assert sorted(parsed_ids) == sorted(set(markup_ids))
    assert len(parsed_ids) == len(set(parsed_ids))
    # every datetime parsed, and it is the one the markup shows
    dates = sorted(_DATES.findall(html))
    assert all(m.date is not None and m.date.tzinfo is not None for m in page.messages)
    assert sorted(m.date.isoformat() for m in page.messages if m.date) == sorted(dates)
    # media counts equal what the markup holds
    for kind, pattern in _MEDIA.items():
        expected = len(pattern.findall(html))
        if kind == "video":
            got = sum(1 for m in page.messages for x in m.media if x.kind in (MediaKind.VIDEO, MediaKind.GIF))
        elif kind == "document":
            got = sum(1 for m in page.messages for x in m.media if x.kind in (MediaKind.DOCUMENT, MediaKind.AUDIO))
        else:
            got = sum(1 for m in page.messages for x in m.media if x.kind == kind)
        assert got == expected, f"{kind}: parsed {got}, markup holds {expected}"
    # unknown markup is counted (and reported), never silently dropped
    assert page.unknown_count == sum(len(m.unknown) for m in page.messages)
    record_property("unknown", page.unknown_count)  # type: ignore[operator]
    assert page.unknown_count == 0, [u[:200] for m in page.messages for u in m.unknown]


@pytest.mark.parametrize("path", _PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fragments_are_evidence_and_reparse_to_the_same_message(path: Path) -> None:
    _, page = _parse(path)
    for msg in page.messages:
        assert msg.raw is not None
        assert msg.raw.sha256 == hashlib.sha256(msg.raw.content.encode("utf-8")).hexdigest()
        assert msg.raw.url == page.url
        again = parse_page(msg.raw.content, page.url, fetched_at=page.fetched_at)
        assert again.problems == []
        assert [m.msg_id for m in again.messages] == [msg.msg_id]
        assert again.messages[0].content_hash() == msg.content_hash()


def _page(name: str) -> ChannelPage:
    _require_corpus()
    return _parse(CORPUS / name)[1]


def test_durov_header_counters_and_pagination() -> None:
    page = _page("channel/durov-s-full-2026.html")
    assert page.kind == "channel"
    assert page.before == 519
    ch = page.channel
    assert ch is not None and ch.state is ChannelState.OK
    assert (ch.ref.username, ch.title, ch.verified) == ("durov", "Pavel Durov", True)
    assert ch.description == "Founder of Telegram."
    assert ch.counters.subscribers == 11_300_000
    assert (ch.counters.photos, ch.counters.videos, ch.counters.links) == (101, 45, 195)
    first = page.messages[0]
    assert first.msg_id == 519 and first.views == 8_670_000 and first.author == "Pavel Durov"
    assert first.media[0].kind is MediaKind.VIDEO and first.media[0].duration == 9.0
    assert first.links == ["https://core.telegram.org/bots/features#secretary-bots"]
    assert "<tg-emoji" in (first.html or "") and "🤖 Your Telegram inbox" in first.text
    assert {m.msg_id for m in page.messages if m.edited} >= {521, 527}
    preview = next(m for m in page.messages if m.msg_id == 525).link_preview
    assert preview is not None and preview.site == "Telegram" and preview.title and preview.image_url


def test_albums_are_one_message_with_all_media_and_round_video() -> None:
    page = _page("channel/ducks_poker-s-full-ru-roundvideo-albums.html")
    album = next(m for m in page.messages if m.msg_id == 286)
    assert album.grouped_id == "ducks_poker/286"
    assert [x.locator and x.locator["post"] for x in album.media] == [
        f"https://t.me/DUCKS_POKER/{i}?single" for i in (286, 287, 288)
    ]
    assert all(x.url and x.url.startswith("https://cdn4.telesco.pe/") for x in album.media)
    round_video = next(m for m in page.messages if m.msg_id == 296).media[0]
    assert round_video.kind is MediaKind.ROUND_VIDEO and round_video.duration == 12.0 and round_video.url
    unsupported = next(m for m in page.messages if m.msg_id == 295)
    assert unsupported.notices == ["Please open Telegram to view this post"]


def test_service_message_new_channel_and_hashtag_link() -> None:
    page = _page("channel/prstnk_eprst-s-tiny-new-channel.html")
    assert page.before is None  # first message reached: no older page
    created, post = page.messages
    assert created.service == "channel_created" and created.text == "Channel created"
    assert post.hashtags == ["репортаж"] and post.links == []
    assert page.channel is not None and page.channel.counters.subscribers == 1


def test_truncated_corpus_page_keeps_what_it_holds() -> None:
    page = _page("channel/solokumi-s-full-ru.html")
    assert [p.kind for p in page.problems] == ["truncated"]
    assert page.problems[0].to_error().url == page.url
    assert page.ids == [419, 420, 421, 422, 423, 424]


def test_poll_document_voice_sticker_fragments() -> None:
    poll = _page("channel/fragment-it_begin-488-poll.html").messages[0].poll
    assert poll is not None and poll.question == "Как лучше?" and poll.voters == 222
    assert [o.percent for o in poll.options] == [16.0, 83.0, 3.0]
    doc_msg = _page("channel/fragment-oper_goblin-16936-document.html").messages[0]
    doc = doc_msg.media[0]
    assert (doc.kind, doc.title, doc.size_text) == (MediaKind.DOCUMENT, "Оппозиционные медиапроекты.pdf", "2.1 MB")
    assert doc_msg.forwarded_from is not None and doc_msg.forwarded_from.msg_id == 20294
    voice_msg = _page("channel/fragment-oper_goblin-939-voice.html").messages[0]
    assert voice_msg.media[0].kind is MediaKind.VOICE and voice_msg.media[0].duration == 1660.0
    assert voice_msg.forwarded_from is not None and voice_msg.forwarded_from.name == "Спортивный Екб"
    assert voice_msg.mentions == ["kakberadio", "kakberadiobot"]
    sticker = _page("channel/fragment-sticker-message.html").messages[0].media[0]
    assert sticker.kind is MediaKind.STICKER and sticker.mime == "application/x-tgsticker"


def test_embed_post_pages() -> None:
    reply = _page("post/meduzalive-40957-reply.html")
    assert reply.kind == "post" and reply.messages[0].reply_to == 40953
    assert "Важных историй" in reply.messages[0].text and "Анин, пока неясно" not in reply.messages[0].text
    fwd = _page("post/meduzalive-40984-forwarded-photo.html").messages[0]
    assert fwd.forwarded_from is not None and fwd.forwarded_from.username == "stopcoronavirusrussia"
    assert fwd.hashtags == ["стопкоронавирус", "здоровьевприоритете", "coronavirus"]
    assert _page("post/meduzalive-1-service-message.html").messages[0].service == "service"
    big = _page("post/tvrain-42161-video-too-big.html")
    assert big.messages[0].notices == ["Media is too big"] and big.messages[0].edited
    assert big.channel is not None and big.channel.title == "Телеканал Дождь" and big.channel.verified
    album = _page("post/tvrain-42053-album-3-videos.html").messages[0]
    assert [x.kind for x in album.media] == [MediaKind.VIDEO] * 3
    assert [x.duration for x in album.media] == [11.0, 11.0, 13.0]
    voice = _page("post/melhagram-129-voice.html").messages[0]
    assert voice.media[0].duration == 51.0 and voice.views == 3500
    missing = _page("post/embed-post-not-found.html")
    assert missing.kind == "error" and missing.error_text == "Post not found" and not missing.messages
    assert _page("post/chollometro-28542-tme-post-page.html").kind == "post_outer"
