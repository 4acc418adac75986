"""The investigator API over data loaded through the real ingest door."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageDraw

import config
from config import Settings
from crawler.api.app import build_app
from crawler.api.auth import AUTH
from crawler.detection.service import DetectionService
from crawler.hashing.digests import digest_bytes
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import (
    Alert,
    AlertKind,
    Channel,
    ChannelRef,
    Counters,
    Deletion,
    MediaKind,
    MediaRef,
    Message,
    Source,
)
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo
from storage.repos.media import MediaRepo

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Client = TestClient[web.Request, web.Application]


def synthetic_png(seed: int = 1) -> bytes:
    """A small generated picture: gradient, shapes and text (no real imagery)."""
    img = Image.new("RGB", (96, 64))
    draw = ImageDraw.Draw(img)
    for x in range(96):
        draw.line([(x, 0), (x, 63)], fill=(x * 2 % 256, (seed * 40) % 256, 200 - x))
    draw.ellipse([10, 10, 40, 40], fill=(250, 200, 0))
    draw.rectangle([50, 20, 85, 55], outline=(0, 0, 0), width=3)
    draw.text((4, 48), f"test {seed}", fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Case:
    settings: Settings
    sha: str
    md5: str
    image: bytes
    other_sha: str


def _msg(channel: str, msg_id: int, text: str, minutes: int, **extra: object) -> Message:
    return Message(
        ref=ChannelRef(username=channel),
        msg_id=msg_id,
        source=Source.WEB,
        date=T0 + timedelta(minutes=minutes),
        text=text,
        **extra,
    )


async def load_case(store: Store, ingest: Ingest, data_dir: Path) -> Case:
    """Two channels share one generated image; one channel was renamed; edits, deletions, an album."""
    settings = config.load(data_dir=data_dir)
    image, other = synthetic_png(1), synthetic_png(2)
    digests, other_digests = digest_bytes(image), digest_bytes(other)
    sha, other_sha = digests.sha256, other_digests.sha256
    photo = MediaRef(kind=MediaKind.PHOTO, sha256=sha, width=96, height=64)
    await ingest.submit(
        [
            Channel(
                ref=ChannelRef(username="alpha_news"),
                source=Source.WEB,
                seen_at=T0,
                title="알파 뉴스",
                counters=Counters(subscribers=100),
            ),
            Channel(
                ref=ChannelRef(username="alpha_news"),
                source=Source.WEB,
                seen_at=T0 + timedelta(days=1),
                title="알파 뉴스",
                counters=Counters(subscribers=150),
            ),
            _msg("alpha_news", 1, "첫 번째 소식 Hello World", 0),
            _msg("alpha_news", 2, "Shared picture", 10, media=[photo], grouped_id="g1"),
            _msg(
                "alpha_news",
                3,
                "album second",
                11,
                grouped_id="g1",
                media=[MediaRef(kind=MediaKind.PHOTO, sha256=other_sha)],
            ),
            _msg("alpha_news", 4, "a reply to the picture", 20, reply_to=2),
            _msg("alpha_news", 5, "reply to the reply", 30, reply_to=4),
            _msg("beta_chat", 7, "reposted 안녕하세요", 40, media=[photo]),
            _msg("beta_chat", 8, "no media here", 50),
        ]
    )
    # an edit (new version) and a deletion, through the same door
    await ingest.submit([_msg("alpha_news", 1, "첫 번째 소식 Hello World (fixed)", 0, edited=True)])
    await ingest.submit([Deletion(ref=ChannelRef(username="beta_chat"), msg_ids=[8], source=Source.WEB, seen_at=T0)])
    # a rename: the same channel (known by its key) seen under a new username keeps its messages
    media = MediaRepo(store)  # the door recorded the sightings; the hashes are the media stage's part
    await media.insert({"_id": sha, "md5": digests.md5, "size": len(image), "first_seen_at": T0})
    await media.insert({"_id": other_sha, "md5": other_digests.md5, "size": len(other), "first_seen_at": T0})
    await AlertRepo(store).raise_alert(
        Alert(
            key=f"match/testlist/{sha}",
            kind=AlertKind.HASH_MATCH,
            sha256=sha,
            summary="matched test list",
            channels=["alpha_news", "beta_chat"],
            raised_at=T0,
        )
    )
    await store["verdicts"].insert_one(
        {
            "_id": f"{other_sha}/demo/t1",
            "sha256": other_sha,
            "detector": "demo",
            "decision": "negative",
            "decided_at": T0,
        }
    )
    quarantine = DetectionService(store, settings).quarantine
    quarantine.put(image)
    quarantine.put(other)
    return Case(settings=settings, sha=sha, md5=digests.md5, image=image, other_sha=other_sha)


async def token(store: Store, role: Role, name: str | None = None) -> str:
    value, _ = await TokenRepo(store, server_secret(config.load())).create(name or f"t-{role.value}", role)
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
async def case(store: Store, ingest: Ingest, tmp_path: Path) -> Case:
    return await load_case(store, ingest, tmp_path)


@pytest.fixture
async def client(store: Store, case: Case) -> AsyncIterator[Client]:
    app = build_app(store, case.settings, ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _get(client: Client, path: str, tok: str, **params: str) -> dict[str, Any]:
    resp = await client.get(path, params=params, headers=bearer(tok))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_every_message_that_shared_an_image_across_channels(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    found = await _get(client, "/api/v1/messages", inv, sha256=case.sha)
    assert sorted(m["key"] for m in found["items"]) == ["alpha_news/2", "beta_chat/7"]
    by_md5 = await _get(client, "/api/v1/messages", inv, md5=case.md5)
    assert {m["key"] for m in by_md5["items"]} == {"alpha_news/2", "beta_chat/7"}
    media = await _get(client, f"/api/v1/media/{case.sha}", inv)
    assert media["channels"] == ["alpha_news", "beta_chat"]
    assert {s["message"] for s in media["sightings"]} == {"alpha_news/2", "beta_chat/7"}
    assert media["hashes"]["md5"] == case.md5 and media["matches"][0]["kind"] == "hash_match"
    entries = await store["audit"].find({"actor": "token:ana"}).to_list(None)
    assert {e["action"] for e in entries} == {"messages.search", "media.get"}
    search = next(e for e in entries if e["filter"].get("sha256"))
    assert search["result_count"] == 2 and search["role"] == "investigator"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "hello world"}, {"alpha_news/1"}),
        ({"q": "안녕"}, {"beta_chat/7"}),
        ({"q": "(fixed"}, {"alpha_news/1"}),
        ({"q": ".*"}, set()),
        ({"channel": "beta_chat"}, {"beta_chat/7", "beta_chat/8"}),
        ({"channel": "https://t.me/Beta_Chat"}, {"beta_chat/7", "beta_chat/8"}),
        ({"edited": "true"}, {"alpha_news/1"}),
        ({"deleted": "true"}, {"beta_chat/8"}),
        ({"has_media": "false", "channel": "alpha_news"}, {"alpha_news/1", "alpha_news/4", "alpha_news/5"}),
        ({"has_media": "true"}, {"alpha_news/2", "alpha_news/3", "beta_chat/7"}),
        ({"matched": "true"}, {"alpha_news/2", "beta_chat/7"}),
        ({"verdict": "negative"}, {"alpha_news/3"}),
        (
            {"since": "2024-05-01T12:20:00Z", "until": "2024-05-01T12:45:00+00:00"},
            {"alpha_news/4", "alpha_news/5", "beta_chat/7"},
        ),
    ],
)
async def test_search_filters(client: Client, store: Store, params: dict[str, str], expected: set[str]) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    found = await _get(client, "/api/v1/messages", inv, **params)
    assert {m["key"] for m in found["items"]} == expected


async def test_cursor_pagination_walks_everything_once(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    seen: list[str] = []
    params = {"limit": "3"}
    while True:
        page = await _get(client, "/api/v1/messages", inv, **params)
        seen += [m["key"] for m in page["items"]]
        if not page["next_cursor"]:
            break
        params = {"limit": "3", "cursor": page["next_cursor"]}
    assert len(seen) == 7 == len(set(seen))
    dates = [m for m in seen]
    assert dates[0] == "beta_chat/8"  # newest first


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": "501"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"sha256": "abc"}, "sha256"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-06-01", "until": "2024-05-01"}, "before"),
        ({"edited": "maybe"}, "edited"),
        ({"verdict": "guilty"}, "verdict"),
        ({"nonsense": "1"}, "unknown parameter"),
        ({"cursor": "!!!"}, "cursor"),
        ({"q": "x" * 201}, "q is longer"),
    ],
)
async def test_bad_queries_are_clear_400s(client: Client, store: Store, params: dict[str, str], needle: str) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    resp = await client.get("/api/v1/messages", params=params, headers=bearer(inv))
    assert resp.status == 400
    assert needle in (await resp.json())["error"]


async def test_cursor_of_other_filters_is_refused(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    page = await _get(client, "/api/v1/messages", inv, limit="1", channel="alpha_news")
    resp = await client.get(
        "/api/v1/messages", params={"limit": "1", "cursor": page["next_cursor"]}, headers=bearer(inv)
    )
    assert resp.status == 400 and "other filters" in (await resp.json())["error"]


async def test_message_context(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    ctx = await _get(client, "/api/v1/messages/alpha_news/4/context", inv)
    assert [m["msg_id"] for m in ctx["before"]] == [1, 2, 3] and [m["msg_id"] for m in ctx["after"]] == [5]
    assert [m["msg_id"] for m in ctx["reply_chain"]] == [2]
    assert [m["msg_id"] for m in ctx["replies"]] == [5]
    pic = await _get(client, "/api/v1/messages/alpha_news/2/context", inv)
    assert [m["msg_id"] for m in pic["album"]] == [2, 3]
    edited = await _get(client, "/api/v1/messages/alpha_news/1/context", inv)
    assert [v["text"] for v in edited["versions"]] == ["첫 번째 소식 Hello World", "첫 번째 소식 Hello World (fixed)"]
    resp = await client.get("/api/v1/messages/alpha_news/99/context", headers=bearer(inv))
    assert resp.status == 404
    resp = await client.get("/api/v1/messages/alpha_news/x1/context", headers=bearer(inv))
    assert resp.status == 400


async def test_channels(client: Client, store: Store) -> None:
    inv = await token(store, Role.INVESTIGATOR)
    listing = await _get(client, "/api/v1/channels", inv)
    assert [c["key"] for c in listing["items"]] == ["alpha_news", "beta_chat"]
    assert listing["items"][0]["title"] == "알파 뉴스"
    members = await _get(client, "/api/v1/channels/alpha_news/members", inv)
    assert [p["subscribers"] for p in members["items"]] == [100, 150]
    names = await _get(client, "/api/v1/channels/alpha_news/usernames", inv)
    assert names["usernames"] == ["alpha_news"]
    resp = await client.get("/api/v1/channels/nobody_here", headers=bearer(inv))
    assert resp.status == 404


async def test_media_bytes_need_a_case_authorization(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    resp = await client.get(f"/api/v1/media/{case.sha}/bytes", headers=bearer(inv))
    assert resp.status == 403 and "authorization" in (await resp.json())["error"]
    await AuthorizationRepo(store).add(
        case_id="CASE-1",
        warrant_ref="W-1",
        approver="judge",
        scope=[channel_scope("beta_chat")],
        accounts=["ana"],
        valid_until=time.time() + 3600,
    )
    resp = await client.get(f"/api/v1/media/{case.sha}/bytes", headers=bearer(inv))
    assert resp.status == 403, "named on the authorization but not a member of its case"
    await CaseMemberRepo(store).add("CASE-1", "ana", added_by="admin")
    resp = await client.get(f"/api/v1/media/{case.sha}/bytes", headers=bearer(inv))
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == case.image and resp.headers["Cache-Control"].startswith("no-store")
    actions = [e["action"] async for e in store["audit"].find({"actor": "token:ana"}).sort("at", 1)]
    assert actions == ["media.bytes.refused", "media.bytes.refused", "media.bytes"]
    # another investigator, not named on the authorization, still gets nothing
    other = await token(store, Role.INVESTIGATOR, "bob")
    resp = await client.get(f"/api/v1/media/{case.sha}/bytes", headers=bearer(other))
    assert resp.status == 403


async def test_reveal_is_audited_and_needs_csrf_with_a_cookie(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    resp = await client.post(f"/api/v1/media/{case.sha}/reveal", json={"message": "alpha_news/2"}, headers=bearer(inv))
    assert resp.status == 200
    entry = await store["audit"].find_one({"action": "media.reveal"})
    assert entry is not None and entry["target"] == case.sha and entry["filter"] == {"message": "alpha_news/2"}
    auth = client.app[AUTH]  # a console session of the same token (the cookie holds a session id)
    client.session.cookie_jar.update_cookies({"tgwatch_session": await auth.sessions.open(auth.tokens.digest(inv))})
    resp = await client.post(f"/api/v1/media/{case.sha}/reveal", json={})
    assert resp.status == 403 and "CSRF" in (await resp.json())["error"]


async def test_exports_stream_jsonl_and_csv(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    resp = await client.get("/api/v1/messages/export", params={"sha256": case.sha}, headers=bearer(inv))
    assert resp.status == 200 and resp.content_type == "application/x-ndjson"
    lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert {(x["channel"], x["msg_id"]) for x in lines} == {("alpha_news", 2), ("beta_chat", 7)}
    resp = await client.get("/api/v1/messages/export", params={"format": "csv", "q": "안녕"}, headers=bearer(inv))
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert rows[0][:3] == ["channel", "msg_id", "date"] and rows[1][3] == "reposted 안녕하세요"
    assert rows[1][4] == case.sha
    exports = await store["audit"].find({"action": "messages.export"}).sort("at", 1).to_list(None)
    assert [e["result_count"] for e in exports] == [2, 1]
    resp = await client.get("/api/v1/messages/export", params={"format": "xml"}, headers=bearer(inv))
    assert resp.status == 400


async def test_operations_and_the_auditor_sees_the_investigator(client: Client, store: Store, case: Case) -> None:
    inv = await token(store, Role.INVESTIGATOR, "ana")
    mon = await token(store, Role.MONITOR, "mo")
    aud = await token(store, Role.AUDITOR, "au")
    await _get(client, "/api/v1/messages", inv, sha256=case.sha)
    alerts = await _get(client, "/api/v1/alerts", mon, status="open")
    assert [a["key"] for a in alerts["items"]] == [f"match/testlist/{case.sha}"]
    resp = await client.post(
        f"/api/v1/alerts/match/testlist/{case.sha}/status", json={"status": "acknowledged"}, headers=bearer(mon)
    )
    assert resp.status == 200 and (await resp.json())["status"] == "acknowledged"
    health = await _get(client, "/api/v1/health", mon)
    assert health["store"] == "ok" and set(health["queues"]) == {"detection_jobs", "crawl_tasks"}
    assert (await _get(client, "/api/v1/runs", mon))["items"] == []
    resp = await client.get("/api/v1/messages", headers=bearer(mon))
    assert resp.status == 403, "monitors do not read evidence"
    trail = await _get(client, "/api/v1/audit", aud, actor="token:ana")
    assert trail["items"][0]["action"] == "messages.search"
    assert trail["items"][0]["filter"] == {"sha256": case.sha} and trail["items"][0]["result_count"] == 2


async def test_message_context_carries_its_ledger_inclusion_proof(client: Client, store: Store, tmp_path: Path) -> None:
    from crawler.evidence.heads import head_document
    from crawler.evidence.ledger import Ledger
    from crawler.evidence.merkle import leaf_hash, verify_inclusion
    from crawler.evidence.signing import generate_key, load_private_key, sign_tree_head
    from foundation.models import utcnow

    ledger = Ledger(store)
    await ledger.append({"kind": "capture", "subjects": ["message:alpha_news/1"]})
    seq = await ledger.append({"kind": "capture", "subjects": ["message:alpha_news/2", "channel:alpha_news"]})
    await ledger.append({"kind": "capture", "subjects": ["message:beta_chat/7"]})
    key = load_private_key(generate_key(tmp_path / "keys").private_path)
    size = await ledger.size()
    head = sign_tree_head(key, size, await ledger.root(size), utcnow())
    await store["ledger_heads"].insert_one(head_document(head))
    late = await ledger.append({"kind": "capture", "subjects": ["message:alpha_news/2"]})

    inv = await token(store, Role.INVESTIGATOR)
    ctx = await _get(client, "/api/v1/messages/alpha_news/2/context", inv)
    proved, pending = ctx["ledger"]["entries"]
    assert proved["seq"] == seq and proved["status"] == "proved" and proved["tree_size"] == 3
    assert verify_inclusion(
        leaf_hash(proved["payload"].encode("utf-8")),
        seq,
        3,
        [bytes.fromhex(p) for p in proved["inclusion_proof"]],
        bytes.fromhex(ctx["ledger"]["tree_head"]["root_hash"]),
    )
    assert pending["seq"] == late and pending["status"] == "awaiting signed head"
