"""Fuzzing the page parsers: mutated real pages and random HTML never crash them.

Why: t.me pages arrive from the network and change without notice; a truncated response, a proxy
that injects markup or a page served in the wrong encoding must become ``problems`` on the parsed
page, never an exception that stops a crawl. The mutations start from real pages
(``../shared/corpus``) because random bytes rarely reach the deep branches of a parser, while a
real page with one slice deleted or duplicated does.

The runs are deterministic (``derandomize=True``) and bounded, so a failure reproduces exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation.models import Message
from spiders.parsing.channel import ChannelPage, parse_page
from spiders.parsing.profile import ProfilePage, parse_profile

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
KINDS = ("channel", "post", "profile", "invite")

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# markup a hostile or broken proxy might inject: t.me's own classes (to reach the dispatchers),
# dates and ids that are not what they claim, and plain garbage
TAGS = [
    b'<div class="tgme_widget_message" data-post="x/0">',
    b'<div class="tgme_widget_message" data-post="durov/-5">',
    b'<div class="tgme_widget_message" data-post="durov/99999999999999999999">',
    b'<div class="tgme_widget_message_text">',
    b'<div class="tgme_widget_message_bubble">',
    b'<time datetime="not-a-date">',
    b'<time datetime="2024-02-30T25:61:00+00:00">',
    b'<time datetime="2024-01-01T00:00:00">',
    b'<time datetime="9999-12-31T23:59:59+14:00">',
    b'<a class="tgme_widget_message_date" href="https://t.me/durov/abc">',
    b'<span class="tgme_widget_message_views">1.2M</span>',
    b'<span class="tgme_widget_message_views">9e999K</span>',
    b'<div class="tgme_page_extra">12 345 members, -3 online</div>',
    b'<div class="tgme_page_title"><span dir="auto">',
    b'<a class="tgme_action_button_new" href="tg://join?invite=">',
    b'<i class="tgme_widget_message_video_thumb" style="background-image:url(\'javascript:x\')">',
    b'<link rel="prev" href="/s/durov?before=-1">',
    b'<link rel="next" href="/s/durov?after=abc">',
    b"<![CDATA[",
    b"<!--",
    b'<?xml version="1.0"?>',
    b'<!DOCTYPE html [<!ENTITY x "&x;&x;">]>',
    b"&#0;&#xD800;&#1114112;",
    b"<br/><br><br>",
    b"</div></div></div>",
    b"<script>",
    b"\x00",
]
ATTRS = [b' data-post="', b' class="', b' datetime="', b' href="', b' style="', b' dir="rtl"', b" ="]
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf"]


@cache
def corpus_pages() -> tuple[tuple[str, bytes], ...]:
    """(kind, bytes) of every corpus page; read at test time, never copied into the repository."""
    return tuple(
        (path.parent.name, path.read_bytes()) for kind in KINDS for path in sorted((CORPUS / kind).glob("*.html"))
    )


def _require_corpus() -> None:
    if not CORPUS.is_dir() or not corpus_pages():
        pytest.skip(f"real-page corpus not found at {CORPUS} (it lives in ../shared/corpus beside the repo)")


@st.composite
def mutated(draw: st.DrawFn, page: bytes) -> bytes:
    """``page`` after 1–6 random edits of the kinds a broken network or proxy produces."""
    data = bytearray(page)
    for _ in range(draw(st.integers(1, 6))):
        n = len(data)
        op = draw(st.sampled_from(["truncate", "delete", "duplicate", "swap", "tag", "attr", "flip", "utf8"]))
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 4096)))
        if op == "truncate":
            del data[i:]
        elif op == "delete":
            del data[i:j]
        elif op == "duplicate":
            data[j:j] = data[i:j]
        elif op == "swap":
            k = draw(st.integers(j, n))
            m = draw(st.integers(k, min(n, k + 4096)))
            data[i:m] = data[k:m] + data[j:k] + data[i:j]
        elif op == "tag":
            data[i:i] = draw(st.sampled_from(TAGS))
        elif op == "attr":
            data[i:i] = draw(st.sampled_from(ATTRS)) + draw(st.binary(max_size=12)) + b'"'
        elif op == "flip" and n:
            at = min(i, n - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "utf8":
            data[i:i] = draw(st.sampled_from(INVALID_UTF8))
    return bytes(data)


def _utc(value: datetime | None) -> bool:
    return value is None or value.utcoffset() == timedelta(0)


def check_message(message: Message) -> None:
    assert message.msg_id > 0, message.msg_id
    assert _utc(message.date) and _utc(message.edit_date), (message.date, message.edit_date)


def check_channel_page(page: ChannelPage) -> None:
    assert isinstance(page, ChannelPage)
    for message in page.messages:
        check_message(message)
    assert page.before is None or page.before > 0
    assert page.after is None or page.after > 0
    assert page.unknown_count >= 0
    assert _utc(page.fetched_at)


def check_profile(page: ProfilePage) -> None:
    assert isinstance(page, ProfilePage)
    assert all(isinstance(v, int) and v >= 0 for v in page.counters.values()), page.counters
    for value in (page.members, page.subscribers, page.online, page.monthly_users):
        assert value is None or value >= 0


def _name(kind: str) -> str:
    return "durov" if kind != "invite" else "+AbCdEfGh12345678"


@pytest.mark.corpus
@FUZZ
@given(data=st.data())
def test_channel_parser_survives_mutated_corpus_pages(data: st.DataObject) -> None:
    _require_corpus()
    kind, original = data.draw(st.sampled_from(corpus_pages()), label="page")
    content = data.draw(mutated(original), label="mutated")
    as_text = data.draw(st.booleans(), label="as_text")
    arg: str | bytes = content.decode("utf-8", errors="surrogateescape") if as_text else content
    check_channel_page(parse_page(arg, f"https://t.me/s/{_name(kind)}"))


@pytest.mark.corpus
@FUZZ
@given(data=st.data())
def test_profile_parser_survives_mutated_corpus_pages(data: st.DataObject) -> None:
    _require_corpus()
    kind, original = data.draw(st.sampled_from(corpus_pages()), label="page")
    content = data.draw(mutated(original), label="mutated")
    url = data.draw(st.sampled_from([f"https://t.me/{_name(kind)}", None, "not a url", "t.me/+"]))
    as_text = data.draw(st.booleans(), label="as_text")
    arg: str | bytes = content.decode("utf-8", errors="surrogateescape") if as_text else content
    check_profile(parse_profile(arg, url))


# --- random HTML ---------------------------------------------------------------------------------

_CLASSES = [
    "tgme_widget_message",
    "tgme_widget_message_wrap",
    "tgme_widget_message_bubble",
    "tgme_widget_message_text",
    "tgme_widget_message_date",
    "tgme_widget_message_views",
    "tgme_widget_message_photo_wrap",
    "tgme_widget_message_video_player",
    "tgme_widget_message_poll",
    "tgme_widget_message_forwarded_from",
    "tgme_widget_message_reply",
    "tgme_channel_info_header_title",
    "tgme_page_title",
    "tgme_page_extra",
    "tgme_page_description",
    "tgme_action_button_new",
    "service_message",
    "js-message_text",
]


def _attr_value() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=20),
        st.from_regex(r"[a-z_]{1,12}/-?[0-9]{1,22}", fullmatch=True),
        st.from_regex(
            r"-?[0-9]{1,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2})?", fullmatch=True
        ),
        st.sampled_from(["tg://join?invite=AbCdEfGh12", "https://t.me/durov/12", "/s/durov?before=0", "?after=-9"]),
    )


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    tag = st.sampled_from(["div", "a", "span", "time", "i", "b", "link", "meta", "img", "br", "video", "p"])
    attrs = st.lists(
        st.tuples(
            st.sampled_from(["class", "data-post", "datetime", "href", "style", "content", "property"]), _attr_value()
        ),
        max_size=3,
    )

    def render(parts: tuple[str, list[tuple[str, str]], list[str], bool]) -> str:
        name, pairs, inner, closed = parts
        joined = "".join(f' {k}="{v}"' for k, v in pairs)
        return f"<{name}{joined}>{''.join(inner)}" + (f"</{name}>" if closed else "")

    return st.tuples(tag, attrs, st.lists(children, max_size=4), st.booleans()).map(render)


def _class_element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(_CLASSES), st.lists(children, max_size=4)).map(
        lambda p: f'<div class="{p[0]}">{"".join(p[1])}</div>'
    )


RANDOM_HTML = st.recursive(
    st.one_of(st.text(max_size=30), st.sampled_from(["&amp;", "&#x1F600;", "&bogus;", "<br>", "]]>", "\ud7ff"])),
    lambda children: st.one_of(_element(children), _class_element(children)),
    max_leaves=40,
)


@FUZZ
@given(html=RANDOM_HTML, wrap=st.booleans())
def test_parsers_survive_random_html(html: str, wrap: bool) -> None:
    doc = f"<html><head></head><body>{html}</body></html>" if wrap else html
    check_channel_page(parse_page(doc, "https://t.me/s/durov"))
    check_profile(parse_profile(doc, "https://t.me/durov"))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=2048))
def test_parsers_survive_random_bytes(raw: bytes) -> None:
    check_channel_page(parse_page(raw, "https://t.me/s/durov"))
    check_profile(parse_profile(raw, "https://t.me/durov"))
