"""The channel-page parser on small synthetic fragments: one behaviour per test."""

from __future__ import annotations

from datetime import UTC, datetime

from foundation.models import MediaKind
from spiders.parsing.channel import ChannelPage, parse_duration, parse_page

URL = "https://t.me/s/sample_chan"
T = datetime(2025, 5, 1, tzinfo=UTC)


def _msg(inner: str, msg_id: int = 7, classes: str = "", meta: str = "") -> str:
    return (
        f'<div class="tgme_widget_message_wrap"><div class="tgme_widget_message {classes} js-widget_message" '
        f'data-post="Sample_Chan/{msg_id}"><div class="tgme_widget_message_bubble">{inner}'
        f'<div class="tgme_widget_message_footer compact"><div class="tgme_widget_message_info short">'
        f'<span class="tgme_widget_message_views">3M</span><span class="copyonly"> views</span>'
        f'<span class="tgme_widget_message_meta">{meta}<a class="tgme_widget_message_date" '
        f'href="https://t.me/Sample_Chan/{msg_id}"><time datetime="2025-05-01T10:00:00+00:00">10:00</time></a>'
        f"</span></div></div></div></div></div>"
    )


def _parse(html: str) -> ChannelPage:
    return parse_page(html, URL, fetched_at=T)


def test_text_html_links_mentions_hashtags_edited_author() -> None:
    text = (
        '<div class="tgme_widget_message_text js-message_text">Hello 안녕하세요 <b>bold</b><br/>'
        'see <a href="https://example.org/a">this</a> and <a href="https://t.me/other_chan">@other_chan</a>'
        ' <a href="?q=%23news">#news</a> #weather</div>'
    )
    meta = '<span class="tgme_widget_message_from_author">Min Ji</span>, edited &nbsp;'
    m = _parse(_msg(text, meta=meta)).messages[0]
    assert m.text == "Hello 안녕하세요 bold\nsee this and @other_chan #news #weather"
    assert "<b>bold</b>" in (m.html or "")
    assert m.links == ["https://example.org/a", "https://t.me/other_chan"]
    assert m.mentions == ["other_chan"] and m.hashtags == ["news", "weather"]
    assert m.edited and m.author == "Min Ji" and m.views == 3_000_000
    assert m.ref.username == "sample_chan" and m.permalink == "https://t.me/Sample_Chan/7"
    assert m.date == datetime(2025, 5, 1, 10, tzinfo=UTC)


def test_unknown_markup_is_kept_raw_and_counted() -> None:
    inner = '<div class="tgme_widget_message_brand_new_thing">a new widget</div>'
    page = _parse(_msg(inner))
    assert page.unknown_count == 1
    assert page.messages[0].unknown == ['<div class="tgme_widget_message_brand_new_thing">a new widget</div>']


def test_gif_video_sticker_location_via_bot() -> None:
    gif = (
        '<a class="tgme_widget_message_video_player" href="https://t.me/Sample_Chan/7">'
        '<i class="tgme_widget_message_video_thumb" style="background-image:url(\'https://cdn.example/t.jpg\')"></i>'
        '<div class="tgme_widget_message_video_wrap" style="width:320px;padding-top:50%">'
        '<video src="https://cdn.example/g.mp4" class="tgme_widget_message_video" autoplay loop muted></video>'
        "</div></a>"
    )
    video = gif.replace(" autoplay loop muted", "").replace(
        "</div></a>", '</div><time class="message_video_duration">1:02:03</time></a>'
    )
    sticker = (
        '<div class="tgme_widget_message_sticker_wrap"><i class="tgme_widget_message_sticker" '
        'data-webp="https://cdn.example/s.webp" style="width:256px"></i></div>'
    )
    loc = (
        '<a class="tgme_widget_message_location_wrap" href="https://maps.google.com/maps?q=37.5665,126.978&ll=1">'
        '<div class="tgme_widget_message_location"></div></a>'
    )
    via = (
        '<div class="tgme_widget_message_author"><a class="tgme_widget_message_owner_name"><span>Sample</span></a>'
        ' via <a class="tgme_widget_message_via_bot" href="https://t.me/helper_bot">@helper_bot</a></div>'
    )
    page = _parse(_msg(via + gif, 1) + _msg(video, 2) + _msg(sticker, 3) + _msg(loc, 4))
    g, v, s, loc_msg = page.messages
    assert g.media[0].kind is MediaKind.GIF and (g.media[0].width, g.media[0].height) == (320, 160)
    assert g.via_bot == "helper_bot"
    assert v.media[0].kind is MediaKind.VIDEO and v.media[0].duration == 3723.0
    assert s.media[0].kind is MediaKind.STICKER and s.media[0].url == "https://cdn.example/s.webp"
    assert loc_msg.location is not None and (loc_msg.location.latitude, loc_msg.location.longitude) == (
        37.5665,
        126.978,
    )
    assert page.unknown_count == 0


def test_service_messages_are_classified() -> None:
    html = "".join(
        _msg(f'<div class="tgme_widget_message_text">{label}</div>', i, classes="service_message")
        for i, label in enumerate(["Channel photo updated", "Sample pinned a message", "Something new"], start=1)
    )
    assert [m.service for m in _parse(html).messages] == ["photo_changed", "pinned", "other"]


def test_cut_off_message_is_reported_not_stored_half() -> None:
    whole = _msg('<div class="tgme_widget_message_text">complete</div>', 1)
    half = _msg('<div class="tgme_widget_message_text">cut here</div>', 2)
    html = f"<!DOCTYPE html><html><body>{whole}{half[: len(half) // 2]}"
    page = _parse(html)
    assert page.ids == [1]
    assert {p.kind for p in page.problems} == {"truncated", "incomplete_message"}
    assert all(p.url == URL for p in page.problems)
    assert page.truncated


def test_empty_and_garbage_bodies_never_raise() -> None:
    assert _parse("").problems[0].kind == "malformed"
    garbage = _parse("\x00\x01 not html at all <<<>>>")
    assert garbage.messages == [] and garbage.kind == "empty"


def test_duration_forms() -> None:
    assert parse_duration("0:09") == 9.0 and parse_duration("12:00") == 720.0
    assert parse_duration("live") is None and parse_duration(None) is None
