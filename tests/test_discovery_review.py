"""Review: tips, approve into targets (invites only with an authorization), reject; the tips API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.audit import AuditLog
from crawler.discovery.models import InvalidLink, ReviewConflict
from crawler.discovery.service import DiscoveryService
from crawler.discovery.targets import get_target
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.errors import NotAuthorized, NotFound
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, invite_scope


async def test_tip_is_a_high_priority_candidate_with_its_provenance(store: Store) -> None:
    service = DiscoveryService(store)
    await service.add_tip("https://t.me/other_room", source="crawler-test")
    doc = await service.add_tip("  t.me/s/Reported_Room/12 ", source="hotline-a", note="victim report #12")
    assert doc["_id"] == "https://t.me/reported_room" and doc["status"] == "new"
    assert doc["priority"] == service.settings.tip_priority
    (entry,) = doc["provenance"]
    assert (entry["source_kind"], entry["source"], entry["note"]) == ("tip", "hotline-a", "victim report #12")
    first = (await service.pending())[0]
    assert first["_id"] in {"https://t.me/reported_room", "https://t.me/other_room"}
    with pytest.raises(InvalidLink):
        await service.add_tip("https://example.org/not-telegram", source="x")
    with pytest.raises(InvalidLink):
        await service.add_tip("https://t.me/proxy?server=a", source="x")


async def test_approve_public_candidate_creates_one_target(store: Store) -> None:
    service = DiscoveryService(store)
    await service.add_tip("@public_room", source="s")
    target = await service.approve("https://t.me/public_room", actor="reviewer")
    assert {k: target[k] for k in ("_id", "kind", "method", "source", "paused")} == {
        "_id": "https://t.me/public_room", "kind": "username", "method": "web", "source": "candidate", "paused": False,
    }  # fmt: skip
    assert target["created_at"] is not None
    again = await service.approve("t.me/public_room", actor="reviewer")
    assert again["_id"] == target["_id"]
    doc = await service.repo.get("https://t.me/public_room")
    assert doc is not None and doc["status"] == "approved" and doc["review"]["by"] == "reviewer"
    with pytest.raises(ReviewConflict):
        await service.reject("https://t.me/public_room", actor="reviewer")
    with pytest.raises(NotFound):
        await service.approve("https://t.me/never_seen", actor="reviewer")


async def test_reject_keeps_the_candidate_with_the_reason(store: Store) -> None:
    service = DiscoveryService(store)
    await service.add_tip("@noise_room", source="s")
    doc = await service.reject("@noise_room", actor="reviewer", note="news, not relevant")
    assert doc["status"] == "rejected" and doc["review"]["note"] == "news, not relevant"
    assert await get_target(store, "https://t.me/noise_room") is None


async def test_invites_need_an_active_covering_authorization(store: Store) -> None:
    service = DiscoveryService(store)
    link = "https://t.me/+SecretInvite0001"
    await service.add_tip(link, source="s")
    with pytest.raises(NotAuthorized, match="needs an active authorization"):
        await service.approve(link, actor="r")
    auths = AuthorizationRepo(store)
    future = time.time() + 3600
    other = await auths.add(case_id="c1", warrant_ref="w", approver="a", scope=[invite_scope("OtherInvite00")],
                            accounts=["acc"], valid_until=future)  # fmt: skip
    with pytest.raises(NotAuthorized, match="does not cover"):
        await service.approve(link, actor="r", authorization_id=other)
    expired = await auths.add(case_id="c1", warrant_ref="w", approver="a", scope=[invite_scope("SecretInvite0001")],
                              accounts=["acc"], valid_until=time.time() - 10)  # fmt: skip
    with pytest.raises(NotAuthorized, match="expired"):
        await service.approve(link, actor="r", authorization_id=expired)
    good = await auths.add(case_id="c1", warrant_ref="w", approver="a", scope=[invite_scope("SecretInvite0001")],
                           accounts=["acc"], valid_until=future)  # fmt: skip
    assert await get_target(store, link) is None
    target = await service.approve(link, actor="r", authorization_id=good, method="web")
    assert (target["method"], target["kind"], target["authorization_id"]) == ("mtproto", "invite", good)


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = build_app(store, config.load(), ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_tips_api(client: TestClient[web.Request, web.Application], store: Store) -> None:
    token, _ = await TokenRepo(store, server_secret(config.load())).create("hotline-b", Role.MONITOR)
    hdr = {"Authorization": f"Bearer {token}"}
    resp = await client.post("/api/v1/tips", json={"link": "https://t.me/joinchat/TipInvite0001", "note": "report"},
                             headers=hdr)  # fmt: skip
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["link"] == "https://t.me/+TipInvite0001" and body["kind"] == "invite" and body["status"] == "new"
    assert body["provenance"][0]["source"] == "hotline-b" and body["provenance"][0]["note"] == "report"
    resp = await client.post("/api/v1/tips", json={"link": "@named_source_room", "source": "case-7"}, headers=hdr)
    assert (await resp.json())["provenance"][0]["source"] == "case-7"
    resp = await client.post("/api/v1/tips", json={"link": "https://example.org/x"}, headers=hdr)
    assert resp.status == 400 and "not a Telegram" in (await resp.json())["error"]
    resp = await client.get("/api/v1/candidates?status=new", headers=hdr)
    links = {c["link"] for c in (await resp.json())["candidates"]}
    assert links == {"https://t.me/+TipInvite0001", "https://t.me/named_source_room"}
    assert (await client.get("/api/v1/candidates?status=bogus", headers=hdr)).status == 400
    audit = await AuditLog(store).list(actor="token:hotline-b")
    assert audit and audit[0]["action"] == "candidates.list" and audit[0]["result_count"] == 2
