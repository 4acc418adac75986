"""Console sign-in makes a server-side session: a random cookie, idle and absolute expiry, really
ended by sign-out; Secure (and HSTS) over TLS; cookie-authenticated API changes need the CSRF header."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from crawler.api.app import FailureLimiter
from crawler.tokens import Role
from storage.client import Store
from tests.security.support import Client, page_csrf, serve, settings, sign_in, token

TIP = {"link": "https://t.me/some_channel"}


def _cookie(client: Client) -> str:
    cookies = {c.key: c.value for c in client.session.cookie_jar}
    return cookies["tgwatch_session"]


async def test_the_cookie_is_a_random_session_id_stored_only_as_a_keyed_digest(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        tok = await token(store, cfg, Role.MONITOR)
        assert (await sign_in(client, tok)).status == 303
        cookie = _cookie(client)
        assert cookie != tok and tok not in cookie
        rows = await store["sessions"].find().to_list(None)
        assert len(rows) == 1
        assert cookie not in str(rows) and tok not in str(rows)
        assert rows[0]["_id"] != hashlib.sha256(cookie.encode()).hexdigest()


async def test_sign_out_ends_the_session_on_the_server(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        assert (await sign_in(client, await token(store, cfg, Role.MONITOR))).status == 303
        stolen = _cookie(client)
        csrf = await page_csrf(client, "/console/alerts")
        assert (await client.post("/console/logout", data={"csrf_token": csrf}, allow_redirects=False)).status == 303
        assert await store["sessions"].count_documents({}) == 0
        # a copy of the cookie taken before sign-out is worthless afterwards
        replay = {"Cookie": f"tgwatch_session={stolen}"}
        assert (await client.get("/api/v1/candidates", headers=replay)).status == 401
        resp = await client.get("/console/alerts", headers=replay, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")


async def test_idle_and_old_sessions_expire(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path, console={"session_idle_minutes": 30, "session_max_hours": 12})
    async with serve(store, cfg) as client:
        tok = await token(store, cfg, Role.MONITOR)
        assert (await sign_in(client, tok)).status == 303
        assert (await client.get("/api/v1/candidates")).status == 200
        now = time.time()
        await store["sessions"].update_many({}, {"$set": {"seen": now - 31 * 60}})
        assert (await client.get("/api/v1/candidates")).status == 401, "idle past console.session_idle_minutes"

        assert (await sign_in(client, tok)).status == 303
        await store["sessions"].update_many({}, {"$set": {"created": now - 13 * 3600, "seen": now}})
        assert (await client.get("/api/v1/candidates")).status == 401, "older than console.session_max_hours"


async def test_revoking_the_token_ends_its_sessions(store: Store, tmp_path: Path) -> None:
    from crawler.tokens import TokenRepo, server_secret

    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        tok, doc = await TokenRepo(store, server_secret(cfg)).create("leaver", Role.MONITOR)
        assert (await sign_in(client, tok)).status == 303
        assert (await client.get("/api/v1/candidates")).status == 200
        await TokenRepo(store, server_secret(cfg)).revoke(doc["token_id"])
        assert (await client.get("/api/v1/candidates")).status == 401


async def test_cookie_authenticated_api_changes_need_the_csrf_header(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg) as client:
        assert (await sign_in(client, await token(store, cfg, Role.ADMIN))).status == 303
        assert (await client.post("/api/v1/tips", json=TIP)).status == 403
        assert (await client.post("/api/v1/detection/claim", json={"max_jobs": 1})).status == 403
        csrf = await page_csrf(client, "/console/alerts")
        resp = await client.post("/api/v1/tips", json=TIP, headers={"X-CSRF-Token": csrf})
        assert resp.status == 201, await resp.text()
        assert (await client.get("/api/v1/candidates")).status == 200, "safe methods need no header"


async def test_bad_session_cookies_count_towards_the_limiter(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg, limiter=FailureLimiter(limit=3, window=600)) as client:
        statuses = [
            (await client.get("/api/v1/candidates", headers={"Cookie": f"tgwatch_session=forged{i}"})).status
            for i in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        resp = await client.get("/console/alerts", headers={"Cookie": "tgwatch_session=forged9"}, allow_redirects=False)
        assert resp.status == 303
        assert (await client.get("/api/v1/candidates", headers={"Cookie": "tgwatch_session=x"})).status == 429


async def test_secure_cookie_and_hsts_over_tls(store: Store, tmp_path: Path) -> None:
    proxied = settings(tmp_path, api={"trusted_proxies": ["127.0.0.0/8"]})
    tls = {"X-Forwarded-Proto": "https"}
    async with serve(store, proxied) as client:
        tok = await token(store, proxied, Role.MONITOR)
        resp = await sign_in(client, tok, headers=tls)
        assert resp.status == 303
        assert "Secure" in resp.headers["Set-Cookie"]
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        plain = await client.get("/healthz")
        assert "Strict-Transport-Security" not in plain.headers
    # the same claim from a peer that is not a trusted proxy changes nothing
    async with serve(store, settings(tmp_path)) as client:
        resp = await sign_in(client, tok, headers=tls)
        assert resp.status == 303 and "Secure" not in resp.headers["Set-Cookie"]
        assert "Strict-Transport-Security" not in resp.headers
    async with serve(store, settings(tmp_path, api={"secure_cookies": True})) as client:
        resp = await sign_in(client, tok)
        assert "Secure" in resp.headers["Set-Cookie"] and "Strict-Transport-Security" in resp.headers


async def test_use_keeps_a_session_alive_until_its_absolute_end(store: Store) -> None:
    from storage.repos.sessions import SessionRepo

    repo = SessionRepo(store, b"k" * 32)
    sid = await repo.open("digest", now=1000.0)
    for at in (1500.0, 2000.0, 2500.0):  # each use within the idle time moves ``seen`` on
        assert await repo.find(sid, idle=600, longest=1800, now=at) is not None
    assert await repo.find(sid, idle=600, longest=1800, now=2900.0) is None, "past the absolute end"
    assert await repo.count() == 0
