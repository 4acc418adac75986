"""Takedown requests over HTTP and in the console: a real app over the embedded store.

Monitors turn an alert into a request and mark it sent; investigators read lists, details and
reports (audited); auditors read the ledger history; the figures appear as JSON, on the console and
as Prometheus gauges. Messages enter through the real ingest door with the capture stage, so every
item carries real evidence ledger references.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from config import Settings
from crawler.api.app import LEDGER, build_app
from crawler.evidence.capture import install as install_capture
from crawler.evidence.heads import sign_head_now
from crawler.evidence.ledger import Ledger
from crawler.evidence.members import CaseMembers
from crawler.evidence.signing import generate_key
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.takedowns.models import ItemStatus, ProbeResult, Reason
from crawler.takedowns.render import SCHEMA
from crawler.takedowns.service import TakedownService
from crawler.tokens import Role
from foundation.models import Alert, AlertKind, ChannelRef, MediaKind, MediaRef, Message, RawCapture, Source, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from tests.test_console import CSRF, sign_in
from tests.test_investigate_api import bearer, token
from tests.test_scheduling_metrics import sample_value

Client = TestClient[web.Request, web.Application]
SHA = "c" * 64
OTHER = "d" * 64
ALERT = f"match/testlist/{SHA}"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def msg(channel: str, i: int, *digests: str) -> Message:
    html = f"<div>post {i}</div>"
    return Message(
        ref=ChannelRef(username=channel),
        msg_id=i,
        source=Source.WEB,
        date=T0 + timedelta(minutes=i),
        text=f"post {i}",
        html=html,
        media=[MediaRef(kind=MediaKind.PHOTO, sha256=d, url=f"http://sample/{d[:8]}.jpg") for d in digests],
        raw=RawCapture.of("html", html, url=f"http://sample/s/{channel}", fetched_at=T0),
    )


@dataclass
class World:
    settings: Settings
    ledger: Ledger


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> World:
    """Two channels showing one (digest-only) picture, one more message, and an alert on the picture."""
    settings = config.load(data_dir=tmp_path)
    key = settings.evidence.private_key_path(tmp_path)
    generate_key(key.parent, name=key.name)  # this server signs tree heads (the JSON report names one)
    ledger = Ledger(store)
    ingest = Ingest(store, store_retry_seconds=2.0)
    install_capture(ingest, ledger, worker="test")
    await ingest.submit(
        [msg("room_one", 1, SHA), msg("room_one", 2), msg("room_two", 7, SHA), msg("room_two", 8, OTHER)]
    )
    await AlertRepo(store).raise_alert(
        Alert(
            key=ALERT, kind=AlertKind.HASH_MATCH, sha256=SHA, summary="matched test list",
            channels=["room_one", "room_two"], raised_at=T0 + timedelta(hours=1),
        )
    )  # fmt: skip
    return World(settings=settings, ledger=ledger)


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    app = build_app(store, world.settings, ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _json(client: Client, method: str, path: str, tok: str, status: int = 200, **kw: Any) -> Any:
    resp = await client.request(method, path, headers=bearer(tok), **kw)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_monitor_creates_from_an_alert_and_sends_others_read_and_audit(
    client: Client, store: Store, world: World
) -> None:
    mon = await token(store, Role.MONITOR, "mo")
    inv = await token(store, Role.INVESTIGATOR, "ana")
    await CaseMembers(world.ledger).add("C-7", "ana", actor="admin")  # the request names her case
    aud = await token(store, Role.AUDITOR, "au")
    body = {"alert": ALERT, "reason": "sexual_deepfake", "case": "C-7", "note": "victim report 12"}

    created = await _json(client, "POST", "/api/v1/takedowns", mon, 201, json=body)
    rid = created["id"]
    assert rid == "TD-000001" and created["status"] == "draft" and created["created_by"] == "token:mo"
    assert [i["item_id"] for i in created["items"]] == ["message:room_one/1", "message:room_two/7"]
    assert created["items"][0]["link"] == "https://t.me/room_one/1" and created["items"][0]["evidence"]
    assert created["alerts"] == [ALERT] and created["case"] == "C-7"

    # who may create, and what is refused
    resp = await client.post("/api/v1/takedowns", json=body, headers=bearer(inv))
    assert resp.status == 403
    await _json(client, "POST", "/api/v1/takedowns", mon, 404, json={**body, "alert": "match/none/x"})
    for bad in ({"reason": "sexual_deepfake"}, {**body, "reason": "dislike"}, {**body, "extra": 1}):
        await _json(client, "POST", "/api/v1/takedowns", mon, 400, json=bad)
    await _json(client, "POST", f"/api/v1/takedowns/{rid}/sent", mon, 400, json={"via": ""})

    sent = await _json(
        client,
        "POST",
        f"/api/v1/takedowns/{rid}/sent",
        mon,
        json={"via": "email:abuse@telegram.org", "reference": "T-42"},
    )
    assert sent["status"] == "sent"
    assert [(s["by"], s["via"], s["reference"]) for s in sent["sendings"]] == [
        ("token:mo", "email:abuse@telegram.org", "T-42")
    ]
    assert (await client.post(f"/api/v1/takedowns/{rid}/sent", json={"via": "x"}, headers=bearer(inv))).status == 403
    await _json(client, "POST", "/api/v1/takedowns/TD-999999/sent", mon, 404, json={"via": "email:x"})

    # investigators read: list (filtered), detail, both reports
    listed = await _json(client, "GET", "/api/v1/takedowns", inv)
    assert [(r["id"], r["status"], r["items"], r["removed"]) for r in listed["items"]] == [(rid, "sent", 2, 0)]
    assert listed["next_cursor"] is None
    assert [r["id"] for r in (await _json(client, "GET", "/api/v1/takedowns?status=open", inv))["items"]] == [rid]
    assert (await _json(client, "GET", "/api/v1/takedowns?status=removed", inv))["items"] == []
    assert "status must be one of" in (await _json(client, "GET", "/api/v1/takedowns?status=gone", inv, 400))["error"]

    detail = await _json(client, "GET", f"/api/v1/takedowns/{rid.lower()}", inv)
    assert detail["id"] == rid and detail["reason_label"].startswith("Sexual deepfake")
    assert [i["status"] for i in detail["items"]] == ["pending", "pending"]
    assert all(i["last_check"] is None for i in detail["items"]) and detail["checks"] == []
    await _json(client, "GET", "/api/v1/takedowns/TD-424242", inv, 404)

    resp = await client.get(f"/api/v1/takedowns/{rid}/report", headers=bearer(inv))
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert f"Removal request {rid}" in text and "https://t.me/room_one/1" in text and "https://t.me/room_two/7" in text
    assert f"SHA-256 {SHA}" in text

    head = await sign_head_now(client.app[LEDGER], client.app[LEDGER].signer)  # type: ignore[arg-type]
    report = await _json(client, "GET", f"/api/v1/takedowns/{rid}/report?format=json", inv)
    assert report["schema"] == SCHEMA and report["request_id"] == rid and report["status"] == "sent"
    assert report["evidence"]["tree_head"]["size"] == head.size
    assert report["evidence"]["tree_head"]["signature"] == head.signature
    assert set(report["evidence"]["request_ledger_seqs"]) <= set(range(head.size))
    assert [i["url"] for i in report["items"]] == ["https://t.me/room_one/1", "https://t.me/room_two/7"]
    await _json(client, "GET", f"/api/v1/takedowns/{rid}/report?format=pdf", inv, 400)

    # the history is the auditor's (and investigator's), not the monitor's
    history = await _json(client, "GET", f"/api/v1/takedowns/{rid}/history", aud)
    actions = [e["action"] for e in history["entries"]]
    assert actions[:2] == ["create", "sent"] and set(actions) == {"create", "sent", "status"}
    sent_entry = history["entries"][1]
    assert sent_entry["actor"] == "token:mo" and sent_entry["via"] == "email:abuse@telegram.org"
    assert sent_entry["reference"] == "T-42" and f"takedown:{rid}" in sent_entry["subjects"]
    assert (await client.get(f"/api/v1/takedowns/{rid}/history", headers=bearer(mon))).status == 403
    await _json(client, "GET", f"/api/v1/takedowns/{rid}/history", inv)

    reads = {e["action"] async for e in store["audit"].find({"actor": "token:ana"})}
    assert {"takedowns.list", "takedowns.get", "takedowns.report", "takedowns.history"} <= reads
    report_audit = await store["audit"].find_one(
        {"actor": "token:ana", "action": "takedowns.report", "filter.format": "json"}
    )
    assert report_audit is not None and report_audit["target"] == rid and report_audit["role"] == "investigator"
    assert await store["audit"].find_one({"actor": "token:au", "action": "takedowns.history"}) is not None


async def test_list_pages_with_a_cursor(client: Client, store: Store, world: World) -> None:
    mon = await token(store, Role.MONITOR, "mo")
    made = []
    for ref in ("room_one/1", "room_one/2", "room_two/7"):
        created = await _json(client, "POST", "/api/v1/takedowns", mon, 201, json={"messages": [ref], "reason": "ncii"})
        made.append(created["id"])
    seen: list[str] = []
    path = "/api/v1/takedowns?limit=2"
    while True:
        page = await _json(client, "GET", path, mon)
        seen += [r["id"] for r in page["items"]]
        if not page["next_cursor"]:
            break
        path = f"/api/v1/takedowns?limit=2&cursor={page['next_cursor']}"
    assert seen == made[::-1], "newest first, each once"
    await _json(client, "GET", "/api/v1/takedowns?cursor=later", mon, 400)
    await _json(client, "GET", "/api/v1/takedowns?limit=0", mon, 400)


async def test_figures_as_json_and_prometheus_gauges(client: Client, store: Store, world: World) -> None:
    """Requests made and sent ten days ago under a controlled clock; one of two items removed
    an hour after sending: the API and /metrics show the same figures."""
    sent_at = utcnow().replace(microsecond=0) - timedelta(days=10)
    clock_at = [sent_at - timedelta(hours=2)]
    svc = TakedownService(store, world.ledger, world.settings.takedowns, clock=lambda: clock_at[0])
    req = await svc.create(reason=Reason.SEXUAL_DEEPFAKE, actor="mo", alert=ALERT)
    draft = await svc.create(reason=Reason.OTHER, actor="mo", messages=["room_two/8"])
    clock_at[0] = sent_at
    await svc.mark_sent(req.id, via="email:abuse@telegram.org", actor="mo")
    removed_at = sent_at + timedelta(hours=1)
    clock_at[0] = removed_at
    await svc.apply_results(
        req.id,
        [
            ProbeResult(item_id="message:room_one/1", status=ItemStatus.REMOVED, reason="post_not_found",
                        checked_at=removed_at, method="web", url="http://sample/room_one/1"),
            ProbeResult(item_id="message:room_two/7", status=ItemStatus.ONLINE, reason="present",
                        checked_at=removed_at, method="web", url="http://sample/room_two/7"),
        ],
    )  # fmt: skip

    inv = await token(store, Role.INVESTIGATOR, "ana")
    stats = await _json(client, "GET", "/api/v1/takedowns/stats", inv)
    assert stats["requests"] == {"total": 2, "draft": 1, "partial": 1}
    assert stats["items"] == {"total": 3, "online": 1, "pending": 1, "removed": 1}
    assert stats["request_to_removal"]["count"] == 1 and stats["request_to_removal"]["median_s"] == 3600
    assert stats["detection_to_request"]["count"] == 2
    for window in ("24h", "7d"):
        assert stats["removed_within"]["items"][window] == {"eligible": 2, "removed": 1, "share": 0.5}
    assert stats["removed_within"]["items"]["30d"] == {"eligible": 0, "removed": 0, "share": None}
    assert stats["overdue"] == {"count": 1, "requests": [req.id]} and stats["unsent"] == 1
    assert await store["audit"].find_one({"actor": "token:ana", "action": "takedowns.stats"}) is not None

    detail = await _json(client, "GET", f"/api/v1/takedowns/{req.id}", inv)
    last = {i["item_id"]: i["last_check"] for i in detail["items"]}
    first = last["message:room_one/1"]
    assert first["status"] == "removed" and first["reason"] == "post_not_found"
    assert last["message:room_two/7"]["status"] == "online" and len(detail["checks"]) == 2
    assert draft.id != req.id

    mon = await token(store, Role.MONITOR, "prometheus")
    resp = await client.get("/metrics", headers=bearer(mon))
    assert resp.status == 200
    body = await resp.text()
    assert sample_value(body, "tgwatch_takedown_requests", status="partial") == 1
    assert sample_value(body, "tgwatch_takedown_requests", status="draft") == 1
    assert 'tgwatch_takedown_requests{status="reopened"} 0.0' in body, "every status is exported, even at 0"
    assert sample_value(body, "tgwatch_takedown_items", status="removed") == 1
    assert sample_value(body, "tgwatch_takedown_overdue") == 1
    assert sample_value(body, "tgwatch_takedown_unsent") == 1
    assert sample_value(body, "tgwatch_takedown_removed_share", window="24h") == 0.5
    assert sample_value(body, "tgwatch_takedown_removed_eligible", window="7d") == 2
    assert 'tgwatch_takedown_removed_share{window="30d"} NaN' in body, "no item is 30 days old: unknown, not 0"
    assert sample_value(body, "tgwatch_takedown_removal_seconds", quantile="0.5") == 3600
    assert sample_value(body, "tgwatch_takedown_detection_to_request_seconds", quantile="0.9") > 0

    await sign_in(client, inv)  # the console shows the same figures
    listing = await (await client.get("/console/takedowns", params={"status": "all"})).text()
    removal = re.search(r"Request sent → removal</td><td>([^<]*)</td>", listing)
    assert removal is not None and removal.group(1) == "1h"
    assert "<tr><td>24h</td><td>50%</td><td>1/2</td><td>0%</td><td>0/1</td></tr>" in listing
    assert f'<li><a href="/console/takedowns/{req.id}">{req.id}</a></li>' in listing, "overdue"


async def test_console_create_from_an_alert_send_and_read(client: Client, store: Store) -> None:
    mon = await token(store, Role.MONITOR, "mo")
    await sign_in(client, mon)
    alerts = await (await client.get("/console/alerts")).text()
    assert "Create takedown" in alerts and 'action="/console/takedowns/create"' in alerts
    assert '<option value="sexual_deepfake"' in alerts
    csrf = CSRF.search(alerts)
    assert csrf is not None
    form = {"alert": ALERT, "reason": "sexual_deepfake"}
    resp = await client.post("/console/takedowns/create", data=form, allow_redirects=False)
    assert resp.status == 403 and "CSRF" in await resp.text()
    assert await store["takedowns"].count_documents({}) == 0
    resp = await client.post(
        "/console/takedowns/create", data={**form, "reason": "dislike", "csrf_token": csrf.group(1)}
    )
    assert resp.status == 400
    resp = await client.post(
        "/console/takedowns/create", data={**form, "csrf_token": csrf.group(1)}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console/takedowns/TD-000001"

    page = await client.get("/console/takedowns/TD-000001")
    html = await page.text()
    assert page.status == 200
    assert "Removal request TD-000001" in html and "<pre" in html and "https://t.me/room_one/1" in html
    assert 'action="/console/takedowns/TD-000001/sent"' in html, "monitors may mark it sent"
    assert "History (evidence ledger)" not in html, "the ledger history is for auditors and investigators"
    assert "<img" not in html and "<video" not in html and 'href="https://t.me' not in html
    resp = await client.post(
        "/console/takedowns/TD-000001/sent",
        data={"via": "in-app report", "reference": "R-1", "csrf_token": csrf.group(1)},
        allow_redirects=False,
    )
    assert resp.status == 303
    html = await (await client.get("/console/takedowns/TD-000001")).text()
    assert "via in-app report" in html and "reference R-1" in html
    listing = await (await client.get("/console/takedowns")).text()
    assert "TD-000001" in listing and "Removal figures" in listing and "Overdue" in listing
    assert "<td>0/2</td>" in listing and "1 requests (sent 1)" in listing and "2 items (pending 2)" in listing
    assert "via in-app report" in html and "R-1" in html and ", 2 items</li>" in html
    assert "built-in method" not in listing + html
    assert 'href="/console/takedowns"' in listing, "the nav links the takedowns page"

    inv = await token(store, Role.INVESTIGATOR, "ana")
    await sign_in(client, inv)
    alerts = await (await client.get("/console/alerts")).text()
    assert "Create takedown" not in alerts
    html = await (await client.get("/console/takedowns/TD-000001")).text()
    assert "History (evidence ledger)" in html and "in-app report" in html
    assert "/sent" not in html.split("<h2>Report")[0].split("<h2>Sent</h2>")[1], "no mark-sent form for investigators"
    resp = await client.post(
        "/console/takedowns/create",
        data={**form, "csrf_token": CSRF.search(html).group(1)},  # type: ignore[union-attr]
    )
    assert resp.status == 403
    assert (await client.get("/console/takedowns/TD-000404")).status == 404
    reads = {(e["action"], e["via"]) async for e in store["audit"].find({"actor": "token:ana"})}
    assert {("takedowns.get", "console"), ("takedowns.history", "console")} <= reads

    aud = await token(store, Role.AUDITOR, "au")
    await sign_in(client, aud)
    html = await (await client.get("/console/takedowns/TD-000001")).text()
    rows = re.findall(r"<tr><td>\d+</td><td>(?:<time[^>]*>[^<]*</time>|[^<]*)</td><td>(\w+)</td><td>([^<]*)</td>", html)
    assert [a for a, _ in rows][:2] == ["create", "sent"] and ("sent", "token:mo") in rows
    assert (await client.get("/console/takedowns?status=sent")).status == 200
    assert (await client.get("/console/takedowns?status=bogus")).status == 400
