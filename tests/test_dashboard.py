"""The console's dashboard, channel list, growth pages and targets pages, on the embedded store (issues 19 and 20)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.console import charts
from crawler.discovery.models import Sighting, SourceKind, TriageResult
from crawler.discovery.service import DiscoveryService
from crawler.growth import ranking
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.takedowns.models import (
    ItemKind,
    ItemStatus,
    Reason,
    RequestStatus,
    Sending,
    TakedownItem,
    TakedownRequest,
)
from crawler.tokens import Role
from foundation.links import normalize
from foundation.models import Alert, AlertKind, Channel, ChannelRef, Counters, Message, Source, utcnow
from storage.client import Store
from storage.daily import per_day
from storage.repos.accounts import AccountRepo
from storage.repos.alerts import AlertRepo
from storage.repos.audience import AudienceRepo
from storage.repos.runs import RunRepo
from storage.repos.takedowns import TakedownRepo
from storage.repos.targets import TargetRepo
from storage.workqueue import WorkQueue
from tests.test_console import CSRF, sign_in
from tests.test_investigate_api import token

Client = TestClient[web.Request, web.Application]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def client(store: Store, tmp_path: Path) -> AsyncIterator[Client]:
    app = build_app(store, config.load(data_dir=tmp_path), ALL_MODULES)
    async with TestClient(TestServer(app)) as c:
        yield c


def _svgs(html: str) -> list[ET.Element]:
    """Every inline chart, parsed as XML (a malformed chart fails here)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, flags=re.S)]


def _figure(html: str, fig_id: str) -> tuple[str, str | None]:
    """The text of figure ``fig_id`` and the link it carries (None when it is plain text)."""
    found = re.search(rf'id="{re.escape(fig_id)}">(?:<a href="([^"]*)">)?(\d+)', html)
    assert found is not None, f"no figure {fig_id}"
    return found.group(2), (found.group(1).replace("&amp;", "&") if found.group(1) else None)


async def _csrf(client: Client, path: str) -> str:
    found = CSRF.search(await (await client.get(path)).text())
    assert found is not None
    return found.group(1)


# -- charts ------------------------------------------------------------------------------------------


def test_charts_are_well_formed_accessible_svg_with_escaped_labels() -> None:
    bars = charts.bar_chart("Alerts <b>", "Seven days & more", [charts.Bar("<script>", 3, "/console/alerts?a=1&b=2"),
                                                                  charts.Bar("12-07", 0)])  # fmt: skip
    share = charts.share_chart("Removed", "share", [charts.Stack("0-1", 1, 4), charts.Stack("1-2", 0, 0)], "gone", "up")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    line = charts.line_chart("Growth", "desc", [charts.Line("Subscribers", [(now, 10), (now + timedelta(days=1), 25)])],
                             "none")  # fmt: skip
    empty = charts.line_chart("Growth", "desc", [charts.Line("Subscribers", [])], "nothing yet")
    for chart in (bars, share, line, empty):
        root = ET.fromstring(str(chart))
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title is not None and desc is not None
        assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        assert "<script" not in str(chart) and "style=" not in str(chart)
    root = ET.fromstring(str(bars))
    assert root.findtext(f"{SVG}title") == "Alerts <b>"
    links = root.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == ["/console/alerts?a=1&b=2"], "only a bar with a list links"
    assert "<script>" in [t.text for t in root.iter(f"{SVG}text")], "labels are text, escaped"
    assert "25%" in [t.text for t in ET.fromstring(str(share)).iter(f"{SVG}text")]
    assert "Subscribers 25" in [t.text for t in ET.fromstring(str(line)).iter(f"{SVG}text")]
    assert "nothing yet" in str(empty)


# -- growth over time --------------------------------------------------------------------------------


def _snapshot(name: str, at: datetime, **counters: int) -> Channel:
    return Channel(ref=ChannelRef(username=name), source=Source.WEB, seen_at=at, title=name, kind="channel",
                   counters=Counters(**counters))  # fmt: skip


