"""#16: the text of a private chat collected under a case authorization is read only by that case.

A channel with no public username (a private chat, readable only as a member, i.e. under an
authorization) is *case-restricted*: admins and investigators who are members of a case whose
authorization names it read it; other investigators find it filtered out of every list and get an
audited 403 (``not_authorized``) on direct reads. A public channel named in an authorization's
scope stays public. One rule decides it: ``CaseAccess.visible_channels``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import Settings
from crawler.evidence.access import CaseAccess
from crawler.evidence.cases import Cases
from crawler.evidence.members import CaseMembers
from crawler.evidence.wiring import build_ledger
from crawler.hashing.digests import digest_bytes
from crawler.pipeline import open_pipeline
from crawler.tokens import Principal, Role
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from tests.security.case_world import synthetic_png
from tests.security.support import Client, bearer, serve, settings, sign_in, token

T0 = datetime(2026, 4, 1, tzinfo=UTC)
PRIVATE = "id777"  # a chat seen only by numeric id: no public username
PRIVATE_TEXT = "private-chat-words"
PUBLIC_TEXT = "public-channel-words"


@dataclass
class World:
    cfg: Settings
    tokens: dict[str, str]
    sha: str


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> World:
    cfg = settings(tmp_path / "data", media={"fetch": False})
    sha = digest_bytes(synthetic_png()).sha256
    photo = MediaRef(kind=MediaKind.PHOTO, sha256=sha, width=48, height=32)
    async with open_pipeline(store, cfg) as ingest:
        await ingest.submit(
            [
                Message(ref=ChannelRef(tg_id=777), msg_id=1, source=Source.MTPROTO, date=T0,
                        text=f"{PRIVATE_TEXT} one", media=[photo]),
                Message(ref=ChannelRef(tg_id=777), msg_id=2, source=Source.MTPROTO, date=T0,
                        text=f"{PRIVATE_TEXT} two", reply_to=1),
                Message(ref=ChannelRef(username="open_chan"), msg_id=5, source=Source.WEB, date=T0,
                        text=f"{PUBLIC_TEXT} five"),
            ]
        )  # fmt: skip
    tokens = {
        name: await token(store, cfg, role, name)
        for name, role in (
            ("boss", Role.ADMIN),
            ("member", Role.INVESTIGATOR),
            ("outsider", Role.INVESTIGATOR),
            ("mon", Role.MONITOR),
            ("aud", Role.AUDITOR),
        )
    }
    ledger = build_ledger(store, cfg)
    await Cases(ledger).add("CASE-P", channel=PRIVATE, actor="boss")
    await Cases(ledger).add("CASE-Q", channel="open_chan", actor="boss")
    await CaseMembers(ledger).add("CASE-P", "member", actor="boss")
    await CaseMembers(ledger).add("CASE-Q", "outsider", actor="boss")
    # the authorization names the private chat and a public channel; revoked ones still count
    auth = await AuthorizationRepo(store).add(
        case_id="CASE-P",
        warrant_ref="W-P",
        approver="judge",
        scope=[channel_scope(PRIVATE), channel_scope("open_chan")],
        accounts=["acct"],
        valid_until=time.time() + 3600,
    )
    await AuthorizationRepo(store).revoke(auth)
    return World(cfg, tokens, sha)


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    async with serve(store, world.cfg) as c:
        yield c


async def texts(client: Client, world: World, who: str, path: str) -> str:
    resp = await client.get(path, headers=bearer(world.tokens[who]))
    assert resp.status == 200, (who, path, resp.status, await resp.text())
    return await resp.text()


@pytest.mark.parametrize(("who", "sees_private"), [("member", True), ("boss", True), ("outsider", False)])
async def test_search_export_and_lists_leave_out_other_cases_private_chats(
    client: Client, world: World, who: str, sees_private: bool
) -> None:
    for path in (
        "/api/v1/messages?q=words",
        "/api/v1/messages/export?q=words",
        "/api/v1/messages/export?q=words&format=csv",
        "/api/v1/messages?has_media=true",
        f"/api/v1/messages?sha256={world.sha}",
        "/api/v1/channels",
    ):
        body = await texts(client, world, who, path)
        assert (PRIVATE_TEXT in body or PRIVATE in body) == sees_private, (who, path)
    body = await texts(client, world, who, "/api/v1/messages?q=words")
    assert PUBLIC_TEXT in body, "a public channel named in an authorization's scope stays public"
    items = json.loads(await texts(client, world, who, f"/api/v1/messages?channel={PRIVATE}"))["items"]
    assert len(items) == (2 if sees_private else 0)
    case_items = json.loads(await texts(client, world, "boss", "/api/v1/messages?case=CASE-P"))["items"]
    assert len(case_items) == 2


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/messages/{PRIVATE}/1",
        f"/api/v1/messages/{PRIVATE}/2/context",
        f"/api/v1/channels/{PRIVATE}",
        f"/api/v1/channels/{PRIVATE}/usernames",
        f"/api/v1/channels/{PRIVATE}/members",
        "/api/v1/media/{sha}",
    ],
)
async def test_direct_reads_are_refused_and_audited(client: Client, world: World, store: Store, path: str) -> None:
    path = path.format(sha=world.sha)
    for who in ("member", "boss"):
        assert PRIVATE in await texts(client, world, who, path)
    resp = await client.get(path, headers=bearer(world.tokens["outsider"]))
    body = await resp.text()
    assert resp.status == 403 and json.loads(body)["kind"] == "not_authorized", body
    assert PRIVATE_TEXT not in body
    refused = await store["audit"].find({"actor": "token:outsider", "action": "channel.refused"}).to_list(None)
    assert [r["target"] for r in refused] == [PRIVATE]
    for who in ("mon", "aud"):  # evidence routes are not theirs at all
        assert (await client.get(path, headers=bearer(world.tokens[who]))).status == 403


async def test_membership_opens_the_chat(client: Client, world: World, store: Store) -> None:
    path = f"/api/v1/messages/{PRIVATE}/1"
    assert (await client.get(path, headers=bearer(world.tokens["outsider"]))).status == 403
    await CaseMembers(build_ledger(store, world.cfg)).add("CASE-P", "outsider", actor="boss")
    assert PRIVATE_TEXT in await texts(client, world, "outsider", path)


@pytest.mark.parametrize(("who", "sees_private"), [("member", True), ("boss", True), ("outsider", False)])
async def test_console_pages_follow_the_same_rule(store: Store, world: World, who: str, sees_private: bool) -> None:
    async with serve(store, world.cfg) as client:
        assert (await sign_in(client, world.tokens[who])).status == 303
        search = await client.get("/console/search", params={"q": "words"})
        assert search.status == 200
        page = await search.text()
        assert (PRIVATE_TEXT in page) == sees_private and PUBLIC_TEXT in page
        for path in (f"/console/messages/{PRIVATE}/1", f"/console/channels/{PRIVATE}", f"/console/media/{world.sha}"):
            resp = await client.get(path)
            assert resp.status == (200 if sees_private else 403), (who, path)
            assert (PRIVATE_TEXT in await resp.text()) == sees_private, (who, path)


async def test_one_rule_for_every_role(store: Store, world: World) -> None:
    access = CaseAccess(store)
    assert await access.restricted_channels() == {PRIVATE: {"CASE-P"}}
    for name, role, readable in (
        ("boss", Role.ADMIN, True),
        ("member", Role.INVESTIGATOR, True),
        ("outsider", Role.INVESTIGATOR, False),
        ("mon", Role.MONITOR, False),
        ("aud", Role.AUDITOR, False),
    ):
        who = Principal(token_id=name, name=name, role=role)
        assert await access.may_read_channel(who, PRIVATE) is readable, name
        assert await access.may_read_channel(who, "open_chan"), name
