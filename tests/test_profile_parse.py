"""Preview pages (``t.me/NAME``, ``t.me/+HASH``) → ProfilePage.

Expected values below were read by eye from the corpus HTML (``.tgme_page_title``,
``.tgme_page_extra``, ``.tgme_page_action``, ``.tgme_page_context_link``), not produced by the parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spiders.parsing.profile import EntityType, PageState, ProfilePage, parse_profile

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

C, G, U, B = EntityType.CHANNEL, EntityType.GROUP, EntityType.USER, EntityType.BOT
VALID = PageState.VALID

# file, url asked for, expected fields (everything not listed is checked against the dataclass default)
CORPUS_EXPECTED: list[tuple[str, str, dict[str, Any]]] = [
    (
        "profile/durov-channel-profile.html",
        "https://t.me/durov",
        {
            "state": VALID, "type": C, "username": "durov", "title": "Pavel Durov", "verified": True,
            "subscribers": 11_286_994, "counters_text": "11 286 994 subscribers", "has_web_preview": True,
            "description": "Founder of Telegram.", "action_text": "View in Telegram",
            "avatar_prefix": "https://cdn4.telesco.pe/file/kGMVDVDXdukNVa_zTYN5hyfaW8zZZkG1",
        },
    ),
    (
        "profile/diaboxapp-channel-profile-2024.html",
        "https://t.me/DiaboxApp",
        {
            "state": VALID, "type": C, "username": "diaboxapp", "title": "DiaBox", "verified": False,
            "subscribers": 5012, "counters_text": "5 012 subscribers", "has_web_preview": True,
            "description": "DiaBox App Official Channel", "action_text": "View in Telegram",
            "avatar_prefix": "https://cdn5.cdn-telegram.org/file/vMz2W6HTXFaQGHuit88lhc6B6HoadGm_",
        },
    ),
    (
        "profile/python-group-profile.html",
        "https://t.me/python",
        {
            "state": VALID, "type": G, "username": "python", "title": "Python", "verified": False,
            "members": 97_957, "online": 4138, "counters_text": "97 957 members, 4 138 online",
            "has_web_preview": False, "action_text": "View in Telegram",
            "description_starts": "You will be muted until you read the rules. Read them! @Rules_for_Python\n\n",
            "description_links": [
                "https://t.me/rules_for_python", "https://t.me/pythonofftopic", "https://t.me/pythonres",
                "https://t.me/hylang", "https://t.me/seleniumpython",
            ],
            "avatar_prefix": "https://cdn4.telesco.pe/file/tHPoPfugjD2RQeNRxV8zvOo8_V8Fr6w7",
        },
    ),
    (
        "profile/botfather-bot-profile.html",
        "https://t.me/BotFather",
        {
            "state": VALID, "type": B, "username": "botfather", "title": "BotFather", "verified": True,
            "monthly_users": 8_122_955, "counters_text": "8 122 955 monthly users", "has_web_preview": False,
            "description_starts": "BotFather is the one bot to rule them all.", "action_text": "Start Bot",
            "avatar_prefix": "https://cdn1.telesco.pe/file/i8AQShsQjFnpjhaoOh-989ReIplKY6ft",
        },
    ),
    (
        "profile/nikolai-user-profile.html",
        "https://t.me/nikolai",
        {
            "state": VALID, "type": U, "username": "nikolai", "title": "Nikolai", "verified": False,
            "counters_text": None, "description": None, "avatar_url": None, "action_text": "Send Message",
        },
    ),
    (
        "profile/nonexistent-username-profile.html",
        "https://t.me/zzq9x7v2knot44",
        {
            "state": PageState.NOT_FOUND, "type": EntityType.UNKNOWN, "username": "zzq9x7v2knot44", "title": None,
            "description": None, "avatar_url": None, "counters_text": None,
        },
    ),
    (
        "invite/private-group-invite-anonymized.html",
        "https://t.me/+PRIVATEHASHEXAMPLE00",
        {
            "state": VALID, "type": G, "is_invite": True, "invite_hash": "PRIVATEHASHEXAMPLE00", "username": None,
            "title": "Закрытая группа", "members": 0, "counters_text": "no members", "verified": False,
            "has_web_preview": False, "action_text": "Join Group", "description": None,
            "avatar_url": "https://cdn4.telesco.pe/file/AVATAR.jpg",
        },
    ),
]  # fmt: skip


def _check(page: ProfilePage, expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key == "avatar_prefix":
            assert page.avatar_url is not None and page.avatar_url.startswith(value)
        elif key == "description_starts":
            assert page.description is not None and page.description.startswith(value)
        elif key == "description_links":
            assert [link.canonical for link in page.description_links] == value
        else:
            assert getattr(page, key) == value, key


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "url", "expected"), CORPUS_EXPECTED, ids=[row[0] for row in CORPUS_EXPECTED])
def test_corpus_page(name: str, url: str, expected: dict[str, Any]) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus page {path} absent (the corpus lives in ../shared/corpus beside the repo)")
    with_url = parse_profile(path.read_bytes(), url=url)
    _check(with_url, expected)
    assert with_url.problems == ()
    # the page alone (no url) must say the same: triage may hold only the HTML
    without_url = parse_profile(path.read_text(encoding="utf-8"))
    assert without_url == with_url


@pytest.mark.corpus
def test_every_corpus_profile_page_is_covered() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus absent: {CORPUS}")
    present = {
        f"{path.parent.name}/{path.name}"
        for folder in ("profile", "invite")
        for path in (CORPUS / folder).glob("*.html")
    }
    assert present <= {row[0] for row in CORPUS_EXPECTED}, "new corpus pages: add their expected values here"


# --- synthetic pages --------------------------------------------------------------------------


def _page(body: str, title: str = "Telegram: View @someone", head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>{head}</head><body>"
        f'<div class="tgme_page_wrap"><div class="tgme_body_wrap"><div class="tgme_page">{body}</div></div></div>'
        "</body></html>"
    )


CHANNEL_INVITE = _page(
    '<div class="tgme_page_photo"><a href="tg://join?invite=AbCdEfGh12345678">'
    '<img class="tgme_page_photo_image" src="//cdn.example/a.jpg"></a></div>'
    '<div class="tgme_page_title"><span dir="auto">Some News Room</span></div>'
    '<div class="tgme_page_extra">12.5K subscribers</div>'
    '<div class="tgme_page_description">Line one<br/>line   two</div>'
    '<div class="tgme_page_action"><a class="tgme_action_button_new" href="tg://join?invite=AbCdEfGh12345678">'
    "Join Channel</a></div>"
    '<div class="tgme_page_additional">You are invited to the channel <strong>Some News Room</strong>.</div>',
    title="Telegram: Join Channel",
)

EXPIRED_INVITE = _page(
    '<div class="tgme_page_icon"><i class="tgme_icon_group"></i></div>'
    '<div class="tgme_page_action"><a class="tgme_action_button_new" href="tg://join?invite=AbCdEfGh12345678">'
    "Join Group</a></div>",
    title="Telegram: Join Group Chat",
    head='<meta name="robots" content="noindex, nofollow">',
)


def test_channel_invite_page() -> None:
    page = parse_profile(CHANNEL_INVITE, url="https://t.me/+AbCdEfGh12345678")
    assert (page.state, page.type, page.is_invite) == (VALID, C, True)
    assert page.invite_hash == "AbCdEfGh12345678"
    assert page.subscribers == 12_500
    assert page.title == "Some News Room"
    assert page.description == "Line one\nline two"
    assert page.avatar_url == "https://cdn.example/a.jpg"
    assert page.problems == ()


def test_expired_invite_page() -> None:
    page = parse_profile(EXPIRED_INVITE, url="t.me/joinchat/AbCdEfGh12345678")
    assert page.state is PageState.EXPIRED_INVITE
    assert page.invite_hash == "AbCdEfGh12345678"
    assert page.title is None and page.members is None
    assert parse_profile(EXPIRED_INVITE).state is PageState.EXPIRED_INVITE  # the page's tg://join says invite


def test_invalid_invite_sentence_without_icon() -> None:
    html = _page('<div class="tgme_page_description">Sorry, this invite link is invalid or expired.</div>')
    assert parse_profile(html, url="https://t.me/+AbCdEfGh12345678").state is PageState.EXPIRED_INVITE


def test_group_with_abbreviated_counts_and_verified_badge() -> None:
    html = _page(
        '<div class="tgme_page_title"><span>Big Group</span><i class="verified-icon"> ✔</i></div>'
        '<div class="tgme_page_extra">1.2M members, 3.4K online</div>'
        '<div class="tgme_page_action"><a href="tg://resolve?domain=BigGroup">View in Telegram</a></div>'
    )
    page = parse_profile(html)
    assert (page.type, page.members, page.online, page.verified) == (G, 1_200_000, 3_400, True)
    assert page.title == "Big Group"
    assert page.username == "biggroup"


@pytest.mark.parametrize(
    ("button", "extra", "additional", "expected"),
    [
        ("Start Bot", "", "", B),
        ("Send Message", "", "", U),
        ("Join Group", "", "", G),
        ("Join Channel", "", "", C),
        ("View in Telegram", "1 subscriber", "", C),
        ("View in Telegram", "5 members", "", G),
        ("View in Telegram", "", "you can view and join <strong>X</strong> right away", EntityType.UNKNOWN),
        ("Open", "", "If you have Telegram, you can launch <strong>X</strong> right away.", B),
        ("Open", "", "If you have Telegram, you can contact <strong>X</strong> right away.", U),
    ],
)
def test_type_signals(button: str, extra: str, additional: str, expected: EntityType) -> None:
    html = _page(
        '<div class="tgme_page_title"><span>X</span></div>'
        + (f'<div class="tgme_page_extra">{extra}</div>' if extra else "")
        + f'<div class="tgme_page_action"><a href="tg://resolve?domain=somename">{button}</a></div>'
        + (f'<div class="tgme_page_additional">{additional}</div>' if additional else "")
    )
    page = parse_profile(html)
    assert page.type is expected
    assert (expected is EntityType.UNKNOWN) == any("type not recognised" in p for p in page.problems)


def test_preview_link_alone_means_channel() -> None:
    html = _page(
        '<div class="tgme_page_title"><span>X</span></div>'
        '<div class="tgme_page_action"><a href="tg://resolve?domain=somename">View in Telegram</a></div>'
        '<div class="tgme_page_context_link_wrap">'
        '<a class="tgme_page_context_link" href="/s/somename">Preview</a></div>'
    )
    page = parse_profile(html)
    assert (page.type, page.has_web_preview) == (C, True)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "not html at all",
        "<html><body><h1>429 Too Many Requests</h1></body></html>",
        "\x00\x01\x02<<<>>>",
        b"\xff\xfe\x00garbage",
    ],
)
def test_not_a_preview_page_is_unknown_with_a_problem(html: str | bytes) -> None:
    page = parse_profile(html, url="https://t.me/durov")
    assert page.state is PageState.UNKNOWN
    assert page.problems
    assert page.username == "durov"


def test_truncated_page_keeps_what_it_read() -> None:
    real = CORPUS / "profile" / "python-group-profile.html"
    full = real.read_text(encoding="utf-8") if real.is_file() else None
    html = (
        full
        if full is not None
        else _page(
            '<div class="tgme_page_title"><span>Python</span></div>'
            '<div class="tgme_page_extra">97 957 members, 4 138 online</div><div class="tgme_page_description">A gr'
        )
    )
    cut = html[: html.index("tgme_page_description") + 60]
    page = parse_profile(cut, url="https://t.me/python")
    assert (page.state, page.title, page.members, page.online) == (VALID, "Python", 97_957, 4_138)
    assert page.type is G
    assert "no action button" in page.problems


def test_frame_without_title_or_not_found_mark_is_unknown() -> None:
    page = parse_profile(_page('<div class="tgme_page_extra">5 members</div>'), url="https://t.me/somename")
    assert page.state is PageState.UNKNOWN
    assert any("without a title" in p for p in page.problems)


def test_unparsed_counters_and_bad_url_are_problems() -> None:
    html = _page(
        '<div class="tgme_page_title"><span>X</span></div><div class="tgme_page_extra">lots of 12 people maybe</div>'
        '<div class="tgme_page_action"><a href="tg://resolve?domain=somename">Send Message</a></div>'
    )
    page = parse_profile(html, url="https://example.com/x")
    assert page.state is VALID and page.counters == {}
    assert page.counters_text == "lots of 12 people maybe"
    assert any("counters not understood" in p for p in page.problems)
    assert any("not a Telegram username" in p for p in page.problems)


def test_page_for_another_username_is_reported() -> None:
    html = _page(
        '<div class="tgme_page_title"><span>X</span></div>'
        '<div class="tgme_page_action"><a href="tg://resolve?domain=othername">Send Message</a></div>'
    )
    page = parse_profile(html, url="https://t.me/askedname")
    assert page.username == "askedname"
    assert any("@othername" in p for p in page.problems)


@settings(max_examples=60)
@given(st.text(max_size=300))
def test_never_raises(text: str) -> None:
    page = parse_profile(text)
    assert isinstance(page, ProfilePage)


@settings(max_examples=60)
@given(st.integers(min_value=0, max_value=len(CHANNEL_INVITE)))
def test_any_truncation_never_raises(cut: int) -> None:
    page = parse_profile(CHANNEL_INVITE[:cut], url="https://t.me/+AbCdEfGh12345678")
    assert page.invite_hash == "AbCdEfGh12345678"
    assert page.state in (VALID, PageState.UNKNOWN)


# --- blocked channels and groups (takedown re-checks read these) ----------------------------------


def _blocked(
    notice: str, where: str = "description", title: str | None = "Some Room", extra: str = "1 234 subscribers"
) -> str:
    block = f'<div class="tgme_page_{where}">{notice}</div>'
    return _page(
        (f'<div class="tgme_page_title"><span dir="auto">{title}</span></div>' if title else "")
        + (f'<div class="tgme_page_extra">{extra}</div>' if extra else "")
        + block
        + '<div class="tgme_page_action"><a href="tg://resolve?domain=someroom">View in Telegram</a></div>'
    )


@pytest.mark.parametrize(
    ("notice", "where", "expected_type"),
    [
        ("This channel can't be displayed because it violated Telegram's Terms of Service.", "description", C),
        ("This channel can’t be displayed because it violated Telegram’s Terms of Service.", "description", C),
        ("This channel can&#39;t be displayed because it was used to spread spam.", "additional", C),
        ("This group can't be displayed because it violated Telegram's Terms of Service.", "description", G),
        ("This channel is blocked because it was used to spread prohibited content.", "additional", C),
        ("  This channel is unavailable due to copyright infringement.", "description", C),
    ],
)
def test_blocked_page(notice: str, where: str, expected_type: EntityType) -> None:
    page = parse_profile(_blocked(notice, where, extra=""), url="https://t.me/someroom")
    assert page.state is PageState.BLOCKED
    assert page.blocked_notice is not None and page.blocked_notice.startswith("This ")
    assert page.blocked_notice.endswith(".")
    assert (page.username, page.title) == ("someroom", "Some Room")
    assert page.type is expected_type, "the notice names the room's kind when nothing else does"
    assert not page.has_web_preview and not page.is_private
    assert page.problems == ()


def test_blocked_page_keeps_its_counters() -> None:
    page = parse_profile(_blocked("This channel can't be displayed because it violated the rules."))
    assert (page.state, page.type, page.subscribers, page.title) == (PageState.BLOCKED, C, 1234, "Some Room")


def test_blocked_page_without_title_still_says_blocked() -> None:
    page = parse_profile(_blocked("This group can't be displayed because it violated the rules.", title=None))
    assert page.state is PageState.BLOCKED
    assert page.title is None and page.blocked_notice == "This group can't be displayed because it violated the rules."


@pytest.mark.parametrize(
    "description",
    [
        "News every morning. This channel can't be displayed in some apps, use the web.",  # quoted mid-text
        "Why does this channel cannot load? Ask the admins.",
        "A channel about blocked drains and plumbing.",
    ],
)
def test_description_mentioning_blocking_is_not_a_block(description: str) -> None:
    page = parse_profile(_blocked(description), url="https://t.me/someroom")
    assert page.state is VALID and page.blocked_notice is None
    assert page.description == description


def test_private_note_is_read() -> None:
    html = _page(
        '<div class="tgme_page_title"><span>Closed Room</span></div>'
        '<div class="tgme_page_extra">12 subscribers</div>'
        '<div class="tgme_page_action"><a href="tg://resolve?domain=closedroom">Join Channel</a></div>'
        '<div class="tgme_page_additional">This channel is private. If you have <strong>Telegram</strong>, '
        "you can ask to join <strong>Closed Room</strong>.</div>"
    )
    page = parse_profile(html, url="https://t.me/closedroom")
    assert (page.state, page.type, page.is_private, page.blocked_notice) == (VALID, C, True, None)
