"""TL → record conversion on real Telethon TL objects (built here; the fake world builds the same)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from telethon.tl import types

from foundation.models import ChannelRef, MediaKind
from telegram_watch.convert import convert_message, convert_messages, split_incomplete_tail

REF = ChannelRef(username="sample_news", tg_id=1001)
PEER = types.PeerChannel(1001)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def photo(pid: int) -> types.Photo:
    return types.Photo(
        id=pid,
        access_hash=77,
        file_reference=b"\x01\x02ref",
        date=T0,
        dc_id=2,
        sizes=[
            types.PhotoStrippedSize(type="i", bytes=b"\x01"),
            types.PhotoSize(type="m", w=320, h=240, size=9_000),
            types.PhotoSizeProgressive(type="y", w=1280, h=960, sizes=[1_000, 40_000, 90_000]),
        ],
    )


def doc(did: int, mime: str, *attrs: object, size: int = 5_000) -> types.Document:
    return types.Document(
        id=did, access_hash=5, file_reference=b"r", date=T0, mime_type=mime, size=size, dc_id=2, attributes=list(attrs)
    )


def tl_msg(mid: int, text: str = "", **kw: object) -> types.Message:
    return types.Message(id=mid, peer_id=PEER, date=T0, message=text, **kw)


def test_text_entities_become_links_mentions_hashtags() -> None:
    text = "🎉 see https://example.org and @Some_Channel #Breaking news, more"
    off = len("🎉".encode("utf-16-le")) // 2 + len(" see ")
    ents = [
        types.MessageEntityUrl(offset=off, length=len("https://example.org")),
        types.MessageEntityMention(offset=off + 24, length=len("@Some_Channel")),
        types.MessageEntityHashtag(offset=off + 38, length=len("#Breaking")),
        types.MessageEntityTextUrl(offset=off + 53, length=4, url="https://example.net/more"),
    ]
    m = convert_message(tl_msg(7, text, entities=ents, views=120, forwards=3, post_author="Desk"), REF)
    assert m.links == ["https://example.org", "https://example.net/more"]
    assert m.mentions == ["some_channel"] and m.hashtags == ["breaking"]
    assert (m.views, m.forwards, m.author, m.permalink) == (120, 3, "Desk", "https://t.me/sample_news/7")


def test_photo_takes_the_largest_size_and_a_locator() -> None:
    m = convert_message(tl_msg(8, media=types.MessageMediaPhoto(photo=photo(900))), REF)
    [p] = m.media
    assert (p.kind, p.width, p.height, p.size) == (MediaKind.PHOTO, 1280, 960, 90_000)
    assert p.locator is not None
    assert p.locator["thumb_size"] == "y" and p.locator["id"] == 900 and p.locator["msg_id"] == 8
    assert base64.b64decode(p.locator["file_reference"]) == b"\x01\x02ref"


def test_document_kinds() -> None:
    video = doc(
        1,
        "video/mp4",
        types.DocumentAttributeVideo(duration=12.5, w=640, h=360),
        types.DocumentAttributeFilename(file_name="clip.mp4"),
    )
    rnd = doc(2, "video/mp4", types.DocumentAttributeVideo(duration=3, w=240, h=240, round_message=True))
    gif = doc(3, "video/mp4", types.DocumentAttributeVideo(duration=2, w=100, h=100), types.DocumentAttributeAnimated())
    voice = doc(4, "audio/ogg", types.DocumentAttributeAudio(duration=9, voice=True))
    sticker = doc(5, "image/webp", types.DocumentAttributeSticker(alt="👍", stickerset=types.InputStickerSetEmpty()))
    pdf = doc(6, "application/pdf", types.DocumentAttributeFilename(file_name="report.pdf"), size=123_456)
    got = [
        convert_message(tl_msg(i + 10, media=types.MessageMediaDocument(document=d)), REF).media[0]
        for i, d in enumerate([video, rnd, gif, voice, sticker, pdf])
    ]
    assert [g.kind for g in got] == [
        MediaKind.VIDEO,
        MediaKind.ROUND_VIDEO,
        MediaKind.GIF,
        MediaKind.VOICE,
        MediaKind.STICKER,
        MediaKind.DOCUMENT,
    ]
    assert (got[0].duration, got[0].width, got[0].file_name, got[0].mime) == (12.5, 640, "clip.mp4", "video/mp4")
    assert got[3].duration == 9.0 and got[4].emoji == "👍"
    assert (got[5].file_name, got[5].size) == ("report.pdf", 123_456)


def test_forward_reply_edit_and_raw_evidence() -> None:
    fwd = types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(555), channel_post=31, post_author="Ed")
    tl = tl_msg(9, "fwd", fwd_from=fwd, reply_to=types.MessageReplyHeader(reply_to_msg_id=4), edit_date=T0)
    m = convert_message(tl, REF)
    assert m.forwarded_from is not None
    assert (m.forwarded_from.channel_id, m.forwarded_from.msg_id, m.forwarded_from.name) == (555, 31, "Ed")
    assert m.reply_to == 4 and m.edited and m.edit_date == T0
    assert m.raw is not None and m.raw.kind == "tl_json"
    assert hashlib.sha256(m.raw.content.encode()).hexdigest() == m.raw.sha256
    assert json.loads(m.raw.content)["_"] == "Message"
    assert convert_message(tl, REF).raw.sha256 == m.raw.sha256  # type: ignore[union-attr]


def test_album_is_one_message_with_the_first_id_and_all_media() -> None:
    parts = [
        tl_msg(22, "", grouped_id=99, media=types.MessageMediaPhoto(photo=photo(3))),
        tl_msg(
            21,
            "caption #tag",
            grouped_id=99,
            media=types.MessageMediaPhoto(photo=photo(2)),
            entities=[types.MessageEntityHashtag(offset=8, length=4)],
        ),
        tl_msg(20, "", grouped_id=99, media=types.MessageMediaPhoto(photo=photo(1))),
        tl_msg(19, "plain"),
    ]
    records = convert_messages(parts, REF)
    assert [r.msg_id for r in records] == [20, 19]
    album = records[0]
    assert album.text == "caption #tag" and album.hashtags == ["tag"] and album.grouped_id == "99"
    assert [m.locator["id"] for m in album.media if m.locator] == [1, 2, 3]
    assert album.raw is not None and len(json.loads(album.raw.content)) == 3


def test_an_album_cut_by_the_batch_end_is_held_back() -> None:
    msgs = [tl_msg(30), tl_msg(29, grouped_id=5), tl_msg(28, grouped_id=5)]
    send, held = split_incomplete_tail(msgs)
    assert [m.id for m in send] == [30] and [m.id for m in held] == [29, 28]
    assert split_incomplete_tail(msgs[1:]) == (msgs[1:], [])
