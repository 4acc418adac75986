"""The dashboard's growth pages keep private chats to their case, like every other channel read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role
from foundation.models import Channel, ChannelRef, Counters, Source, utcnow
from storage.client import Store
from tests.test_console import sign_in
from tests.test_investigate_api import token

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(store: Store, tmp_path: Path) -> AsyncIterator[Client]:
    app = build_app(store, config.load(data_dir=tmp_path), ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_a_private_chats_growth_is_hidden_from_other_roles(client: Client, store: Store, ingest: Ingest) -> None:
    t0 = utcnow() - timedelta(days=2)
    for day, members in ((0, 10), (1, 40)):
        snap = Channel(ref=ChannelRef(tg_id=777), source=Source.MTPROTO, seen_at=t0 + timedelta(days=day),
                       kind="megagroup", counters=Counters(members=members))  # fmt: skip
        await ingest.submit([snap])
    await sign_in(client, await token(store, Role.MONITOR, "mo"))
    resp = await client.get("/console/growth/id777")
    assert resp.status == 403 and "<svg" not in await resp.text()
    assert "id777" not in await (await client.get("/console/growth")).text()
    assert "id777" not in await (await client.get("/console/channels")).text()
    refused = await store["audit"].find_one({"action": "channel.refused", "target": "id777"})
    assert refused is not None and refused["via"] == "console"
    await sign_in(client, await token(store, Role.ADMIN, "root"))
    assert (await client.get("/console/growth/id777")).status == 200
    assert 'href="/console/growth/id777"' in await (await client.get("/console/growth")).text()
