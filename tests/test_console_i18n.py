"""The console in Korean: no page shows an English catalog string untranslated, no template holds
bare English text, the language follows the person's choice (kept with the session) before the
browser's, times are shown in the reader's zone with UTC on hover, numbers per locale, and no
field is left blank.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crawler.api.app import build_app
from crawler.api.modules import ALL_MODULES
from crawler.console.render import TEMPLATES, environment
from crawler.ingest import Ingest
from crawler.investigate.ops import ALERT_KINDS
from foundation import i18n
from storage.client import Store
from tests.console_world import World, build_world
from tests.test_console import CSRF, sign_in

Client = TestClient[web.Request, web.Application]
#: Latin words a template may hold as they are: names, formats and the English switch label
ALLOWED_WORDS = {"tgwatch", "SHA", "MD", "English", "v"}
#: names of formats and hashes: the same in both languages, so never "untranslated"
TECHNICAL = {"MD5", "PDQ", "CSV", "JSON", "JSON Lines", "SHA-256", "GIF"}
HUMAN_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label")
#: a table cell or a fact left empty: an unknown value is shown as "—", never as nothing
BLANK = re.compile(r"<t[dh][^>]*>\s*</t[dh]>|<dd[^>]*>\s*</dd>")
#: stored values a page must show in words (``label(...)``), never as they are stored
RAW_VALUES = {*ALERT_KINDS, "no_preview", "not_found"}
#: set TGWATCH_DUMP_PAGES=DIR to keep the Korean pages of the walk for a person to read
DUMP = Path(os.environ["TGWATCH_DUMP_PAGES"]) if os.environ.get("TGWATCH_DUMP_PAGES") else None


@pytest.fixture
async def world(store: Store, ingest: Ingest, tmp_path: Path) -> World:
    return await build_world(store, ingest, tmp_path)


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(store, world.case.settings, ALL_MODULES))) as c:
        yield c


class VisibleText(HTMLParser):
    """Text a person reads: text nodes and the attributes a screen reader or a hover shows."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # a report to a platform is shown verbatim, in the language it is sent in: a document, not words of the console
        if tag in ("script", "style") or any(k == "data-verbatim" for k, _ in attrs) or tag in self._skipping:
            self._skipping.append(tag)
        self.chunks += [v for k, v in attrs if k in HUMAN_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.chunks.append(data.strip())


def visible(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks


def english_only() -> list[tuple[str, str]]:
    """(id, the literal English words) of every console message whose Korean differs."""
    found = []
    for msgid in i18n.msgids("console."):
        en, ko = i18n.translated("en", msgid), i18n.translated("ko", msgid)
        if en and ko and en != ko:
            longest = max(re.split(r"\{[a-z_]+\}", en), key=len).strip(" ,.:;()")
            if longest not in TECHNICAL:
                found.append((msgid, longest))
    return found


def untranslated(chunks: list[str], catalog: list[tuple[str, str]]) -> list[str]:
    """English catalog text shown on a Korean page: a whole chunk, or two words and more inside one."""
    hits = []
    for chunk in chunks:
        for msgid, words in catalog:
            if not words:
                continue
            if chunk.strip(" ,.:;()·") == words or (" " in words and words in chunk):
                hits.append(f"{msgid}: {chunk!r}")
    return hits


async def choose(client: Client, lang: str) -> None:
    page = await client.get("/console/alerts")
    csrf = CSRF.search(await page.text())
    assert csrf is not None
    resp = await client.post(
        "/console/language",
        data={"lang": lang, "csrf_token": csrf.group(1), "next": "/console/alerts"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console/alerts"


async def create_takedown(client: Client, world: World) -> str:
    csrf = CSRF.search(await (await client.get("/console/alerts")).text())
    assert csrf is not None
    resp = await client.post(
        "/console/takedowns/create",
        allow_redirects=False,
        data={"alert": world.alert, "reason": "sexual_deepfake", "csrf_token": csrf.group(1)},
    )
    assert resp.status == 303
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_no_console_page_shows_english_to_a_korean_reader(client: Client, world: World) -> None:
    await sign_in(client, world.admin)
    request_id = await create_takedown(client, world)
    await choose(client, "ko")
    catalog = english_only()
    problems: dict[str, list[str]] = {}
    pages = [*world.paths(request_id)]
    for path in pages:
        resp = await client.get(path)
        assert resp.status == (404 if path.endswith("/nope") else 200), path
        html = await resp.text()
        assert '<html lang="ko">' in html, path
        hits = untranslated(visible(html), catalog)
        hits += [f"blank field: {blank}" for blank in BLANK.findall(html)]
        hits += [f"stored value shown raw: {chunk}" for chunk in visible(html) if chunk in RAW_VALUES]
        if hits:
            problems[path] = hits
        if DUMP:
            (DUMP / (re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")[:60] + ".html")).write_text(html)
    csrf = CSRF.search(await (await client.get("/console/alerts")).text())
    assert csrf is not None
    reveal = await client.post(
        f"/console/media/{world.case.sha}/reveal", data={"csrf_token": csrf.group(1), "message": "alpha_news/2"}
    )
    assert reveal.status == 200
    hits = untranslated(visible(await reveal.text()), catalog)
    if hits:
        problems["reveal"] = hits
    client.session.cookie_jar.clear()
    login = await client.get("/console/login", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    hits = untranslated(visible(await login.text()), catalog)
    if hits:
        problems["/console/login"] = hits
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_the_walk_catches_an_untranslated_string() -> None:
    catalog = english_only()
    html = "<p>경보</p><p>Compare with the list entry</p><td title='Takedown reason'>x</td>"
    hits = untranslated(visible(html), catalog)
    assert any("view_match" in h for h in hits) and any("takedown_reason" in h for h in hits)
    assert not untranslated(visible("<p>경보가 없습니다.</p><p>Shared picture</p>"), catalog)


def template_text(name: str) -> str:
    """The literal text of a template: what is left once every Jinja tag and expression is taken out."""
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    return "".join(value if kind == "data" else " " for _, kind, value in environment().lex(source))


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_hold_no_bare_english(name: str) -> None:
    text = re.sub(r"<code>.*?</code>", " ", template_text(name), flags=re.S)
    shown = " ".join(visible(text))
    words = set(re.findall(r"[A-Za-z]{2,}", shown)) - ALLOWED_WORDS
    assert not words, f"{name}: put these through t(): {sorted(words)}"


def test_every_message_id_a_template_uses_exists_in_both_catalogs() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(["']([a-z_.0-9]+)["']""", path.read_text(encoding="utf-8")))
    # an id ending in "." or "_" is the prefix of a computed one (``t("console.x.kind_" ~ k)``):
    # some id must start with it
    prefixes = {m for m in used if m.endswith((".", "_"))}
    missing = [m for m in used - prefixes if not (i18n.translated("ko", m) and i18n.translated("en", m))]
    missing += [p for p in prefixes if not i18n.msgids(p)]
    assert used and not missing, missing
    try:
        environment().from_string("{{ t('x') }}").render()
    except jinja2.UndefinedError:
        pass  # t comes from the request, never a global: a page without a reader cannot render
    else:
        raise AssertionError("templates must get t() per request")


async def test_the_chosen_language_is_kept_with_the_session_before_accept_language(
    client: Client, world: World
) -> None:
    await sign_in(client, world.monitor)
    page = await client.get("/console/alerts", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    assert '<html lang="ko">' in await page.text(), "no choice yet: the browser's language"
    await choose(client, "en")
    html = await (await client.get("/console/alerts", headers={"Accept-Language": "ko-KR,ko;q=0.9"})).text()
    assert '<html lang="en">' in html and ">Alerts</h1>" in html, "the person's choice wins"
    await choose(client, "ko")
    html = await (await client.get("/console/alerts")).text()
    assert '<html lang="ko">' in html and ">경보</h1>" in html and 'aria-current="true">한국어' in html
    csrf = CSRF.search(html)
    assert csrf is not None
    bad = await client.post("/console/language", data={"lang": "fr", "csrf_token": csrf.group(1)})
    assert bad.status == 400
    forged = await client.post("/console/language", data={"lang": "en"}, allow_redirects=False)
    assert forged.status == 403, "a language change is a state change: CSRF-checked"
    away = await client.post(
        "/console/language",
        allow_redirects=False,
        data={"lang": "ko", "csrf_token": csrf.group(1), "next": "https://evil.example/"},
    )
    assert away.headers["Location"] == "/console/"


async def test_the_sign_in_page_language_carries_into_the_session(client: Client, world: World) -> None:
    form = await (await client.get("/console/login", params={"lang": "ko"})).text()
    assert '<html lang="ko">' in form and "로그인" in form and 'name="lang" value="ko"' in form
    csrf = CSRF.search(form)
    assert csrf is not None
    resp = await client.post(
        "/console/login", allow_redirects=False, data={"token": "tgw_wrong", "csrf_token": csrf.group(1), "lang": "ko"}
    )
    assert resp.status == 401 and "유효하지 않은 토큰" in await resp.text()
    form = await (await client.get("/console/login", params={"lang": "ko"})).text()
    csrf = CSRF.search(form)
    assert csrf is not None
    resp = await client.post(
        "/console/login",
        allow_redirects=False,
        data={"token": world.monitor, "csrf_token": csrf.group(1), "lang": "ko"},
    )
    assert resp.status == 303
    html = await (await client.get("/console/alerts", headers={"Accept-Language": "en"})).text()
    assert '<html lang="ko">' in html


async def test_times_follow_the_zone_of_the_language_with_utc_on_hover(client: Client, world: World) -> None:
    await sign_in(client, world.monitor)
    await choose(client, "ko")
    html = await (await client.get("/console/alerts?status=open")).text()
    # the alert was raised 2024-05-01 12:00 UTC: 21:00 in Seoul
    assert '<time datetime="2024-05-01T12:00:00Z" title="2024-05-01 12:00:00 UTC">2024. 5. 1. 오후 9:00:00' in html
    await choose(client, "en")
    html = await (await client.get("/console/alerts?status=open")).text()
    assert '<time datetime="2024-05-01T12:00:00Z" title="2024-05-01 12:00:00 UTC">May 1, 2024, 12:00:00' in html


async def test_numbers_follow_the_locale(store: Store, world: World) -> None:
    from crawler.console.render import environment

    page = environment().from_string("{{ 1234567|num }} {{ 0.5|num }} {{ none|num }} {{ 'x'|num }}")
    assert page.render(lang="en", none=None) == "1,234,567 0.5 — x"
    assert page.render(lang="ko", none=None) == "1,234,567 0.5 — x"
    when = environment().from_string("{{ at|when }}")
    assert when.render(lang="ko", tz="Asia/Seoul", at="") == "—", "an unknown time is shown, not left blank"


def test_durations_are_in_the_readers_language() -> None:
    from crawler.console.takedowns import human_seconds

    assert human_seconds(93784) == "1d 2h" and human_seconds(93784, "ko") == "1일 2시간"
    assert human_seconds(30, "ko") == "30초" and human_seconds(None, "ko") == "–"


def test_the_takedown_report_words_come_from_the_catalogs() -> None:
    """The report template holds no words of its own; both catalogs hold all of them."""
    from crawler.takedowns.render import REPORT_TEMPLATE, available_languages
    from crawler.takedowns.render import TEMPLATES as REPORTS

    source = (REPORTS / REPORT_TEMPLATE).read_text(encoding="utf-8")
    literal = "".join(value for _, kind, value in environment().lex(source) if kind == "data")
    assert set(re.findall(r"[A-Za-z]{2,}", literal)) <= {"Subject", "SHA", "MD"}
    used = set(re.findall(r"""t\(["']([a-z_.]+)["']""", source)) | {"report.wrap_width"}
    ids = i18n.msgids("report.")
    assert used <= set(ids) and available_languages() == ["en", "ko"]
    for msgid in ids:
        assert i18n.translated("ko", msgid) and i18n.translated("en", msgid), msgid
