"""Delivery semantics on a real store and a real local webhook: retries with back-off, dead letter,
one delivery per alert and rule across restarts and dispatchers, the rate limit's digest, rule
filters, and the in-process wake-up. Clocks are moved by hand; nothing waits on wall time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import config
from config import Settings
from crawler.notify.dispatcher import DELIVERIES, Dispatcher
from crawler.notify.rules import NotifyRule, notify_kind, severity_of
from crawler.notify.service import NotifyService
from foundation.models import AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyLogRepo, NotifyRuleRepo
from storage.workqueue import WorkQueue
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import SECRET, SHA, Clock, alert, webhook_receiver

ENV = {"HOOK_SECRET": SECRET}


def settings_for(tmp_path: Path, **notify: Any) -> Settings:
    return config.load(data_dir=tmp_path, http=LOOPBACK_HTTP, notify={"max_attempts": 3, **notify})


async def hook_rule(store: Store, url: str, name: str = "ops", **fields: Any) -> None:
    rule = NotifyRule(name=name, sink="webhook", target=url, secret_env="HOOK_SECRET", **fields)
    assert await NotifyRuleRepo(store).add(rule.to_doc())


async def drain(store: Store, settings: Settings, clock: Clock | None = None) -> dict[str, int]:
    dispatcher = Dispatcher(store, settings, env=ENV, clock=clock or Clock())
    try:
        return await dispatcher.drain()
    finally:
        await dispatcher.aclose()


async def test_retry_with_backoff_then_success(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    settings = settings_for(tmp_path)
    async with webhook_receiver(fail_first=2) as hook:
        await hook_rule(store, hook.url)
        await AlertRepo(store).raise_alert(alert())
        assert (await drain(store, settings, clock))["failed"] == 1
        assert (await drain(store, settings, clock)).get("failed", 0) == 0  # backing off: not retried yet
        assert hook.attempts == 1
        clock.advance(2.5)  # first back-off: 2 s
        assert (await drain(store, settings, clock))["failed"] == 1
        clock.advance(4.5)  # second: 4 s
        assert (await drain(store, settings, clock))["sent"] == 1
    assert hook.attempts == 3 and len(hook.received) == 1
    outcomes = [e["outcome"] for e in reversed(await NotifyLogRepo(store).list("ops"))]
    assert outcomes == ["failed", "failed", "sent"]


async def test_dead_letter_is_visible_and_requeued(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    settings = settings_for(tmp_path)
    async with webhook_receiver(always_fail=True) as hook:
        await hook_rule(store, hook.url)
        await AlertRepo(store).raise_alert(alert())
        for _ in range(3):
            await drain(store, settings, clock)
            clock.advance(3600)
        assert hook.attempts == 3
        service = NotifyService(store, settings, env=ENV, clock=clock)
        try:
            (dead,) = await service.dead()
            assert dead["_id"] == f"match/known-list/{SHA}/ops" and dead["attempts"] == 3
            assert dead["errors"][-1] == "attempt 3: webhook answered HTTP 500"
            log = await service.log("ops")
            assert [e["outcome"] for e in reversed(log)] == ["failed", "failed", "dead"]
            hook.always_fail = False
            assert await service.requeue([], all_dead=True) == 1
        finally:
            await service.aclose()
        assert (await drain(store, settings, clock))["sent"] == 1
    assert len(hook.received) == 1


async def test_one_notification_per_alert_and_rule_across_restarts(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    repo = AlertRepo(store)
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url)
        await repo.raise_alert(alert())
        # dispatcher A turns the alert into a delivery and "dies" before sending it
        first = Dispatcher(store, settings, env=ENV)
        assert await first.fanout() == 1
        await first.aclose()
        # a fresh dispatcher (a restarted process) sends it; the same alert raised again is not new
        assert (await drain(store, settings))["sent"] == 1
        assert await repo.raise_alert(alert()) is False
        # two dispatchers at once, and an outbox entry replayed for an alert already delivered
        await store["alert_outbox"].insert_one({"_id": f"match/known-list/{SHA}", "kind": "hash_match", "at": None})
        results = await asyncio.gather(drain(store, settings), drain(store, settings))
        assert sum(r.get("sent", 0) for r in results) == 0
        # a second alert, two dispatchers racing for it: one sending
        await repo.raise_alert(alert(key="match/known-list/" + "cd" * 32))
        results = await asyncio.gather(drain(store, settings), drain(store, settings))
        assert sum(r.get("sent", 0) for r in results) == 1
    assert [r.json["alerts"][0]["key"] for r in hook.received] == [
        f"match/known-list/{SHA}",
        "match/known-list/" + "cd" * 32,
    ]


async def test_rate_limit_batches_the_rest_into_one_digest(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    settings = settings_for(tmp_path, rate_limit=2, rate_window=60)
    repo = AlertRepo(store)
    keys = [f"match/known-list/{i:02x}" + "0" * 62 for i in range(8)]
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url, lang="en")
        for key in keys[:5]:
            await repo.raise_alert(alert(key=key))
        counts = await drain(store, settings, clock)
        assert counts["sent"] == 5 and counts["digests"] == 1
        single, digest = (r.json for r in hook.received)
        assert single["type"] == "alert"
        assert digest["type"] == "digest" and digest["count"] == 4 and len(digest["alerts"]) == 4
        assert "4 alerts" in digest["text"]
        assert {single["alerts"][0]["key"], *(a["key"] for a in digest["alerts"])} == set(keys[:5])

        # the window is full: three more wait (not a failure, no attempt used) ...
        for key in keys[5:]:
            await repo.raise_alert(alert(key=key))
        counts = await drain(store, settings, clock)
        assert counts == {"held": 3} and len(hook.received) == 2
        assert (await NotifyLogRepo(store).list("ops", 1))[0]["outcome"] == "held"
        clock.advance(30)
        assert await drain(store, settings, clock) == {}  # still inside the window
        # ... and go out when it frees: one alone, the other two as a digest
        clock.advance(31)
        counts = await drain(store, settings, clock)
        assert counts["sent"] == 3 and counts["digests"] == 1
    assert [r.json["type"] for r in hook.received] == ["alert", "digest", "alert", "digest"]
    assert hook.received[3].json["count"] == 2
    queue = WorkQueue(store, DELIVERIES)
    for key in keys:
        job = await queue.get(f"{key}/ops")
        assert job is not None and job["state"] == "done" and job["attempts"] == 1


async def test_rule_filters_by_kind_list_channel_and_severity(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    url = "http://127.0.0.1:9/hook"  # nothing is sent: only which deliveries exist is checked
    await hook_rule(store, url, name="all")
    await hook_rule(store, url, name="detections", kinds=["detection"])
    await hook_rule(store, url, name="one-list", kinds=["hash_match:known-list"])
    await hook_rule(store, url, name="chan-b", channels=["@ChanB"])
    await hook_rule(store, url, name="high", min_severity="high")
    repo = AlertRepo(store)
    raised = {
        "m1": alert(key="match/known-list/" + "1" * 64, channel="chana"),
        "m2": alert(key="match/other-list/" + "2" * 64, channel="chanb", list="other-list"),
        "d": alert(key="detection/" + "3" * 64 + "/default", kind=AlertKind.DETECTION, channel="chanb"),
        "b": alert(key="back-online/TD-1/message:chana/5/1", kind=AlertKind.REUPLOAD, channel="chana",
                   cause="back_online"),
    }  # fmt: skip
    for a in raised.values():
        await repo.raise_alert(a)
    dispatcher = Dispatcher(store, settings, env=ENV)
    assert await dispatcher.fanout() == 11
    await dispatcher.aclose()
    ids = {d["_id"] async for d in store["notify_deliveries"].find({}, {"_id": 1})}

    def rules_for(name: str) -> set[str]:
        return {i.rsplit("/", 1)[1] for i in ids if i.rsplit("/", 1)[0] == raised[name].key}

    assert rules_for("m1") == {"all", "one-list", "high"}
    assert rules_for("m2") == {"all", "chan-b", "high"}
    assert rules_for("d") == {"all", "detections", "chan-b"}  # medium: below "high"
    assert rules_for("b") == {"all", "high"}
    assert notify_kind(raised["b"].to_doc()) == "back_online" and severity_of("back_online") == "high"
    assert await store["alert_outbox"].estimated_document_count() == 0


async def test_alert_raised_in_process_wakes_the_dispatcher(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, poll_seconds=3600)  # the poll would never come within the test
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url)
        dispatcher = Dispatcher(store, settings, env=ENV)
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await asyncio.sleep(0)  # let it subscribe and go idle
            await AlertRepo(store).raise_alert(alert())
            await asyncio.wait_for(hook.arrived.wait(), 30)
        finally:
            stop.set()
            await task
            await dispatcher.aclose()
    assert len(hook.received) == 1


async def test_removed_rule_skips_its_pending_deliveries(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url)
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings, env=ENV)
        await dispatcher.fanout()
        await dispatcher.aclose()
        assert await NotifyRuleRepo(store).remove("ops")
        assert (await drain(store, settings))["skipped"] == 1
    assert hook.attempts == 0
    (entry,) = await NotifyLogRepo(store).list("ops")
    assert entry["outcome"] == "skipped" and entry["error"] == "rule removed"


async def test_a_damaged_rule_is_skipped_not_fatal(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url)
        assert await NotifyRuleRepo(store).add({"_id": "broken", "sink": "carrier-pigeon", "target": "roof"})
        await AlertRepo(store).raise_alert(alert())
        assert (await drain(store, settings))["sent"] == 1
    assert len(hook.received) == 1
    ids = {d["_id"] async for d in store["notify_deliveries"].find({}, {"_id": 1})}
    assert ids == {f"match/known-list/{SHA}/ops"}


async def test_every_sending_is_a_ledger_entry_with_the_sha256_of_what_left(store: Store, tmp_path: Path) -> None:
    import hashlib

    from crawler.evidence.hooks import notification_hook
    from crawler.evidence.wiring import build_ledger

    settings = settings_for(tmp_path)
    ledger = build_ledger(store, settings, sign=False)
    async with webhook_receiver() as hook:
        await hook_rule(store, hook.url)
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings, env=ENV, on_sent=notification_hook(ledger.append))
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    (got,) = hook.received
    (entry,) = [e for e in await ledger.entries() if e["kind"] == "notification"]
    payload = entry["payload"]
    assert f'"sha256":"{hashlib.sha256(got.body).hexdigest()}"' in payload
    assert f'"subjects":["alert:match/known-list/{SHA}"]' in payload and '"rule":"ops"' in payload


async def test_rule_filtered_by_target_group(store: Store, tmp_path: Path) -> None:
    from crawler.scheduling.groups import target_groups
    from storage.repos.targets import TargetRepo

    settings = config.load(data_dir=tmp_path, targets=[{"name": "@ConfChan", "group": "News", "every": "1h"}],
                           groups={"news": {"every": "1h"}})  # fmt: skip
    await TargetRepo(store).add("https://t.me/leakchan", method="web", group="news")
    await TargetRepo(store).add("quietchan", method="web")
    await hook_rule(store, "http://127.0.0.1:9/hook", name="news", groups=["NEWS"])
    repo = AlertRepo(store)
    for channel in ("leakchan", "quietchan", "confchan"):
        await repo.raise_alert(alert(key=f"match/known-list/{channel}", channel=channel))
    dispatcher = Dispatcher(store, settings, env=ENV, channel_groups=target_groups(store, settings))
    assert await dispatcher.fanout() == 2
    await dispatcher.aclose()
    ids = {d["_id"] async for d in store["notify_deliveries"].find({}, {"_id": 1})}
    assert ids == {"match/known-list/leakchan/news", "match/known-list/confchan/news"}
