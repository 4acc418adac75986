"""The web console: sign-in, session cookie flags, CSRF, roles, audited reveal, Korean text."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo
from tests.test_investigate_api import Case, load_case, token

Client = TestClient[web.Request, web.Application]
CSRF = re.compile(r'name="csrf_token" value="([0-9a-zA-Z_-]+)"')


@pytest.fixture
async def case(store: Store, ingest: Ingest, tmp_path: Path) -> Case:
    return await load_case(store, ingest, tmp_path)


@pytest.fixture
async def client(store: Store, case: Case) -> AsyncIterator[Client]:
    app = build_app(store, case.settings, ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


async def sign_in(client: Client, tok: str, next_path: str = "/console/") -> ClientResponse:
    form = await client.get("/console/login", params={"next": next_path})
    csrf = CSRF.search(await form.text())
    assert csrf is not None
    return await client.post(
        "/console/login",
        data={"token": tok, "csrf_token": csrf.group(1), "next": next_path},
        allow_redirects=False,
    )


async def test_pages_redirect_to_sign_in_and_sign_in_sets_a_safe_cookie(client: Client, store: Store) -> None:
    resp = await client.get("/console/search", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login?next=")
    inv = await token(store, Role.INVESTIGATOR, "ana")
    resp = await sign_in(client, inv, "/console/search?q=hello")
    assert resp.status == 303 and resp.headers["Location"] == "/console/search?q=hello"
    cookie = resp.cookies["tgwatch_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"], "plain HTTP in the test server; Secure is set whenever the request is HTTPS"
    page = await client.get("/console/search", params={"q": "hello"})
    html = await page.text()
    assert page.status == 200 and "alpha_news/1" in html and "첫 번째 소식" in html
    assert '<html lang="en">' in html and 'charset="utf-8"' in html and inv not in html, "no token in pages"
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in html and "style=" not in html
    audit = await store["audit"].find_one({"actor": "token:ana", "via": "console"})
    assert audit is not None and audit["action"] == "messages.search" and audit["filter"] == {"q": "hello"}


async def test_open_redirects_are_refused(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    resp = await sign_in(client, inv, "https://evil.example/")
    assert resp.headers["Location"] == "/console/"
    resp = await sign_in(client, inv, "//evil.example/")
    assert resp.headers["Location"] == "/console/"


async def test_failed_sign_ins_are_rate_limited(client: Client, store: Store) -> None:
    statuses = [(await sign_in(client, f"tgw_wrong{i}")).status for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    good = await token(store, Role.INVESTIGATOR)
    assert (await sign_in(client, good)).status == 303, "a valid token always signs in; only failures wait"


async def test_sign_in_form_needs_its_csrf_token(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    await client.get("/console/login")
    resp = await client.post("/console/login", data={"token": inv, "csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 400 and "tgwatch_session" not in resp.cookies


async def test_state_changing_forms_need_the_session_csrf_token(client: Client, store: Store, case: Case) -> None:
    mon = await token(store, Role.MONITOR, "mo")
    await sign_in(client, mon)
    key = f"match/testlist/{case.sha}"
    resp = await client.post("/console/alerts/status", data={"key": key, "status": "closed"}, allow_redirects=False)
    assert resp.status == 403 and "CSRF" in await resp.text()
    resp = await client.post(
        "/console/alerts/status", data={"key": key, "status": "closed", "csrf_token": "0" * 64}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await store["alerts"].find_one({"_id": key}))["status"] == "open"  # type: ignore[index]
    page = await client.get("/console/alerts")
    csrf = CSRF.search(await page.text())
    assert csrf is not None
    resp = await client.post(
        "/console/alerts/status",
        data={"key": key, "status": "closed", "csrf_token": csrf.group(1)},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert (await store["alerts"].find_one({"_id": key}))["status"] == "closed"  # type: ignore[index]
    resp = await client.post(
        "/console/alerts/status", data={"key": key, "status": "bogus", "csrf_token": csrf.group(1)}
    )
    assert resp.status == 400 and "status must be one of" in await resp.text()


async def test_roles_apply_to_pages(client: Client, store: Store) -> None:
    mon = await token(store, Role.MONITOR)
    await sign_in(client, mon)
    resp = await client.get("/console/search")
    assert resp.status == 403 and "may not open this page" in await resp.text()
    assert (await client.get("/console/runs")).status == 200
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 200 and 'class="dashboard"' in await resp.text(), "the home page is the dashboard"


async def test_message_page_blurs_media_and_reveal_is_audited(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    await sign_in(client, inv)
    html = await (await client.get("/console/messages/alpha_news/2")).text()
    assert "no active case authorization" in html and "/preview" not in html
    await AuthorizationRepo(store).add(
        case_id="CASE-7",
        warrant_ref="W-7",
        approver="judge",
        scope=[channel_scope("alpha_news")],
        accounts=["ana"],
        valid_until=time.time() + 3600,
    )
    html = await (await client.get("/console/messages/alpha_news/2")).text()
    assert "/preview" not in html, "named on the authorization but not a member of its case"
    await CaseMemberRepo(store).add("CASE-7", "ana", added_by="admin")
    page = await client.get("/console/messages/alpha_news/2")
    html = await page.text()
    assert f'src="/console/media/{case.sha}/preview"' in html and f"/api/v1/media/{case.sha}/bytes" not in html
    assert "No ledger entry names this message yet" in html and "Versions" in html
    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert csrf is not None
    resp = await client.post(
        f"/api/v1/media/{case.sha}/reveal", json={"message": "alpha_news/2"}, headers={"X-CSRF-Token": csrf.group(1)}
    )
    assert resp.status == 200
    entry = await store["audit"].find_one({"action": "media.reveal"})
    assert entry is not None and entry["actor"] == "token:ana" and entry["via"] == "console"
    assert entry["target"] == case.sha
    resp = await client.get(f"/api/v1/media/{case.sha}/bytes")
    assert resp.status == 200 and await resp.read() == case.image


async def test_sign_out_ends_the_session(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    await sign_in(client, inv)
    page = await client.get("/console/search")
    csrf = CSRF.search(await page.text())
    assert csrf is not None
    resp = await client.post("/console/logout", data={"csrf_token": csrf.group(1)}, allow_redirects=False)
    assert resp.status == 303 and resp.cookies["tgwatch_session"].value == ""
    assert (await client.get("/console/search", allow_redirects=False)).status == 303


async def test_other_pages_render(client: Client, store: Store, case: Case) -> None:
    admin = await token(store, Role.ADMIN)
    await sign_in(client, admin)
    for path in ("/console/channels/alpha_news", f"/console/media/{case.sha}", "/console/audit", "/console/alerts"):
        resp = await client.get(path)
        assert resp.status == 200, path
    channel = await (await client.get("/console/channels/alpha_news")).text()
    assert "알파 뉴스" in channel and "150" in channel
    media = await (await client.get(f"/console/media/{case.sha}")).text()
    assert "beta_chat/7" in media and "alpha_news/2" in media
    assert (await client.get("/console/channels/nope")).status == 404
    assert (await client.get("/console/media/zz")).status == 400
    css = await client.get("/console/static/console.css")
    assert css.status == 200 and "Noto Sans CJK KR" in await css.text()
    assert (await client.get("/console/static/..%2Fsession.py")).status == 404


async def test_candidate_review_approves_and_rejects_with_csrf(client: Client, store: Store) -> None:
    from crawler.discovery.service import DiscoveryService

    discovery = DiscoveryService(store)
    await discovery.add_tip("https://t.me/sample_room_one", source="hotline")
    await discovery.add_tip("https://t.me/sample_room_two", source="hotline")
    inv = await token(store, Role.INVESTIGATOR)
    await sign_in(client, inv)
    assert (await client.get("/console/candidates")).status == 403, "reviewing creates targets: monitors only"
    mon = await token(store, Role.MONITOR, "mo")
    await sign_in(client, mon)
    page = await client.get("/console/candidates")
    html = await page.text()
    assert "https://t.me/sample_room_one" in html
    csrf = CSRF.search(html)
    assert csrf is not None
    resp = await client.post(
        "/console/candidates/review", data={"link": "https://t.me/sample_room_one", "action": "approve"}
    )
    assert resp.status == 403
    for link, action in (("https://t.me/sample_room_one", "approve"), ("https://t.me/sample_room_two", "reject")):
        resp = await client.post(
            "/console/candidates/review",
            data={"link": link, "action": action, "csrf_token": csrf.group(1), "note": "checked"},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
    statuses = {d["_id"]: d["status"] async for d in store["candidates"].find()}
    assert statuses == {"https://t.me/sample_room_one": "approved", "https://t.me/sample_room_two": "rejected"}
    resp = await client.post(
        "/console/candidates/review",
        data={"link": "https://t.me/sample_room_one", "action": "reject", "csrf_token": csrf.group(1)},
    )
    assert resp.status == 409
    audit = await store["audit"].find_one({"action": "candidates.list", "actor": "token:mo"})
    assert audit is not None and audit["via"] == "console"
