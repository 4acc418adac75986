"""A preview message without ``data-post`` takes its id from its own links (#19): a link its author
wrote into the text to another channel's post must never make the message a record of that channel
(one author could otherwise write versions into another channel's history)."""

from __future__ import annotations

from datetime import UTC, datetime

from spiders.parsing.channel import parse_page

T = datetime(2026, 2, 1, tzinfo=UTC)


def _page(message_inner: str) -> str:
    return (
        "<!DOCTYPE html><html><head><title>synth</title></head><body>"
        '<section class="tgme_channel_history js-message_history">'
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        '<div class="tgme_widget_message js-widget_message">'
        f'<div class="tgme_widget_message_bubble">{message_inner}</div></div></div>'
        "</section></body></html>"
    )


FORGED = (
    '<div class="tgme_widget_message_text">see <a href="https://t.me/victim_chan/77">this</a> '
    'and <a href="https://t.me/s/victim_chan/78">that</a></div>'
)


def test_a_text_link_to_another_channels_post_does_not_name_the_message() -> None:
    page = parse_page(_page(FORGED), "https://t.me/s/synth_chan", fetched_at=T)
    assert [(m.ref.username, m.msg_id) for m in page.messages] == []
    assert [p.kind for p in page.problems] == ["malformed"]


def test_a_text_link_to_a_post_of_the_pages_own_channel_still_names_it() -> None:
    inner = '<div class="tgme_widget_message_text"><a href="https://t.me/Synth_Chan/9">me</a></div>'
    page = parse_page(_page(inner), "https://t.me/s/synth_chan?before=20", fetched_at=T)
    assert [(m.ref.username, m.msg_id) for m in page.messages] == [("synth_chan", 9)]
