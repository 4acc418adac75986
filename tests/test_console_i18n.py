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
from crawler.console.render import TEMPLATES, environment
from crawler.ingest import Ingest
from crawler.investigate.ops import ALERT_KINDS
from crawler.server_modules import ALL_MODULES
from foundation import i18n
from storage.client import Store
from tests.console_world import PROBLEM_PAGES, World, build_world, seed_problems
from tests.test_console import CSRF, sign_in
from tests.test_investigate_api import T0

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
#: words code writes into what a page shows (a ledger entry's status, its kind): shown in words, never as they are
CODE_ENGLISH = ("awaiting signed head", "· takedown ·")
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
    """(id, the literal English words) of every console and error message whose Korean differs."""
    found = []
    for msgid in [*i18n.msgids("console."), *i18n.msgids("error.")]:
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
        hits += [f"English of the code: {chunk}" for chunk in visible(html) for w in CODE_ENGLISH if w in chunk]
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


#: forms and queries a person gets wrong, each answered by an error raised in code (a 400/404 page),
#: with the English words of the exception that must not reach a Korean reader
BAD_REQUESTS: list[tuple[str, str, dict[str, str], int, str]] = [
    ("POST", "/console/targets/add", {"name": "gamma_room", "cron": "every day"}, 400, "needs 5 fields"),
    ("POST", "/console/targets/add", {"name": "gamma_room", "every": "0s"}, 400, "must be positive"),
    ("POST", "/console/targets/add", {"name": "gamma_room", "every": "soon"}, 400, "duration"),
    ("POST", "/console/targets/add", {"name": "gamma_room", "every": "1h", "cron": "0 * * * *"}, 400, "not both"),
    ("POST", "/console/targets/add", {"name": "no such room!"}, 400, "not a channel username"),
    ("POST", "/console/targets/add", {"name": ""}, 400, "target name (username"),
    ("POST", "/console/targets/add", {"name": "gamma_room", "group": "nope"}, 400, "in the configuration"),
    ("POST", "/console/targets/add", {"name": "gamma_room", "priority": "high"}, 400, "whole number"),
    ("POST", "/console/targets/pause", {"name": "gamma_room", "action": "stop"}, 400, "pause or resume"),
    ("POST", "/console/targets/run-now", {"name": "zeta_room"}, 404, "no target"),
    ("POST", "/console/targets/remove", {"name": "zeta_room"}, 404, "no target"),
    ("POST", "/console/takedowns/create", {"alert": "nope"}, 400, "reason is required"),
    ("POST", "/console/takedowns/create", {"alert": "nope", "reason": "sexual_deepfake"}, 404, "no alert"),
    ("POST", "/console/candidates/review", {"link": "https://t.me/nobody_here", "action": "approve"}, 404, "candidate"),
    ("POST", "/console/alerts/status", {"key": "nope", "status": "gone"}, 400, "status must be one of"),
    ("GET", "/console/alerts?day=yesterday", {}, 400, "day must be a date"),
    ("GET", "/console/growth?days=0", {}, 400, "days must be"),
    ("GET", "/console/channels?sort=size", {}, 400, "sort must be"),
    ("GET", "/console/search?since=later", {}, 400, "ISO 8601"),
    ("GET", "/console/messages/alpha_news/999", {}, 404, "no message"),
    ("GET", "/console/takedowns/TD-999999", {}, 404, "no takedown request"),
]


def korean_problems(html: str, catalog: list[tuple[str, str]], english: list[str]) -> list[str]:
    """English a Korean reader would read on this page: catalog text, or stored/raised English words."""
    chunks = visible(html)
    hits = untranslated(chunks, catalog)
    hits += [f"English as stored or raised: {words!r}" for words in english if any(words in c for c in chunks)]
    return hits


