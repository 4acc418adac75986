"""Takedown requests on the real embedded store and ledger: creation, sending, re-check results,
back-off, re-opening, the ledger history and the figures, all under controlled clocks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config.takedowns import TakedownSettings
from crawler.evidence.capture import install as install_capture
from crawler.evidence.ledger import Ledger
from crawler.ingest import Ingest
from crawler.takedowns.models import ItemStatus, ProbeResult, Reason, RequestStatus
from crawler.takedowns.render import SCHEMA, render_json, render_text
from crawler.takedowns.service import TakedownService
from crawler.takedowns.stats import compute_stats
from foundation.errors import NotFound
from foundation.models import Alert, AlertKind, ChannelRef, MediaKind, MediaRef, Message, RawCapture, Source
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.media import MediaRepo

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def msg(channel: str, i: int, *digests: str, source: Source = Source.WEB) -> Message:
    html = f"<div>post {i}</div>"
    return Message(
        ref=ChannelRef(username=channel),
        msg_id=i,
        source=source,
        date=T0 - DAY + timedelta(minutes=i),
        text=f"post {i}",
        html=html,
        media=[MediaRef(kind=MediaKind.PHOTO, sha256=d, url=f"http://sample/{d[:8]}.jpg") for d in digests],
        raw=RawCapture.of("html", html, url=f"http://sample/s/{channel}", fetched_at=T0 - DAY),
    )


@pytest.fixture
async def world(store: Store) -> AsyncIterator[tuple[TakedownService, Clock, Ledger]]:
    ledger = Ledger(store)
    ingest = Ingest(store, store_retry_seconds=2.0)
    install_capture(ingest, ledger, worker="test")
    await ingest.submit([msg("room_one", 1, SHA_A), msg("room_one", 2), msg("room_one", 3, SHA_B)])
    await ingest.submit([msg("room_two", 7, SHA_A), msg("room_two", 8)])
    clock = Clock(T0)
    yield TakedownService(store, ledger, TakedownSettings(reporter_name="Test Hotline"), clock=clock), clock, ledger


def result(item: str, status: ItemStatus, reason: str, at: datetime) -> ProbeResult:
    return ProbeResult(item_id=item, status=status, reason=reason, checked_at=at, method="web", url="http://x")


async def test_create_from_messages_builds_items_with_links_digests_and_evidence(world: tuple) -> None:
    service, _clock, ledger = world
    req = await service.create(
        reason=Reason.SEXUAL_DEEPFAKE, actor="kim", messages=["room_one/1", "https://t.me/room_two/7"], case="C-9"
    )
    assert req.id == "TD-000001" and req.status is RequestStatus.DRAFT
    assert [i.item_id for i in req.items] == ["message:room_one/1", "message:room_two/7"]
    first = req.items[0]
    assert first.link == "https://t.me/room_one/1" and [m.sha256 for m in first.media] == [SHA_A]
    assert first.evidence, "the item names the ledger entries of its captures"
    for seq in first.evidence:
        entry = await ledger.entry(seq)
        assert entry is not None and entry["kind"] == "capture"
    assert all(i.next_check_at == T0 for i in req.items)  # checked right away
    entry = await ledger.entry(req.ledger[0])
    assert entry is not None
    payload = json.loads(entry["payload"])
    assert payload["kind"] == "takedown" and payload["action"] == "create" and payload["actor"] == "kim"
    assert payload["cases"] == ["C-9"] and "message:room_one/1" in payload["subjects"]
    assert "takedown:TD-000001" in payload["subjects"]
    again = await service.create(reason=Reason.NCII, actor="kim", channel="@room_two")
    assert again.id == "TD-000002" and again.items[0].item_id == "channel:room_two"
    assert again.items[0].link == "https://t.me/room_two"


async def test_create_from_an_alert_reports_every_message_holding_its_media(world: tuple, store: Store) -> None:
    service, _clock, _ = world
    raised = T0 - 3 * HOUR
    await AlertRepo(store).raise_alert(
        Alert(key=f"match/list/{SHA_A}", kind=AlertKind.HASH_MATCH, sha256=SHA_A, summary="match",
              details={"message": "room_one/1"}, channels=["room_one"], raised_at=raised)
    )  # fmt: skip
    req = await service.create(reason=Reason.SEXUAL_DEEPFAKE, actor="kim", alert=f"match/list/{SHA_A}")
    assert sorted(i.item_id for i in req.items) == ["message:room_one/1", "message:room_two/7"]
    assert req.alerts == [f"match/list/{SHA_A}"]
    assert req.detected_at == raised


async def test_create_from_an_acknowledged_alert(world: tuple, store: Store) -> None:
    service, _, _ = world
    alerts = AlertRepo(store)
    key = f"match/list/{SHA_B}"
    await alerts.raise_alert(
        Alert(key=key, kind=AlertKind.HASH_MATCH, sha256=SHA_B, summary="match", details={"message": "room_one/3"},
              channels=["room_one"], raised_at=T0 - HOUR)
    )  # fmt: skip
    assert await alerts.set_status(key, "acknowledged", "kim")  # the alert now carries its history
    req = await service.create(reason=Reason.NCII, actor="kim", alert=key)
    assert [i.item_id for i in req.items] == ["message:room_one/3"] and req.detected_at == T0 - HOUR


async def test_create_refuses_what_is_not_stored(world: tuple) -> None:
    service, _, _ = world
    with pytest.raises(NotFound, match="not stored"):
        await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/99"])
    with pytest.raises(NotFound, match="no stored channel"):
        await service.create(reason=Reason.NCII, actor="kim", channel="nobody_here")
    with pytest.raises(NotFound, match="no alert"):
        await service.create(reason=Reason.NCII, actor="kim", alert="match/none/x")


async def test_send_check_remove_and_the_ledger_history(world: tuple) -> None:
    service, clock, _ = world
    req = await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/1", "room_one/3"])
    clock.at = T0 + HOUR
    sent = await service.mark_sent(req.id, via="email:abuse@telegram.org", actor="lee", reference="T-1")
    assert sent.status is RequestStatus.SENT and sent.sent_at == T0 + HOUR and sent.sendings[0].by == "lee"
    clock.at = T0 + 5 * HOUR
    changed, reopened = await service.apply_results(
        req.id,
        [
            result("message:room_one/1", ItemStatus.REMOVED, "post_not_found", clock.at),
            result("message:room_one/3", ItemStatus.ONLINE, "present", clock.at),
        ],
    )
    assert (changed, reopened) == (2, False)
    now = await service.get(req.id)
    assert now.status is RequestStatus.PARTIAL
    gone = now.item("message:room_one/1")
    assert gone is not None and gone.removed_at == T0 + 5 * HOUR and gone.status_reason == "post_not_found"
    clock.at = T0 + 30 * HOUR
    await service.apply_results(req.id, [result("message:room_one/3", ItemStatus.REMOVED, "channel_blocked", clock.at)])
    done = await service.get(req.id)
    assert done.status is RequestStatus.REMOVED and done.removed_at == T0 + 30 * HOUR
    history = await service.history(req.id)
    actions = [(e["action"], e.get("from"), e.get("to")) for e in history]
    assert actions == [
        ("create", None, None),
        ("sent", None, None),
        ("status", "draft", "sent"),
        ("item_status", "pending", "removed"),
        ("item_status", "pending", "online"),
        ("status", "sent", "partial"),
        ("item_status", "online", "removed"),
        ("status", "partial", "removed"),
    ]
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)
    checks = await service.repo.checks(req.id)
    assert len(checks) == 3 and {c["status"] for c in checks} == {"removed", "online"}


async def test_recheck_cadence_backs_off_with_age_and_stops_after_removed_rechecks(world: tuple) -> None:
    service, clock, _ = world
    s = service.settings
    req = await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/2"])
    await service.mark_sent(req.id, via="in-app", actor="kim")
    item = "message:room_one/2"
    expected = [
        (HOUR, s.fresh_interval),
        (2 * DAY, s.week_interval),
        (10 * DAY, s.month_interval),
        (40 * DAY, s.old_interval),
    ]
    for age, interval in expected:
        clock.at = T0 + age
        await service.apply_results(req.id, [result(item, ItemStatus.ONLINE, "present", clock.at)])
        got = (await service.get(req.id)).item(item)
        assert got is not None and got.next_check_at == clock.at + timedelta(seconds=interval)
    # failures retry sooner, doubling, never later than the age interval
    clock.at = T0 + 41 * DAY
    for n in (1, 2, 3):
        clock.at += timedelta(seconds=1)
        await service.apply_results(req.id, [result(item, ItemStatus.UNKNOWN, "fetch_failed", clock.at)])
        got = (await service.get(req.id)).item(item)
        assert got is not None and got.status is ItemStatus.ONLINE  # unknown keeps the last known state
        assert got.last_result is ItemStatus.UNKNOWN and got.failures == n
        assert got.next_check_at == clock.at + timedelta(seconds=s.unknown_retry * 2 ** (n - 1))
    # a result older than the last one recorded (an overlapping run) changes nothing
    stale = clock.at - HOUR
    late = [result(item, ItemStatus.REMOVED, "post_not_found", stale)]
    assert await service.apply_results(req.id, late) == (0, False)
    assert (await service.get(req.id)).items[0].status is ItemStatus.ONLINE
    # removed: re-checked removed_rechecks more times, further apart, then final
    clock.at += timedelta(seconds=1)
    removed_first = clock.at
    gaps = []
    for _ in range(s.removed_rechecks + 1):
        await service.apply_results(req.id, [result(item, ItemStatus.REMOVED, "post_not_found", clock.at)])
        got = (await service.get(req.id)).item(item)
        assert got is not None
        if got.next_check_at is None:
            break
        gaps.append((got.next_check_at - clock.at).total_seconds())
        clock.at = got.next_check_at
    assert gaps == [s.removed_recheck_every * 2**k for k in range(s.removed_rechecks)]
    final = await service.get(req.id)
    assert final.status is RequestStatus.REMOVED and final.next_check_at() is None
    assert final.items[0].removed_at == removed_first  # the first sighting of its removal is kept
    assert await service.repo.due((T0 + 400 * DAY).timestamp(), 10) == []


async def test_an_item_back_online_reopens_until_sent_again(world: tuple) -> None:
    service, clock, _ = world
    req = await service.create(reason=Reason.NCII, actor="kim", channel="room_one")
    await service.mark_sent(req.id, via="in-app", actor="kim")
    item = "channel:room_one"
    clock.at = T0 + HOUR
    await service.apply_results(req.id, [result(item, ItemStatus.REMOVED, "channel_blocked", clock.at)])
    assert (await service.get(req.id)).status is RequestStatus.REMOVED
    clock.at = T0 + 2 * DAY
    changed, reopened = await service.apply_results(req.id, [result(item, ItemStatus.ONLINE, "present", clock.at)])
    assert (changed, reopened) == (1, True)
    back = await service.get(req.id)
    assert back.status is RequestStatus.REOPENED and back.reopen_count == 1 and back.removed_at is None
    clock.at = T0 + 3 * DAY
    resent = await service.mark_sent(req.id, via="in-app", actor="kim")
    assert resent.status is RequestStatus.SENT and len(resent.sendings) == 2
    assert [e["action"] for e in await service.history(req.id)].count("reopen") == 1


async def test_concurrent_changes_are_both_kept(world: tuple) -> None:
    service, _clock, _ = world
    req = await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/1"])
    await asyncio.gather(
        service.mark_sent(req.id, via="in-app", actor="a"),
        service.mark_sent(req.id, via="email:abuse@telegram.org", actor="b"),
        service.apply_results(req.id, [result("message:room_one/1", ItemStatus.ONLINE, "present", T0)]),
    )
    final = await service.get(req.id)
    assert sorted(s.by for s in final.sendings) == ["a", "b"]
    assert final.items[0].status is ItemStatus.ONLINE and final.rev == 3
    assert len(final.ledger) == len(set(final.ledger)) == 5  # create, 2 × sent, status draft→sent, item_status


async def test_stats_from_controlled_clocks(world: tuple) -> None:
    service, clock, _ = world
    fast = await service.create(reason=Reason.NCII, actor="k", messages=["room_one/1"])
    slow = await service.create(reason=Reason.NCII, actor="k", messages=["room_one/3"])
    stuck = await service.create(reason=Reason.NCII, actor="k", messages=["room_two/7"])
    await service.create(reason=Reason.NCII, actor="k", messages=["room_two/8"])  # never sent
    clock.at = T0 + HOUR
    for r in (fast, slow, stuck):
        await service.mark_sent(r.id, via="in-app", actor="k")
    clock.at = T0 + 3 * HOUR
    await service.apply_results(fast.id, [result("message:room_one/1", ItemStatus.REMOVED, "post_not_found", clock.at)])
    clock.at = T0 + HOUR + 3 * DAY
    await service.apply_results(slow.id, [result("message:room_one/3", ItemStatus.REMOVED, "post_not_found", clock.at)])
    await service.apply_results(stuck.id, [result("message:room_two/7", ItemStatus.ONLINE, "present", clock.at)])

    all_requests = await service.all()
    early = compute_stats(all_requests, T0 + 12 * HOUR, overdue_after=86_400).as_dict()
    assert early["overdue"]["count"] == 0  # nothing is late yet
    assert early["removed_within"]["items"]["24h"]["eligible"] == 0  # nobody sent 24 h ago yet

    figures = compute_stats(all_requests, T0 + 31 * DAY, overdue_after=86_400).as_dict()
    assert figures["requests"] == {"total": 4, "draft": 1, "removed": 2, "sent": 1}
    assert figures["unsent"] == 1
    within = figures["removed_within"]["items"]
    assert within["24h"] == {"eligible": 3, "removed": 1, "share": 1 / 3}
    assert within["7d"] == {"eligible": 3, "removed": 2, "share": 2 / 3}
    assert within["30d"]["share"] == 2 / 3
    assert figures["removed_within"]["requests"]["24h"] == {"eligible": 3, "removed": 1, "share": 1 / 3}
    removal = figures["request_to_removal"]
    assert removal["count"] == 2 and removal["median_s"] == (2 * 3600 + 3 * 86_400) / 2
    assert figures["overdue"] == {"count": 1, "requests": [stuck.id]}
    detect = figures["detection_to_request"]  # first seen at ingest (now) → created at T0
    assert detect["count"] == 4


async def test_reports_render_as_text_and_json(world: tuple) -> None:
    service, _clock, _ = world
    req = await service.create(reason=Reason.SEXUAL_DEEPFAKE, actor="kim", messages=["room_one/1"], case="C-1")
    await service.mark_sent(req.id, via="email:abuse@telegram.org", actor="kim")
    req = await service.get(req.id)
    text = render_text(req, service.settings)
    assert "https://t.me/room_one/1" in text and req.id in text and "Test Hotline" in text
    assert SHA_A in text and "case C-1" in text and "Sexual deepfake" in text
    doc = render_json(req, service.settings, tree_head={"size": 10})
    assert doc["schema"] == SCHEMA and doc["reason"]["code"] == "sexual_deepfake"
    assert doc["items"][0]["media"][0]["sha256"] == SHA_A and doc["items"][0]["evidence_ledger_seqs"]
    assert doc["sent"][0]["via"] == "email:abuse@telegram.org" and doc["evidence"]["tree_head"] == {"size": 10}
    json.dumps(doc)  # JSON-able as is


async def test_reported_media_go_under_legal_hold(world: tuple, store: Store) -> None:
    """Reported content is evidence: a request's media are held, so the quarantine purge keeps them."""
    service, _clock, _ledger = world
    media = MediaRepo(store)
    for sha in (SHA_A, SHA_B):
        await media.insert({"_id": sha, "kind": "image", "media_kind": "photo", "first_seen_at": T0})
    assert await media.held() == set()
    await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/1"])
    assert await media.held() == {SHA_A}
