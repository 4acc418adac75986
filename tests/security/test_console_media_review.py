"""Safe media review cannot be turned against the people it protects: the thumbnail and the reveal
follow the case rules (``CaseAccess.media_grant``), are never cached or written in the clear, and a
reveal (like a language change) cannot be forged by another site (CSRF) and is always audited.
"""

from __future__ import annotations

import io
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from crawler.tokens import Role
from storage.client import Store
from tests.console_world import World
from tests.test_console import CSRF, sign_in
from tests.test_console_media_review import client, world  # noqa: F401  (fixtures)
from tests.test_investigate_api import token

Client = TestClient[web.Request, web.Application]


async def test_preview_needs_a_grant_is_never_cached_and_is_audited(
    client: Client,  # noqa: F811
    store: Store,
    world: World,  # noqa: F811
) -> None:
    sha = world.case.sha
    mon = await token(store, Role.MONITOR, "mon2")
    await sign_in(client, mon)
    unalerted = world.case.other_sha  # a monitor's triage covers alerted media only (test_monitor_triage_preview)
    assert (await client.get(f"/console/media/{unalerted}/preview")).status == 403, "monitors are not investigators"
    other = await token(store, Role.INVESTIGATOR, "eve")  # no case authorization names eve
    await sign_in(client, other)
    resp = await client.get(f"/console/media/{sha}/preview")
    assert resp.status == 403 and "no-store" in resp.headers.get("Cache-Control", "")
    refused = await store["audit"].find_one({"action": "media.preview.refused", "actor": "token:eve"})
    assert refused is not None

    inv = await token(store, Role.INVESTIGATOR, "ana")  # member of CASE-W, named on its authorization
    await sign_in(client, inv)
    resp = await client.get(f"/console/media/{sha}/preview")
    body = await resp.read()
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert resp.headers["Cache-Control"].startswith("no-store") and "private" in resp.headers["Cache-Control"]
    assert body != world.case.image and Image.open(io.BytesIO(body)).mode == "L"
    entry = await store["audit"].find_one({"action": "media.preview", "actor": "token:ana"})
    assert entry is not None and entry["target"] == sha and entry["filter"] == {"case_id": "CASE-W"}
    plain = list(Path(world.case.settings.data_dir).rglob("*"))
    assert not [p for p in plain if p.is_file() and p.read_bytes() == body], "the thumbnail is never written"
    message = await (await client.get("/console/messages/alpha_news/2")).text()
    assert f'src="/console/media/{sha}/preview"' in message and f"/api/v1/media/{sha}/bytes" not in message


async def test_reveal_is_a_deliberate_audited_post(client: Client, store: Store, world: World) -> None:  # noqa: F811
    sha = world.case.sha
    inv = await token(store, Role.INVESTIGATOR, "ana")
    await sign_in(client, inv)
    html = await (await client.get("/console/messages/alpha_news/2")).text()
    csrf = CSRF.search(html)
    assert csrf is not None
    resp = await client.post(f"/console/media/{sha}/reveal", data={"message": "alpha_news/2"})
    assert resp.status == 403, "no CSRF token, no reveal"
    assert await store["audit"].find_one({"action": "media.reveal"}) is None
    resp = await client.post(
        f"/console/media/{sha}/reveal",
        data={"message": "alpha_news/2", "csrf_token": csrf.group(1), "back": "/console/messages/alpha_news/2"},
    )
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert f'src="/api/v1/media/{sha}/bytes"' in page and 'href="/console/messages/alpha_news/2"' in page
    entry = await store["audit"].find_one({"action": "media.reveal", "actor": "token:ana"})
    assert entry is not None and entry["via"] == "console" and entry["filter"] == {"message": "alpha_news/2"}
    eve = await token(store, Role.INVESTIGATOR, "eve")
    await sign_in(client, eve)
    csrf = CSRF.search(await (await client.get("/console/search")).text())
    assert csrf is not None
    resp = await client.post(
        f"/console/media/{sha}/reveal", data={"csrf_token": csrf.group(1), "back": "https://x.example/"}
    )
    assert resp.status == 404 and "/bytes" not in await resp.text()
    assert await store["audit"].find_one({"action": "media.reveal.refused", "actor": "token:eve"}) is not None


async def test_a_language_change_cannot_be_forged(client: Client, world: World) -> None:  # noqa: F811
    await sign_in(client, world.monitor)
    resp = await client.post("/console/language", data={"lang": "ko"}, allow_redirects=False)
    assert resp.status == 403
    html = await (await client.get("/console/alerts", headers={"Accept-Language": "en"})).text()
    assert '<html lang="en">' in html