async def test_errors_and_alerts_of_every_kind_read_korean(client: Client, world: World, store: Store) -> None:
    """Errors raised by code, errors recorded by runs and alerts of every kind, in Korean: no English
    sentence of the code is shown, and a recorded error's English text stays available (folded)."""
    stored = await seed_problems(store, world.case)
    await sign_in(client, world.admin)
    await choose(client, "ko")
    catalog = english_only()
    problems: dict[str, list[str]] = {}
    for path in PROBLEM_PAGES:
        resp = await client.get(path.format(sha=world.case.sha))
        assert resp.status == 200, path
        html = await resp.text()
        hits = korean_problems(html, catalog, list(stored.values()))
        hits += [f"stored value shown raw: {chunk}" for chunk in visible(html) if chunk in RAW_VALUES]
        if hits:
            problems[path] = hits
    csrf = CSRF.search(await (await client.get("/console/alerts")).text())
    assert csrf is not None
    for method, path, form, status, english in BAD_REQUESTS:
        if method == "POST":
            resp = await client.post(path, data={**form, "csrf_token": csrf.group(1)}, allow_redirects=False)
        else:
            resp = await client.get(path)
        html = await resp.text()
        assert resp.status == status, (path, form, resp.status, html[-600:])
        hits = korean_problems(html, catalog, [english])
        if "<details" in html:
            hits.append("a coded error needs no recorded detail")
        if hits:
            problems[f"{method} {path} {form}"] = hits
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())

    targets = await (await client.get("/console/targets?health=failing")).text()
    assert "출처가 요청 속도를 제한했습니다" in targets, "the run's error kind, in words"
    assert "rate limited, retry after 30s</code>" in targets, "the recorded text is kept, folded away"
    assert "delta_room" in targets and "찾을 수 없음" in targets, "a gone channel's run status in words"
    alerts = await (await client.get("/console/alerts?status=")).text()
    for words in ("demo-detector이(가) 미디어", "(synthetic 점수 0.97)", "다시 올라왔습니다",
                  "beta_chat/8에 다시 올라옴", "gamma_room 수집 실패", "epsilon_room 수집이 모든 재시도 후에도 실패",
                  "수집 대상 delta_room: 찾을 수 없음", "사람의 검토를 기다리는 감시 목록 일치",
                  "서로 다른 미디어 9건과 일치"):  # fmt: skip
        assert words in alerts, words

    await choose(client, "en")
    alerts = await (await client.get("/console/alerts?status=")).text()
    for words in ("demo-detector flagged media", "crawl of gamma_room failed", "was found removed and is online again",
                  "target delta_room: not found", "held for review (matched 9 distinct media)"):  # fmt: skip
        assert words in alerts, words
    resp = await client.post(
        "/console/targets/add", data={"name": "gamma_room", "cron": "x", "csrf_token": csrf.group(1)}
    )
    assert resp.status == 400 and "x is not a cron expression" in await resp.text()


async def test_the_hash_list_sync_is_a_time_in_the_readers_zone(client: Client, world: World) -> None:
    await sign_in(client, world.monitor)
    await choose(client, "ko")
    html = await (await client.get("/console/hashes")).text()
    # the world's list was synced at T0, 2024-05-01 12:00 UTC: 21:00 in Seoul, UTC on hover
    assert '<time datetime="2024-05-01T12:00:00Z" title="2024-05-01 12:00:00 UTC">2024. 5. 1. 오후 9:00:00' in html
    assert "2024-05-01T12:00:00Z" not in " ".join(visible(html)), "never the ISO text"


def test_an_error_raised_without_a_code_is_shown_by_its_kind_with_the_english_kept() -> None:
    from crawler.console.problems import describe, stored
    from foundation.errors import RateLimited, TgwatchError
    from storage.client import StoreError

    problem = describe(StoreError("update run: connection reset"), "ko")
    assert problem.text == "데이터베이스 오류가 발생했습니다." and problem.detail == "update run: connection reset"
    assert describe(TgwatchError("odd"), "ko").text == "문제가 발생했습니다."
    coded = describe(TgwatchError("no target x", code="targets.unknown", params={"name": "x"}), "ko")
    assert coded.text == "수집 대상 x이(가) 없습니다." and coded.detail is None
    # a code the catalogs lack, or a catalog entry wanting other parameters: the kind's words, never a KeyError
    assert describe(TgwatchError("odd", code="nope.nothing"), "en").text == "Something went wrong."
    assert describe(TgwatchError("odd", code="targets.unknown"), "en").text == "Something went wrong."
    recorded = stored(RateLimited(retry_after=5).to_doc(), "ko")
    assert recorded is not None and recorded.detail == "rate limited, retry after 5s"
    assert stored(None, "ko") is None