async def test_growth_series_from_snapshots_and_a_bot_found_in_a_button(
    store: Store, ingest: Ingest, embedded_uri: str, tmp_path: Path
) -> None:
    t0 = utcnow() - timedelta(days=2)
    await ingest.submit([_snapshot("room_a", t0, subscribers=100), _snapshot("room_b", t0, subscribers=1000)])
    await ingest.submit([_snapshot("room_a", t0 + timedelta(days=1), subscribers=400, online=12),
                         _snapshot("room_b", t0 + timedelta(days=1), subscribers=1100)])  # fmt: skip
    await ingest.submit([_snapshot("room_a", t0, subscribers=100)])  # the same snapshot again: no new point
    series = await AudienceRepo(store).series("room_a")
    assert [(p["subscribers"], p["source"]) for p in series] == [(100, "web"), (400, "web")]
    assert series[1]["online"] == 12 and "members" not in series[1]
    # a bot named in a message's button becomes a candidate; each triage of its page adds a point
    discovery = DiscoveryService(store)
    link = normalize("https://t.me/promo_bot")
    assert link is not None
    await discovery.record([Sighting.of(link, SourceKind.SNOWBALL, "room_a", t0, context={"text": "button"})])
    for days, users in ((0, 5000), (1, 9000)):
        await discovery.apply_triage(TriageResult(link=link.canonical, fetched_at=t0 + timedelta(days=days),
                                                  state="valid", type="bot", username="promo_bot",
                                                  monthly_users=users))  # fmt: skip
    bot = await AudienceRepo(store).series("promo_bot")
    assert [(p["monthly_users"], p["source"], p["kind"]) for p in bot] == [
        (5000, "triage", "bot"),
        (9000, "triage", "bot"),
    ]
    ranked = ranking(await AudienceRepo(store).since(0))
    assert [(g.entity, g.change) for g in ranked] == [("promo_bot", 4000), ("room_a", 300), ("room_b", 100)]
    assert [g.entity for g in ranking(await AudienceRepo(store).since(0), kind="bot")] == ["promo_bot"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=store.db.name)

    async def tgwatch(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler", "--data-dir", str(tmp_path / "data"), "--log-format", "json", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    lines = [json.loads(x) for x in (await tgwatch("channels", "growth", "@room_a", "--json")).splitlines()]
    assert [(x["entity"], x["subscribers"]) for x in lines] == [("room_a", 100), ("room_a", 400)]
    text = await tgwatch("channels", "growth", "https://t.me/promo_bot")
    assert "monthly_users=5000" in text and "change +4000 (bot, 2 points)" in text
    growing = [json.loads(x) for x in (await tgwatch("channels", "growing", "--days", "7", "--json")).splitlines()]
    assert [(x["rank"], x["entity"], x["change"]) for x in growing] == [(1, "promo_bot", 4000), (2, "room_a", 300),
                                                                       (3, "room_b", 100)]  # fmt: skip
    only_channels = await tgwatch("channels", "growing", "--kind", "channel")
    assert "room_a" in only_channels and "promo_bot" not in only_channels


async def test_console_charts_a_bot_and_a_channel_over_time(client: Client, store: Store, ingest: Ingest) -> None:
    t0 = utcnow() - timedelta(days=3)
    await ingest.submit([_snapshot("room_a", t0, subscribers=100)])
    await ingest.submit([_snapshot("room_a", t0 + timedelta(days=1), subscribers=250)])
    await AudienceRepo(store).record("promo_bot", source="triage", at=t0, kind="bot", figures={"monthly_users": 10})
    await AudienceRepo(store).record("promo_bot", source="triage", at=t0 + timedelta(days=2), kind="bot",
                                     figures={"monthly_users": 70})  # fmt: skip
    await sign_in(client, await token(store, Role.INVESTIGATOR, "ana"))
    html = await (await client.get("/console/channels/room_a")).text()
    (chart,) = _svgs(html)
    circles = [c.findtext(f"{SVG}title") or "" for c in chart.iter(f"{SVG}circle")]
    assert len(circles) == 2 and circles[-1].endswith(": 250")
    bot = await client.get("/console/growth/promo_bot")
    (chart,) = _svgs(await bot.text())
    assert bot.status == 200 and "Monthly users 70" in [t.text for t in chart.iter(f"{SVG}text")]
    ranked = await (await client.get("/console/growth", params={"kind": "bot"})).text()
    assert 'href="/console/growth/promo_bot"' in ranked and "room_a" not in ranked
    ko = await client.get("/console/growth/promo_bot", headers={"Accept-Language": "ko"})
    assert "월간 사용자" in await ko.text()
    assert (await client.get("/console/growth", params={"kind": "planet"})).status == 400


# -- dashboard ---------------------------------------------------------------------------------------


async def _seed(store: Store, ingest: Ingest) -> datetime:
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ref = ChannelRef(username="room_a")
    await ingest.submit([
        Message(ref=ref, msg_id=1, source=Source.WEB, date=today + timedelta(minutes=1), text="a"),
        Message(ref=ref, msg_id=2, source=Source.WEB, date=today + timedelta(minutes=2), text="b"),
        Message(ref=ref, msg_id=3, source=Source.WEB, date=today - timedelta(days=3), text="c"),
        Message(ref=ref, msg_id=4, source=Source.WEB, date=today - timedelta(days=30), text="old"),
    ])  # fmt: skip
    alerts = AlertRepo(store)
    for key, kind, at in (
        ("alert-today", AlertKind.HASH_MATCH, today + timedelta(minutes=5)),
        ("alert-2d", AlertKind.HASH_MATCH, today - timedelta(days=2)),
        ("alert-6d", AlertKind.DETECTION, today - timedelta(days=6)),
        ("alert-9d", AlertKind.DETECTION, today - timedelta(days=9)),  # outside the week
    ):
        await alerts.raise_alert(Alert(key=key, kind=kind, summary=key, raised_at=at, channels=["room_a"]))
    await TargetRepo(store).add("room_a", method="web", group=None)
    await TargetRepo(store).add("room_b", method="web")
    await TargetRepo(store).add("room_c", method="web")
    runs = RunRepo(store)
    await runs.finish(await runs.start("https://t.me/room_a", "crawl"), "ok")
    await runs.finish(await runs.start("https://t.me/room_b", "crawl"), "failed")
    queue = WorkQueue(store, "detection_jobs")
    for n in range(3):
        await queue.enqueue(f"{n:064x}/nsfw", {"sha256": f"{n:064x}"})
    for name in ("acc1", "acc2"):
        await AccountRepo(store).add(name, session_enc="x", phone_enc=None, user_id=None, proxy=None)
    await AccountRepo(store).set_state("acc2", "banned", "test")
    return today


async def test_daily_counts_run_on_the_embedded_store(store: Store, ingest: Ingest) -> None:
    today = await _seed(store, ingest)
    counted = await per_day(store["alerts"], "raised_at", today - timedelta(days=6), today + timedelta(days=1))
    assert counted == {
        today.strftime("%Y-%m-%d"): 1,
        (today - timedelta(days=2)).strftime("%Y-%m-%d"): 1,
        (today - timedelta(days=6)).strftime("%Y-%m-%d"): 1,
    }
    kinds = await AlertRepo(store).per_kind(today - timedelta(days=6), today + timedelta(days=1))
    assert kinds == {"hash_match": 2, "detection": 1}


async def test_dashboard_figures_equal_the_seeded_data_and_link_to_their_lists(
    client: Client, store: Store, ingest: Ingest
) -> None:
    today = await _seed(store, ingest)
    day = today.strftime("%Y-%m-%d")
    await sign_in(client, await token(store, Role.ADMIN, "root"))
    resp = await client.get("/console/")
    html = await resp.text()
    assert resp.status == 200 and 'class="dashboard"' in html
    assert _figure(html, "fig-messages-today") == ("2", f"/console/search?since={day}")
    assert _figure(html, "fig-messages-week")[0] == "3"
    assert _figure(html, "fig-alerts-hash_match-today") == ("1", "/console/alerts?status=&kind=hash_match")
    assert _figure(html, "fig-alerts-hash_match-week")[0] == "2"
    assert (
        _figure(html, "fig-alerts-detection-week")[0] == "1" and _figure(html, "fig-alerts-detection-today")[0] == "0"
    )
    assert _figure(html, "fig-targets-ok") == ("1", "/console/targets?health=ok")
    assert _figure(html, "fig-targets-failing") == ("1", "/console/targets?health=failing")
    assert _figure(html, "fig-targets-never")[0] == "1"
    assert _figure(html, "fig-takedowns-overdue") == ("0", "/console/takedowns?status=open")
    assert (
        _figure(html, "fig-accounts-total") == ("2", None) or 'href="/console/accounts" id="fig-accounts-total"' in html
    )
    assert "3 waiting" in html
    svgs = _svgs(html)
    assert len(svgs) == 3, "crawl volume, alerts per day, removal share"
    titles = [s.findtext(f"{SVG}title") for s in svgs]
    alerts_chart = svgs[titles.index("Alerts per day")]
    bars = {a.get("href"): a.get("aria-label") for a in alerts_chart.iter(f"{SVG}a")}
    assert bars[f"/console/alerts?status=&day={day}"].endswith(": 1")
    assert len(bars) == 7
    # the links lead to lists that hold exactly the counted items
    listed = await (await client.get("/console/alerts", params={"status": "", "day": day})).text()
    assert "alert-today" in listed and "alert-2d" not in listed
    by_kind = await (await client.get("/console/alerts", params={"status": "", "kind": "detection"})).text()
    assert "alert-6d" in by_kind and "alert-today" not in by_kind
    failing = await (await client.get("/console/targets", params={"health": "failing"})).text()
    assert "https://t.me/room_b" in failing and "https://t.me/room_a" not in failing
    accounts = await (await client.get("/console/accounts", params={"state": "banned"})).text()
    assert "acc2" in accounts and "acc1" not in accounts and "session" not in accounts.lower().replace("sessions", "")
    assert (await client.get("/console/alerts", params={"day": "yesterday"})).status == 400
    ko = await (await client.get("/console/", headers={"Accept-Language": "ko"})).text()
    assert "대시보드" in ko and "일별 경보" in ko and "알려진 해시 일치" in ko and "차단됨" in ko


async def test_dashboard_per_role(client: Client, store: Store, ingest: Ingest) -> None:
    await _seed(store, ingest)
    await sign_in(client, await token(store, Role.MONITOR, "mo"))
    html = await (await client.get("/console/")).text()
    assert _figure(html, "fig-messages-today") == ("2", None), "monitors cannot open the message search"
    assert 'id="fig-accounts-total"' in html
    await sign_in(client, await token(store, Role.INVESTIGATOR, "ana"))
    html = await (await client.get("/console/")).text()
    assert _figure(html, "fig-messages-today")[1] is not None
    assert 'id="fig-accounts-total"' not in html and "/console/targets?health" not in html
    assert (await client.get("/console/targets")).status == 403
    await sign_in(client, await token(store, Role.AUDITOR, "au"))
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/audit"


# -- channels ----------------------------------------------------------------------------------------


async def test_channel_list_shows_state_risk_audience_growth_and_alerts_with_filters(
    client: Client, store: Store, ingest: Ingest
) -> None:
    t0 = utcnow() - timedelta(days=2)
    await ingest.submit([_snapshot("room_a", t0, subscribers=100), _snapshot("room_b", t0, subscribers=50)])
    await ingest.submit([_snapshot("room_a", t0 + timedelta(days=1), subscribers=180)])
    alert = Alert(key="alert-for-room-b", kind=AlertKind.DETECTION, summary="x", raised_at=t0, channels=["room_b"])
    await AlertRepo(store).raise_alert(alert)
    await sign_in(client, await token(store, Role.MONITOR, "mo"))
    html = await (await client.get("/console/channels")).text()
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", html, flags=re.S)
    assert len(rows) == 2, html[-1500:]
    room_a = next(r for r in rows if "room_a" in r)
    assert "180" in room_a and "+80" in room_a and 'href="/console/growth/room_a"' in room_a
    assert 'href="/console/channels/room_a"' not in room_a, "the channel page is for investigators"
    room_b = next(r for r in rows if "room_b" in r)
    assert 'href="/console/alerts?status=open&amp;channel=room_b">1</a>' in room_b
    behind = await (await client.get("/console/alerts", params={"status": "open", "channel": "room_b"})).text()
    assert "alert-for-room-b" in behind
    assert "alert-for-room-b" not in await (await client.get("/console/alerts", params={"channel": "room_a"})).text()
    only_alerts = await (await client.get("/console/channels", params={"alerts": "1"})).text()
    assert "room_b" in only_alerts and "room_a" not in only_alerts
    growing = await (await client.get("/console/channels", params={"growing": "1"})).text()
    assert "room_a" in growing and "room_b" not in growing
    assert (await client.get("/console/channels", params={"risk": "lots"})).status == 400
    entry = await store["audit"].find_one({"action": "channels.list", "actor": "token:mo"})
    assert entry is not None and entry["via"] == "console"


# -- targets -----------------------------------------------------------------------------------------


async def test_targets_pages_need_a_manager_and_the_csrf_token_and_are_audited(client: Client, store: Store) -> None:
    await sign_in(client, await token(store, Role.INVESTIGATOR, "ana"))
    assert (await client.get("/console/targets")).status == 403
    await sign_in(client, await token(store, Role.MONITOR, "mo"))
    resp = await client.post("/console/targets/add", data={"name": "@room_x"}, allow_redirects=False)
    assert resp.status == 403 and await TargetRepo(store).get("room_x") is None
    csrf = await _csrf(client, "/console/targets")
    resp = await client.post("/console/targets/add", data={"name": "@room_x", "every": "6h", "csrf_token": csrf},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    doc = await TargetRepo(store).get("room_x")
    assert doc is not None and doc["every"] == "6h" and doc["source"] == "console" and not doc["paused"]
    assert "https://t.me/room_x" in await (await client.get("/console/targets")).text()
    resp = await client.post("/console/targets/pause", data={"name": "https://t.me/room_x", "action": "pause",
                                                             "csrf_token": csrf}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303 and (await TargetRepo(store).get("room_x") or {})["paused"]
    resp = await client.post("/console/targets/run-now", data={"name": "room_x", "csrf_token": csrf})
    assert resp.status == 400 and "paused" in await resp.text()
    await client.post("/console/targets/pause", data={"name": "room_x", "action": "resume", "csrf_token": csrf})
    resp = await client.post("/console/targets/run-now", data={"name": "room_x", "csrf_token": csrf},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303 and resp.headers["Location"] == "/console/targets?queued=created"
    task = await store["crawl_tasks"].find_one({"payload.target": "https://t.me/room_x"})
    assert task is not None and task["state"] == "ready" and task["priority"] == 1000
    resp = await client.post("/console/targets/add", data={"name": "room_y", "every": "1h", "cron": "0 * * * *",
                                                           "csrf_token": csrf})  # fmt: skip
    assert resp.status == 400 and "not both" in await resp.text()
    resp = await client.post("/console/targets/add", data={"name": "not a name!", "csrf_token": csrf})
    assert resp.status == 400
    resp = await client.post("/console/targets/remove", data={"name": "room_x", "csrf_token": csrf},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303 and await TargetRepo(store).get("room_x") is None
    resp = await client.post("/console/targets/remove", data={"name": "room_x", "csrf_token": csrf})
    assert resp.status == 404
    trail = (
        await store["audit"]
        .find({"actor": "token:mo", "action": {"$regex": "^targets\\."}})
        .sort("at", 1)
        .to_list(None)
    )
    assert [(e["action"], e["target"], e["via"], e["role"]) for e in trail] == [
        ("targets.add", "https://t.me/room_x", "console", "monitor"),
        ("targets.pause", "https://t.me/room_x", "console", "monitor"),
        ("targets.resume", "https://t.me/room_x", "console", "monitor"),
        ("targets.run_now", "https://t.me/room_x", "console", "monitor"),
        ("targets.remove", "https://t.me/room_x", "console", "monitor"),
    ]


def _request(rid: str, created: datetime, *, sent: datetime | None, removed: list[datetime | None]) -> TakedownRequest:
    items = [
        TakedownItem(item_id=f"message:room_a/{rid}{n}", kind=ItemKind.MESSAGE, channel="room_a", msg_id=n + 1,
                     added_at=created, status=ItemStatus.REMOVED if gone else ItemStatus.ONLINE, removed_at=gone)
        for n, gone in enumerate(removed)
    ]  # fmt: skip
    sendings = [Sending(via="email:abuse@telegram.org", by="mo", at=sent, items=len(items))] if sent else []
    status = RequestStatus.DRAFT if sent is None else RequestStatus.PARTIAL
    return TakedownRequest(id=rid, reason=Reason.OTHER, items=items, created_at=created, created_by="mo",
                           sendings=sendings, status=status)  # fmt: skip


async def test_takedown_figures_and_removal_share_chart(client: Client, store: Store) -> None:
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    repo = TakedownRepo(store)
    await repo.insert(_request("TD-1", today + timedelta(minutes=1), sent=None, removed=[None]).to_doc())
    three = now - timedelta(days=3, hours=1)
    await repo.insert(_request("TD-2", three, sent=three, removed=[now - timedelta(days=2), None]).to_doc())
    ten = now - timedelta(days=10)
    await repo.insert(_request("TD-3", ten, sent=ten, removed=[today + timedelta(seconds=1)]).to_doc())
    await sign_in(client, await token(store, Role.MONITOR, "mo"))
    html = await (await client.get("/console/")).text()
    assert _figure(html, "fig-takedowns-drafted-today") == ("1", "/console/takedowns?status=draft")
    assert _figure(html, "fig-takedowns-drafted-week")[0] == "2"
    assert _figure(html, "fig-takedowns-sent-today")[0] == "0" and _figure(html, "fig-takedowns-sent-week")[0] == "1"
    assert _figure(html, "fig-takedowns-removed-today") == ("1", "/console/takedowns?status=removed")
    assert _figure(html, "fig-takedowns-removed-week")[0] == "2"
    (share,) = [s for s in _svgs(html) if (s.findtext(f"{SVG}title") or "").startswith("Share of reported")]
    labels = [t.text for t in share.iter(f"{SVG}text")]
    assert "50%" in labels and "100%" in labels, labels
    tips = [t.text or "" for t in share.iter(f"{SVG}title")]
    assert "3-7 days: removed 1, still online 1" in tips and "7-14 days: removed 1, still online 0" in tips


async def test_the_cli_changes_targets_with_the_same_audit_entries(
    store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=store.db.name)
    for args in (("targets", "add", "room_q", "--every", "2h"), ("targets", "pause", "room_q"),
                 ("targets", "pause", "room_q", "--resume"), ("targets", "remove", "room_q")):  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler", "--data-dir", str(tmp_path / "data"), "--log-format", "json", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
    trail = await store["audit"].find({"via": "cli"}).sort("at", 1).to_list(None)
    assert [(e["action"], e["target"], e["role"]) for e in trail] == [
        ("targets.add", "https://t.me/room_q", "cli"),
        ("targets.pause", "https://t.me/room_q", "cli"),
        ("targets.resume", "https://t.me/room_q", "cli"),
        ("targets.remove", "https://t.me/room_q", "cli"),
    ]
    assert all(e["actor"].startswith("cli:") for e in trail)
