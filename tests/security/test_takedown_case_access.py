"""Takedown requests follow case membership (#16 follow-up, DESIGN §9).

A request that names a case is an investigator's to read only as a member of that case: lists
leave it out, a direct read (detail, report, ledger history, console page) is an audited 403, and
the figures name no hidden request. Requests without a case, and monitors, auditors and admins,
read as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store
from tests.security.case_world import World, build_world

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> World:
    world = await build_world(store, tmp_path / "data")
    world.tokens["mon"], _ = await TokenRepo(store, server_secret(config.load())).create("mon", Role.MONITOR)
    return world


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    # every sent request is overdue at once, so the figures' overdue list names all of them
    takedowns = world.settings.takedowns.model_copy(update={"overdue_after": 0.0})
    settings = world.settings.model_copy(update={"takedowns": takedowns})
    async with TestClient(TestServer(build_app(store, settings, ALL_MODULES))) as c:
        yield c


def bearer(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


@pytest.fixture
async def requests(client: Client, world: World) -> dict[str, str]:
    """case name (or "none") → request id; each one sent, so each one is overdue."""
    out: dict[str, str] = {}
    for case, channel in (("CASE-A", "case_chan"), ("CASE-B", "other_chan"), (None, "other_chan")):
        body = {"channel": channel, "reason": "sexual_deepfake", **({"case": case} if case else {})}
        resp = await client.post("/api/v1/takedowns", json=body, headers=bearer(world, "mon"))
        assert resp.status == 201, await resp.text()
        rid = (await resp.json())["id"]
        sent = await client.post(f"/api/v1/takedowns/{rid}/sent", json={"via": "email:x"}, headers=bearer(world, "mon"))
        assert sent.status == 200, await sent.text()
        out[case or "none"] = rid
    return out


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("member", {"CASE-A", "none"}),  # investigator in CASE-A only
        ("outsider", {"CASE-B", "none"}),  # investigator in CASE-B only
        ("mon", {"CASE-A", "CASE-B", "none"}),
        ("aud", {"CASE-A", "CASE-B", "none"}),
        ("chief", {"CASE-A", "CASE-B", "none"}),
    ],
)
async def test_reads_follow_case_membership(
    store: Store, client: Client, world: World, requests: dict[str, str], who: str, visible: set[str]
) -> None:
    hdr = bearer(world, who)
    listed = await client.get("/api/v1/takedowns", params={"status": "sent"}, headers=hdr)
    assert listed.status == 200
    assert {r["id"] for r in (await listed.json())["items"]} == {requests[c] for c in visible}
    # a one-per-page walk shows the same requests and never more
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/v1/takedowns", params=params, headers=hdr)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(requests[c] for c in visible)

    stats = await (await client.get("/api/v1/takedowns/stats", headers=hdr)).json()
    assert stats["requests"]["total"] == 3 and stats["overdue"]["count"] == 3, "aggregate counts stay whole"
    assert set(stats["overdue"]["requests"]) == {requests[c] for c in visible}

    history_allowed = who != "mon"
    for case, rid in requests.items():
        expected = 200 if case in visible else 403
        for path in (f"/api/v1/takedowns/{rid}", f"/api/v1/takedowns/{rid}/report"):
            resp = await client.get(path, headers=hdr)
            assert resp.status == expected, (path, await resp.text())
            if expected == 403:
                body = await resp.json()
                assert body["kind"] == "not_authorized" and case in body["error"]
                assert "t.me" not in await resp.text()
        resp = await client.get(f"/api/v1/takedowns/{rid}/history", headers=hdr)
        assert resp.status == (expected if history_allowed else 403)
        if expected == 403:
            assert "entries" not in await resp.text()
    hidden = {c for c in requests if c not in visible}
    refused = await store["audit"].find({"actor": f"token:{who}", "action": "case.refused"}).to_list(None)
    assert sorted(d["target"] for d in refused) == sorted(h for h in hidden for _ in range(3))


async def test_console_pages_follow_case_membership(
    store: Store, client: Client, world: World, requests: dict[str, str]
) -> None:
    from tests.test_console import sign_in

    await sign_in(client, world.tokens["outsider"])
    html = await (await client.get("/console/takedowns", params={"status": "all"})).text()
    assert requests["CASE-B"] in html and requests["none"] in html
    assert requests["CASE-A"] not in html and "CASE-A" not in html
    page = await client.get(f"/console/takedowns/{requests['CASE-A']}")
    text = await page.text()
    assert page.status == 403 and "not a member of case CASE-A" in text and "case_chan" not in text
    assert (await client.get(f"/console/takedowns/{requests['CASE-B']}")).status == 200
    refused = await store["audit"].find({"actor": "token:outsider", "action": "case.refused"}).to_list(None)
    assert [(d["target"], d["via"]) for d in refused] == [("CASE-A", "console")]

    client.session.cookie_jar.clear()
    await sign_in(client, world.tokens["aud"])
    html = await (await client.get("/console/takedowns", params={"status": "all"})).text()
    assert all(rid in html for rid in requests.values())
    page = await client.get(f"/console/takedowns/{requests['CASE-A']}")
    assert page.status == 200 and "History (evidence ledger)" in await page.text()