def test_every_error_code_raised_has_words_in_both_languages() -> None:
    """A ``code=`` anywhere in the code names a message both catalogs hold, and every parameter it
    uses is one some raise site passes."""
    root = Path(__file__).resolve().parents[1]
    codes: set[str] = set()
    for package in ("crawler", "storage", "config", "foundation"):
        for path in (root / package).rglob("*.py"):
            codes |= set(re.findall(r'\bcode="([a-z_]+\.[a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert len(codes) > 40
    missing = [c for c in codes if not (i18n.translated("ko", f"error.{c}") and i18n.translated("en", f"error.{c}"))]
    assert not missing, missing
    for msgid in i18n.msgids("error."):
        en, ko = i18n.translated("en", msgid), i18n.translated("ko", msgid)
        assert en and ko and set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", ko)), msgid


RAISE = re.compile(r"raise (BadQuery|NotFound|NotAuthorized|ConfigError|Conflict|InvalidChange|TooManyItems)\(")


def test_console_raise_sites_carry_a_code() -> None:
    """Every error a console page module or a service it calls for a form raises names its words."""
    root = Path(__file__).resolve().parents[1]
    files = [*(root / "crawler" / "console").glob("*.py"), root / "crawler" / "scheduling" / "manage.py",
             root / "crawler" / "investigate" / "filters.py", root / "crawler" / "investigate" / "ops.py",
             root / "crawler" / "investigate" / "service.py", root / "crawler" / "takedowns" / "service.py",
             root / "crawler" / "takedowns" / "items.py"]  # fmt: skip
    bare = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        for match in RAISE.finditer(source):
            call = source[match.end() : source.find("\n\n", match.end())]
            if "code=" not in call.split("raise ", 1)[0]:
                bare.append(f"{path.name}:{source[: match.start()].count(chr(10)) + 1}")
    assert not bare, bare


async def test_delivery_and_sending_failures_read_korean(client: Client, world: World, store: Store) -> None:
    """A notification's failure or hold and a takedown's failed sending: words of their kind in Korean,
    the English text the sink or sender gave kept verbatim (folded)."""
    from crawler.takedowns.api import service
    from storage.repos.notify import NotifyLogRepo

    log = NotifyLogRepo(store)
    for outcome, error in (("failed", "HTTP 502 from the webhook"), ("held", "rate limit: next window in 30s")):
        await log.record({"rule": "hotline", "sink": "webhook", "kind": "alert", "outcome": outcome, "attempt": 1,
                          "alerts": [world.alert], "error": error, "at_ts": T0.timestamp(), "at": T0})  # fmt: skip
    await sign_in(client, world.admin)
    request_id = await create_takedown(client, world)
    await service(client.server.app).record_failure(
        request_id, actor="token:boss", channel="email", attempt=1, error="SMTP 550 mailbox unavailable", sha256=None
    )
    await choose(client, "ko")
    catalog = english_only()
    english = ["HTTP 502 from the webhook", "rate limit: next window", "SMTP 550 mailbox unavailable"]
    notify = await (await client.get("/console/notify")).text()
    assert not korean_problems(notify, catalog, english)
    assert "알림을 전달하지 못했습니다. 다시 시도합니다." in notify and "규칙의 전송 한도로 보류되었습니다" in notify
    assert "HTTP 502 from the webhook</code>" in notify, "the sink's words are kept, folded"
    assert "경보 1건" in notify, "what was sent, in words"
    review = await (await client.get("/console/review")).text()
    assert not korean_problems(review, catalog, english)
    assert request_id in review, "the draft awaits review, with its failed sending"
    assert "email(으)로 보내기 실패" in review and "SMTP 550 mailbox unavailable</code>" in review
