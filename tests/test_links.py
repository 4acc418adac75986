"""The t.me link normalizer: every spelling → one canonical form and kind."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from foundation.links import KNOWN_SHORT_BOTS, RESERVED, LinkKind, TgLink, find_links, is_valid_username, normalize

HASH = "AbCdEf_-1234xYz0"
OLD_HASH = "AAAAAEHbEkejzxUjAUCzYg"

U = LinkKind.USERNAME
I = LinkKind.INVITE  # noqa: E741
M = LinkKind.MESSAGE
F = LinkKind.FOLDER

TABLE: list[tuple[str, LinkKind, str]] = [
    # public usernames, every host and scheme
    ("t.me/durov", U, "https://t.me/durov"),
    ("t.me/Durov", U, "https://t.me/durov"),
    ("https://t.me/durov", U, "https://t.me/durov"),
    ("http://t.me/durov/", U, "https://t.me/durov"),
    ("https://www.t.me/durov", U, "https://t.me/durov"),
    ("HTTPS://T.ME/DUROV", U, "https://t.me/durov"),
    ("//t.me/durov", U, "https://t.me/durov"),
    ("telegram.me/durov", U, "https://t.me/durov"),
    ("https://www.telegram.me/durov", U, "https://t.me/durov"),
    ("telegram.dog/durov", U, "https://t.me/durov"),
    ("https://t.me:443/durov", U, "https://t.me/durov"),
    ("  https://t.me/durov  ", U, "https://t.me/durov"),
    ("<https://t.me/durov>", U, "https://t.me/durov"),
    ("https://t.me/durov?utm_source=site&utm_medium=x", U, "https://t.me/durov"),
    ("https://t.me/durov#section", U, "https://t.me/durov"),
    ("t.me/s/durov", U, "https://t.me/durov"),
    ("https://t.me/s/durov?before=500", U, "https://t.me/durov"),
    ("durov.t.me", U, "https://t.me/durov"),
    ("https://Durov.t.me/", U, "https://t.me/durov"),
    ("https://t.me/BotFather?start=abc", U, "https://t.me/botfather"),
    ("t.me/durov/s/12", U, "https://t.me/durov"),  # a story: points at the channel
    ("t.me/some_bot/app", U, "https://t.me/some_bot"),  # a mini app: points at the bot
    ("t.me/abcd", U, "https://t.me/abcd"),  # 4-char collectible username in a link
    ("t.me/gif", U, "https://t.me/gif"),  # official short inline bot
    ("tg://resolve?domain=durov", U, "https://t.me/durov"),
    ("tg:resolve?domain=Durov&start=x", U, "https://t.me/durov"),
    ("@durov", U, "https://t.me/durov"),
    ("@Rules_for_Python", U, "https://t.me/rules_for_python"),
    ("@vid", U, "https://t.me/vid"),
    # public posts
    ("t.me/durov/123", M, "https://t.me/durov/123"),
    ("https://t.me/durov/123?single", M, "https://t.me/durov/123"),
    ("https://t.me/durov/123?comment=45", M, "https://t.me/durov/123"),
    ("t.me/s/durov/123", M, "https://t.me/durov/123"),
    ("https://telegram.dog/Durov/7", M, "https://t.me/durov/7"),
    ("t.me/python/1000/2000", M, "https://t.me/python/2000"),  # topic/message
    ("durov.t.me/123", M, "https://t.me/durov/123"),
    ("tg://resolve?domain=durov&post=123", M, "https://t.me/durov/123"),
    # private posts
    ("t.me/c/1234567890/55", M, "https://t.me/c/1234567890/55"),
    ("https://t.me/c/1234567890/9/55?thread=9", M, "https://t.me/c/1234567890/55"),
    ("tg://privatepost?channel=1234567890&post=55", M, "https://t.me/c/1234567890/55"),
    # invites (hash case kept)
    (f"t.me/+{HASH}", I, f"https://t.me/+{HASH}"),
    (f"https://t.me/+{HASH}?utm=x", I, f"https://t.me/+{HASH}"),
    (f"https://telegram.me/joinchat/{OLD_HASH}", I, f"https://t.me/+{OLD_HASH}"),
    (f"t.me/joinchat/{HASH}", I, f"https://t.me/+{HASH}"),
    (f"tg://join?invite={HASH}", I, f"https://t.me/+{HASH}"),
    # folders
    ("t.me/addlist/AbC_d-9", F, "https://t.me/addlist/AbC_d-9"),
    ("https://t.me/addlist/AbC_d-9?x=1", F, "https://t.me/addlist/AbC_d-9"),
    ("tg://addlist?slug=AbC_d-9", F, "https://t.me/addlist/AbC_d-9"),
]

IGNORED = [
    "",
    "   ",
    "durov",
    "hello world",
    "https://example.com/durov",
    "https://t.me.evil.example/durov",
    "https://t.me@evil.example/durov",
    "https://evil.example/t.me/durov",
    "ftp://t.me/durov",
    "https://t.me/",
    "https://t.me/proxy?server=1.2.3.4&port=443&secret=abc",
    "tg://proxy?server=1.2.3.4&port=443&secret=abc",
    "https://t.me/socks?server=1.2.3.4&port=1080",
    "https://t.me/share/url?url=https://example.com",
    "https://t.me/login/123456",
    "https://t.me/setlanguage/de",
    "https://t.me/addstickers/SomePack",
    "https://t.me/addemoji/SomePack",
    "https://t.me/bg/abcdef",
    "https://t.me/confirmphone?phone=1&hash=2",
    "https://t.me/invoice/abc",
    "https://t.me/boost/durov",
    "https://t.me/iv?url=https://example.com&rhash=1",
    "https://t.me/joinchat",
    "https://t.me/joinchat/",
    "https://t.me/addlist",
    "https://t.me/c/123",
    "https://t.me/c/abc/5",
    "https://t.me/c/123/0",
    "https://t.me/+79261234567",  # a phone number
    "https://t.me/+short",
    "tg://resolve?phone=79261234567",
    "tg://join",
    "tg://privatepost?channel=1",
    "tg://settings",
    "@abcd",  # 4 characters only in link forms
    "@a",
    "@durov_",
    "t.me/du__rov",
    "t.me/1durov",
    "t.me/_durov",
    "t.me/dur-ov",
    "t.me/" + "a" * 33,
    "https://www.t.me",
    "www.t.me/",
    "https://[t.me/durov",
    "t.me/\u212aurov",  # KELVIN SIGN lower-cases to ASCII "k"
    "t.me/dürov",
]


@pytest.mark.parametrize(("text", "kind", "canonical"), TABLE)
def test_every_form(text: str, kind: LinkKind, canonical: str) -> None:
    link = normalize(text)
    assert link is not None, text
    assert (link.kind, link.canonical) == (kind, canonical)
    assert normalize(link.canonical) == link


@pytest.mark.parametrize("text", IGNORED)
def test_ignored_forms(text: str) -> None:
    assert normalize(text) is None


def test_fields_of_each_kind() -> None:
    assert normalize("t.me/Durov") == TgLink(U, "https://t.me/durov", username="durov")
    assert normalize("t.me/s/Durov/9") == TgLink(M, "https://t.me/durov/9", username="durov", msg_id=9)
    assert normalize("t.me/c/42/9") == TgLink(M, "https://t.me/c/42/9", msg_id=9, channel_id=42)
    assert normalize(f"t.me/+{HASH}") == TgLink(I, f"https://t.me/+{HASH}", invite_hash=HASH)
    assert normalize("t.me/addlist/XyZ") == TgLink(F, "https://t.me/addlist/XyZ", slug="XyZ")


def test_invite_hash_is_case_sensitive() -> None:
    lower, upper = normalize("t.me/+abcdefgh1234"), normalize("t.me/+ABCDEFGH1234")
    assert lower is not None and upper is not None
    assert lower != upper


def test_reserved_paths_are_never_usernames() -> None:
    for name in RESERVED:
        link = normalize(f"https://t.me/{name}")
        assert link is None or link.kind is not LinkKind.USERNAME, name
        assert normalize(f"@{name}") is None, name


def test_find_links_in_free_text() -> None:
    text = (
        f"Join @durov and https://t.me/+{HASH}. Mirror: (t.me/Python/12?single), "
        "also tg://resolve?domain=telegram; mail me at someone@example.com, "
        "see www.telegram.me/durov again, at.me/foo is not ours, x.t.me neither, "
        "proxy https://t.me/proxy?server=x and the folder t.me/addlist/Fold3r!"
    )
    assert [link.canonical for link in find_links(text)] == [
        "https://t.me/durov",
        f"https://t.me/+{HASH}",
        "https://t.me/python/12",
        "https://t.me/telegram",
        "https://t.me/addlist/Fold3r",
    ]


def test_find_links_in_html_hrefs_text_and_mentions() -> None:
    html = (
        '<div><p>Rules: <a href="https://t.me/Rules_for_Python">@Rules_for_Python</a><br/>'
        '<a href="//telegram.org/faq">faq</a> <a href="tg://join?invite=' + HASH + '">join</a> '
        "ask @helper_bot or t.me/s/news_room/5</p>"
        '<script>var hidden = "t.me/hidden_one";</script>'
        "<style>.x{content:'@styled_one'}</style>"
        '<a href="/s/relative_one">relative hrefs are not resolved</a></div>'
    )
    links = find_links("first @durov", html)
    assert [link.canonical for link in links] == [
        "https://t.me/durov",
        "https://t.me/rules_for_python",
        f"https://t.me/+{HASH}",
        "https://t.me/helper_bot",
        "https://t.me/news_room/5",
    ]


def test_find_links_deduplicates_keeping_first_order() -> None:
    text = "t.me/durov @Durov https://telegram.me/durov t.me/s/durov durov.t.me @python"
    assert [link.canonical for link in find_links(text)] == ["https://t.me/durov", "https://t.me/python"]


def test_find_links_survives_broken_html() -> None:
    html = '<a href="t.me/ok_name"><div <<<<a href=\'https://t.me/+' + HASH + "'><!-- <![CDATA[ &#xffffff; </"
    canonicals = [link.canonical for link in find_links("", html)]
    assert "https://t.me/ok_name" in canonicals


# --- properties ---------------------------------------------------------------------------------

_LETTERS = string.ascii_lowercase
_INNER = _LETTERS + string.digits + "_"


@st.composite
def usernames(draw: st.DrawFn, min_size: int = 5, max_size: int = 32) -> str:
    size = draw(st.integers(min_value=min_size, max_value=max_size))
    first = draw(st.sampled_from(_LETTERS))
    middle = draw(st.text(alphabet=_INNER, min_size=size - 2, max_size=size - 2))
    last = draw(st.sampled_from(_LETTERS + string.digits))
    name = first + middle + last
    assume("__" not in name and name not in RESERVED)
    return name


hashes = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=16, max_size=32).filter(
    lambda value: not value.isdigit()
)
msg_ids = st.integers(min_value=1, max_value=2**31 - 1)
channel_ids = st.integers(min_value=1, max_value=10**12)
prefixes = st.sampled_from(
    [
        "",
        "//",
        "http://",
        "https://",
        "www.",
        "http://www.",
        "https://www.",
    ]
)
hosts = st.sampled_from(["t.me", "telegram.me", "telegram.dog", "T.ME", "Telegram.Me"])
suffixes = st.sampled_from(["", "/", "?utm_source=x", "#frag", "/?a=1&b=2#c"])


def _mixed_case(data: st.DataObject, text: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.upper() if flip else char for char, flip in zip(text, flips, strict=True))


@given(st.data())
def test_username_round_trips_across_spellings(data: st.DataObject) -> None:
    name = data.draw(usernames())
    shown = _mixed_case(data, name)
    spelling = data.draw(
        st.sampled_from(
            [
                "{p}{h}/{n}{s}",
                "{p}{h}/s/{n}{s}",
                "tg://resolve?domain={n}",
                "@{n}",
                "https://{n}.t.me{s}",
                "{n}.t.me",
            ]
        )
    )
    text = spelling.format(p=data.draw(prefixes), h=data.draw(hosts), n=shown, s=data.draw(suffixes))
    link = normalize(text)
    assert link == TgLink(LinkKind.USERNAME, f"https://t.me/{name}", username=name), text
    assert normalize(link.canonical) == link


@given(st.data())
def test_public_post_round_trips(data: st.DataObject) -> None:
    name, msg = data.draw(usernames()), data.draw(msg_ids)
    spelling = data.draw(
        st.sampled_from(
            ["{p}{h}/{n}/{m}{s}", "{p}{h}/s/{n}/{m}{s}", "{p}{h}/{n}/{m}?single", "tg://resolve?domain={n}&post={m}"]
        )
    )
    text = spelling.format(p=data.draw(prefixes), h=data.draw(hosts), n=name.upper(), m=msg, s=data.draw(suffixes))
    link = normalize(text)
    assert link == TgLink(LinkKind.MESSAGE, f"https://t.me/{name}/{msg}", username=name, msg_id=msg), text
    assert normalize(link.canonical) == link


@given(st.data())
def test_private_post_round_trips(data: st.DataObject) -> None:
    channel, msg = data.draw(channel_ids), data.draw(msg_ids)
    spelling = data.draw(st.sampled_from(["{p}{h}/c/{c}/{m}{s}", "tg://privatepost?channel={c}&post={m}"]))
    text = spelling.format(p=data.draw(prefixes), h=data.draw(hosts), c=channel, m=msg, s=data.draw(suffixes))
    link = normalize(text)
    expected = TgLink(LinkKind.MESSAGE, f"https://t.me/c/{channel}/{msg}", msg_id=msg, channel_id=channel)
    assert link == expected, text
    assert normalize(link.canonical) == link


@given(st.data())
def test_invite_round_trips_and_keeps_case(data: st.DataObject) -> None:
    invite = data.draw(hashes)
    spelling = data.draw(st.sampled_from(["{p}{h}/+{x}{s}", "{p}{h}/joinchat/{x}{s}", "tg://join?invite={x}"]))
    text = spelling.format(p=data.draw(prefixes), h=data.draw(hosts), x=invite, s=data.draw(suffixes))
    link = normalize(text)
    assert link == TgLink(LinkKind.INVITE, f"https://t.me/+{invite}", invite_hash=invite), text
    assert normalize(link.canonical) == link


@given(st.data())
def test_folder_round_trips(data: st.DataObject) -> None:
    slug = data.draw(st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=40))
    text = f"{data.draw(prefixes)}{data.draw(hosts)}/addlist/{slug}{data.draw(suffixes)}"
    link = normalize(text)
    assert link == TgLink(LinkKind.FOLDER, f"https://t.me/addlist/{slug}", slug=slug), text
    assert normalize(link.canonical) == link


@given(st.text(alphabet=_INNER, min_size=1, max_size=3))
def test_rejects_too_short(name: str) -> None:
    assume(name not in KNOWN_SHORT_BOTS)
    assert normalize(f"https://t.me/{name}") is None or normalize(f"https://t.me/{name}").kind is not U  # type: ignore[union-attr]
    assert normalize(f"@{name}") is None


@given(usernames(min_size=4, max_size=4))
def test_four_characters_only_in_links(name: str) -> None:
    assume(name not in KNOWN_SHORT_BOTS)
    assert normalize(f"t.me/{name}") is not None
    assert normalize(f"@{name}") is None


@given(st.text(alphabet=_LETTERS, min_size=33, max_size=60))
def test_rejects_too_long(name: str) -> None:
    assert normalize(f"t.me/{name}") is None
    assert normalize(f"@{name}") is None


@given(usernames(max_size=30), st.sampled_from([*"-.!$%*+=~é", "ü", " ", "\u212a"]), st.integers(0, 31))
def test_rejects_bad_characters(name: str, bad: str, at: int) -> None:
    position = min(at, len(name))
    broken = name[:position] + bad + name[position:]
    link = normalize(f"@{broken}")
    assert link is None or link.username != broken.lower()
    web = normalize(f"https://t.me/{broken}")
    assert web is None or web.username != broken.lower()


@given(usernames(max_size=31), st.sampled_from(string.digits + "_"))
def test_rejects_bad_first_character(name: str, first: str) -> None:
    assert normalize(f"t.me/{first}{name}") is None
    assert normalize(f"@{first}{name}") is None


@given(usernames(max_size=31))
def test_rejects_trailing_or_double_underscore(name: str) -> None:
    assert normalize(f"t.me/{name}_") is None
    middle = len(name) // 2
    assert normalize(f"t.me/{name[:middle]}__{name[middle:]}") is None


@given(usernames())
def test_valid_username_predicate_matches_normalize(name: str) -> None:
    assert is_valid_username(name)
    assert normalize(f"@{name}") is not None


@given(st.text(max_size=200))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    link = normalize(text)
    assert link is None or normalize(link.canonical) == link
    for found in find_links(text, text):
        assert normalize(found.canonical) == found


_LINK_TOKENS = [
    *"t.me/+@:?&=#_-[]%ctgresolv19",
    *["://", "t.me/", "tg://", "resolve?domain=", "join?invite=", "joinchat/", "c/"],
]


@given(st.lists(st.sampled_from(_LINK_TOKENS), max_size=25).map("".join))
def test_never_raises_on_link_like_text(text: str) -> None:
    link = normalize(text)
    assert link is None or normalize(link.canonical) == link
    assert isinstance(find_links(text, f"<a href='{text}'>{text}</a>"), list)
