"""Web preview markup shapes of issue #19 item 1, on synthetic fixtures written from their documented shapes.

Each fixture is written by hand from the shape the issue describes (no real page is copied): the
profile page's ``/s/`` link against an older "members" label, a group message's widget with its
sender, widget markup from before ``data-post``, an audio document's performer line, the "No posts
found" answer, reactions and inline keyboards, message blocks without a date footer, a bot's
"monthly users" figure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.discovery.snowball import message_rooms
from foundation.models import Button, MediaKind, Reaction
from spiders.parsing.channel import ChannelPage, parse_page
from spiders.parsing.profile import EntityType, parse_profile

T = datetime(2026, 2, 1, tzinfo=UTC)
URL = "https://t.me/s/synth_chan"
DATE = (
    '<a class="tgme_widget_message_date" href="https://t.me/synth_chan/{id}">'
    '<time datetime="2026-01-31T09:00:00+00:00">09:00</time></a>'
)


def _page(body: str, *, head: str = "") -> str:
    return (
        "<!DOCTYPE html><html><head><title>synth</title></head><body>"
        f'{head}<section class="tgme_channel_history js-message_history">{body}</section></body></html>'
    )


def _widget(body: str) -> str:
    """An ``?embed=1`` page: one message in the widget frame, no channel history."""
    return f'<!DOCTYPE html><html><head><title>synth</title></head><body class="widget_frame_base">{body}</body></html>'


def _message(inner: str, msg_id: int = 5, *, post: bool = True, footer: bool = True, outside: str = "") -> str:
    data_post = f' data-post="synth_chan/{msg_id}"' if post else ""
    foot = (
        '<div class="tgme_widget_message_footer compact"><div class="tgme_widget_message_info short">'
        f'<span class="tgme_widget_message_meta">{DATE.format(id=msg_id)}</span></div></div>'
        if footer
        else ""
    )
    return (
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'js-widget_message"{data_post}><div class="tgme_widget_message_bubble">{inner}{foot}</div>{outside}'
        "</div></div>"
    )


def _parse(html: str, url: str = URL) -> ChannelPage:
    return parse_page(html, url, fetched_at=T)


# --- profile pages ------------------------------------------------------------------------------


def _profile(extra: str, *, preview_link: bool, button: str = "View in Telegram") -> str:
    link = (
        '<div class="tgme_page_context_link_wrap"><a class="tgme_page_context_link" href="/s/synth_chan">'
        "Preview channel</a></div>"
        if preview_link
        else ""
    )
    return (
        '<!DOCTYPE html><html><head><title>Telegram: Contact @synth_chan</title></head><body><div class="tgme_page">'
        '<div class="tgme_page_title"><span dir="auto">Synthetic Channel</span></div>'
        f'<div class="tgme_page_extra">{extra}</div><div class="tgme_page_description">About things.</div>'
        f'<div class="tgme_page_action"><a href="tg://resolve?domain=synth_chan">{button}</a></div>{link}'
        "</div></body></html>"
    )


def test_preview_link_outranks_an_older_members_label() -> None:
    page = parse_profile(_profile("4 321 members", preview_link=True), url="https://t.me/synth_chan")
    assert page.type is EntityType.CHANNEL
    assert (page.subscribers, page.members) == (4321, None)  # a channel's audience, whatever the label says


def test_members_without_a_preview_link_is_still_a_group() -> None:
    page = parse_profile(_profile("4 321 members", preview_link=False), url="https://t.me/synth_chan")
    assert (page.type, page.members, page.subscribers) == (EntityType.GROUP, 4321, None)


def test_bot_page_monthly_users() -> None:
    html = _profile("12 345 monthly users", preview_link=False, button="Start Bot").replace(
        "tg://resolve?domain=synth_chan", "tg://resolve?domain=synth_bot"
    )
    page = parse_profile(html, url="https://t.me/synth_bot")
    assert (page.type, page.monthly_users) == (EntityType.BOT, 12_345)


# --- widget pages -------------------------------------------------------------------------------


def test_group_widget_keeps_the_sender_and_types_the_chat_as_a_group() -> None:
    author = (
        '<div class="tgme_widget_message_author accent_color">'
        '<a class="tgme_widget_message_author_name" href="https://t.me/Some_Member">'
        '<span dir="auto">Mina Park</span></a>'
        '&nbsp;in&nbsp;<a class="tgme_widget_message_owner_name" href="https://t.me/synth_chan">'
        '<span dir="auto">Synthetic Group</span></a></div>'
    )
    text = '<div class="tgme_widget_message_text">hello group</div>'
    page = _parse(_widget(_message(author + text)), "https://t.me/synth_chan/5?embed=1")
    (msg,) = page.messages
    assert (msg.author, msg.author_username, msg.text) == ("Mina Park", "some_member", "hello group")
    assert page.kind == "post" and page.channel is not None
    assert (page.channel.kind, page.channel.title) == ("group", "Synthetic Group")
    assert not msg.unknown


def test_channel_widget_stays_a_channel() -> None:
    author = (
        '<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" '
        'href="https://t.me/synth_chan"><span dir="auto">Synthetic Channel</span></a></div>'
    )
    page = _parse(_widget(_message(author)), "https://t.me/synth_chan/5?embed=1")
    assert page.channel is not None and page.channel.kind == "channel"
    assert page.messages[0].author is None


def test_widget_from_before_data_post_reads_the_id_from_its_links() -> None:
    html = _widget(_message('<div class="tgme_widget_message_text">old widget</div>', 42, post=False))
    page = _parse(html, "https://t.me/synth_chan/42?embed=1")
    (msg,) = page.messages
    assert (msg.ref.username, msg.msg_id, msg.text) == ("synth_chan", 42, "old widget")
    assert not page.problems


def test_widget_without_any_post_id_is_a_recorded_problem_not_zero_messages() -> None:
    html = _widget(_message('<div class="tgme_widget_message_text">no id anywhere</div>', post=False, footer=False))
    page = _parse(html, "https://t.me/synth_chan/43?embed=1")
    assert page.messages == []
    assert [p.kind for p in page.problems] == ["malformed"]
    assert "post id" in page.problems[0].detail


def test_audio_document_extra_line_is_the_performer() -> None:
    audio = (
        '<a class="tgme_widget_message_document_wrap" href="https://t.me/synth_chan/5">'
        '<div class="tgme_widget_message_document_icon audio"></div><div class="tgme_widget_message_document">'
        '<div class="tgme_widget_message_document_title">Morning Tune</div>'
        '<div class="tgme_widget_message_document_extra">The Synth Band</div></div></a>'
    )
    document = audio.replace(" audio", "").replace("Morning Tune", "notes.pdf").replace("The Synth Band", "2.5 MB")
    (song,) = _parse(_page(_message(audio))).messages[0].media
    assert (song.kind, song.title, song.performer, song.size_text, song.size) == (
        MediaKind.AUDIO, "Morning Tune", "The Synth Band", None, None,
    )  # fmt: skip
    (doc,) = _parse(_page(_message(document))).messages[0].media
    assert (doc.kind, doc.performer, doc.size_text, doc.size) == (MediaKind.DOCUMENT, None, "2.5 MB", 2_621_440)


def test_no_posts_found_is_flagged_not_an_empty_channel() -> None:
    page = _parse(_page('<div class="tme_no_messages_found">No posts found</div>'))
    assert page.no_posts and page.messages == [] and page.kind == "channel"
    assert not _parse(_page(_message('<div class="tgme_widget_message_text">x</div>'))).no_posts


def test_reactions_standard_custom_and_paid() -> None:
    reactions = (
        '<div class="tgme_widget_message_reactions js-message_reactions">'
        '<span class="tgme_reaction tgme_reaction_paid"><i class="icon icon-telegram-stars"></i>12</span>'
        '<span class="tgme_reaction"><i class="emoji" style="background-image:url(\'//e/1.png\')">'
        "<b>👍</b></i>1.5K</span>"
        '<span class="tgme_reaction"><tg-emoji emoji-id="5000000000000000001"></tg-emoji>37</span></div>'
    )
    msg = _parse(_page(_message('<div class="tgme_widget_message_text">hi</div>' + reactions))).messages[0]
    assert msg.reactions == [
        Reaction(paid=True, count=12),
        Reaction(emoji="👍", count=1500),
        Reaction(custom_emoji_id="5000000000000000001", count=37),
    ]
    assert not msg.unknown


def test_inline_keyboard_rows_and_bot_deep_links_become_candidates() -> None:
    keyboard = (
        '<div class="tgme_widget_message_inline_keyboard">'
        '<div class="tgme_widget_message_inline_row">'
        '<a class="tgme_widget_message_inline_button url_button" href="https://t.me/synth_helper_bot?start=ref42">'
        '<span class="tgme_widget_message_inline_button_text">Open the bot</span></a>'
        '<a class="tgme_widget_message_inline_button url_button" href="https://example.org/page">'
        '<span class="tgme_widget_message_inline_button_text">Website</span></a></div>'
        '<div class="tgme_widget_message_inline_row">'
        '<a class="tgme_widget_message_inline_button url_button" href="https://t.me/other_room">'
        '<span class="tgme_widget_message_inline_button_text">More</span></a></div></div>'
    )
    msg = _parse(_page(_message('<div class="tgme_widget_message_text">buttons</div>', outside=keyboard))).messages[0]
    assert msg.buttons == [
        [
            Button(text="Open the bot", url="https://t.me/synth_helper_bot?start=ref42", kind="url"),
            Button(text="Website", url="https://example.org/page", kind="url"),
        ],
        [Button(text="More", url="https://t.me/other_room", kind="url")],
    ]
    rooms = [(room.canonical, how) for room, how in message_rooms(msg)]
    assert rooms == [("https://t.me/synth_helper_bot", "button"), ("https://t.me/other_room", "button")]


def test_message_blocks_without_date_markup_are_kept_and_counted() -> None:
    body = "".join(
        _message(f'<div class="tgme_widget_message_text">undated {i}</div>', i, footer=False) for i in (7, 8)
    )
    page = _parse(_page(body))
    assert [(m.msg_id, m.text, m.date) for m in page.messages] == [(7, "undated 7", None), (8, "undated 8", None)]
    assert page.undated_count == 2 and not page.truncated


def test_a_cut_off_page_still_refetches_its_undated_message() -> None:
    html = _page(_message('<div class="tgme_widget_message_text">cut</div>', 9, footer=False))
    page = _parse(html[: html.index("</section>")])  # ends before </html>
    assert page.messages == [] and page.truncated and page.undated_count == 0


@pytest.mark.corpus
def test_real_pages_every_reaction_is_kept(corpus_dir: Path) -> None:
    """Read-only check against the real pages beside the repository: each ``tgme_reaction`` is kept."""
    for name in ("durov-s-full-2026.html", "solokumi-s-full-ru.html", "ducks_poker-s-full-ru-roundvideo-albums.html"):
        html = (corpus_dir / "channel" / name).read_text(encoding="utf-8")
        page = parse_page(html, f"https://t.me/s/{name}", fetched_at=T)
        kept = [r for m in page.messages for r in m.reactions]
        assert len(kept) == len(re.findall(r'class="tgme_reaction[ "]', html)) > 0
        assert all(r.count is not None and (r.paid or r.emoji or r.custom_emoji_id) for r in kept)
        assert page.unknown_count == 0
