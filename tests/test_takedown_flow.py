"""Takedowns end to end over the real sample site: crawl, report, send, the site changes, re-check.

One message is removed from the served pages and another channel starts answering as blocked; the
re-check (by hand, by the scheduler's recurring task, and through the CLI) marks exactly those
items removed and the rest online, and the ledger holds the whole history.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import config
from config.targets import TargetsConfig
from crawler.crawl_web import crawl_channel
from crawler.evidence.capture import install as install_capture
from crawler.evidence.ledger import Ledger
from crawler.ingest import Ingest
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.plan import TAKEDOWN_METHOD, TAKEDOWN_TARGET, takedown_schedule
from crawler.scheduling.runners import RunContext
from crawler.scheduling.worker import Worker
from crawler.takedowns.models import ItemStatus, Reason, RequestStatus
from crawler.takedowns.run import build_probes, run_recheck
from crawler.takedowns.service import TakedownService
from foundation.models import utcnow
from spiders.sample_site import SampleSite, build_world
from spiders.sample_site.content import ChannelKind, World
from storage.client import Store
from tests.test_scheduling_support import env_for, settings_for


class Clock:
    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at


def last_ids(world: World, name: str, n: int) -> list[int]:
    ch = world.channel(name)
    assert ch is not None
    return [m.id for m in ch.messages][-n:]


async def crawl(store: Store, base: str, tmp: Path, *names: str) -> None:
    ingest = Ingest(store, store_retry_seconds=2.0)
    install_capture(ingest, Ledger(store), worker="test")
    for name in names:
        await crawl_channel(settings_for(base, tmp), ingest, name, base_url=base)


async def test_recheck_marks_exactly_the_removed_items(store: Store, tmp_path: Path) -> None:
    world = build_world(big_size=40)
    brief = last_ids(world, "daily_brief", 3)
    korea = last_ids(world, "korea_now", 1)
    async with SampleSite.serve(world) as site:
        settings = settings_for(site.base_url, tmp_path)
        await crawl(store, site.base_url, tmp_path, "daily_brief", "korea_now")
        clock = Clock()
        service = TakedownService(store, Ledger(store), settings.takedowns, clock=clock)
        one = await service.create(
            reason=Reason.SEXUAL_DEEPFAKE, actor="monitor", messages=[f"daily_brief/{i}" for i in brief]
        )
        two = await service.create(
            reason=Reason.SEXUAL_DEEPFAKE, actor="monitor", messages=[f"korea_now/{korea[0]}"], channel="korea_now"
        )
        for req in (one, two):
            await service.mark_sent(req.id, via="email:abuse@telegram.org", actor="monitor")
        probes = build_probes(settings, web_base=site.base_url)

        first = await run_recheck(settings, store, probes, clock=clock)
        assert first.checked == 5 and dict(first.results) == {"online/present": 5}
        assert await run_recheck(settings, store, probes, clock=clock) == type(first)()  # nothing due yet

        gone = brief[1]
        site.set_world(world.without_message("daily_brief", gone).with_kind("korea_now", ChannelKind.BLOCKED))
        clock.at += timedelta(hours=2)  # the next check of a fresh request is an hour out
        second = await run_recheck(settings, store, probes, clock=clock)
        assert second.checked == 5 and second.changed == 3
        assert dict(second.results) == {
            "online/present": 2,
            "removed/post_not_found": 1,
            "removed/channel_blocked": 2,
        }

    one, two = await service.get(one.id), await service.get(two.id)
    states = {i.item_id: (i.status, i.status_reason) for i in (*one.items, *two.items)}
    assert states == {
        f"message:daily_brief/{brief[0]}": (ItemStatus.ONLINE, "present"),
        f"message:daily_brief/{gone}": (ItemStatus.REMOVED, "post_not_found"),
        f"message:daily_brief/{brief[2]}": (ItemStatus.ONLINE, "present"),
        f"message:korea_now/{korea[0]}": (ItemStatus.REMOVED, "channel_blocked"),
        "channel:korea_now": (ItemStatus.REMOVED, "channel_blocked"),
    }
    assert one.status is RequestStatus.PARTIAL and two.status is RequestStatus.REMOVED
    assert two.removed_at is not None
    history = await service.history(one.id)
    changes = [(e["item"], e["from"], e["to"]) for e in history if e["action"] == "item_status"]
    assert (f"message:daily_brief/{gone}", "online", "removed") in changes
    assert len(changes) == 4  # three first sightings online, one removal
    checks = await service.repo.checks(one.id)
    assert len(checks) == 6 and all(c["method"] == "web" and c["url"] for c in checks)
    runs = await store["runs"].find({"kind": "takedown_recheck"}).to_list(None)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"ok"}


async def test_a_removed_request_is_checked_again_and_its_return_reopens_it(store: Store, tmp_path: Path) -> None:
    world = build_world(big_size=40)
    async with SampleSite.serve(world) as site:
        settings = settings_for(site.base_url, tmp_path)
        await crawl(store, site.base_url, tmp_path, "korea_now")
        clock = Clock()
        service = TakedownService(store, Ledger(store), settings.takedowns, clock=clock)
        req = await service.create(reason=Reason.NCII, actor="m", channel="korea_now")
        await service.mark_sent(req.id, via="in-app", actor="m")
        probes = build_probes(settings, web_base=site.base_url)
        site.set_world(world.with_kind("korea_now", ChannelKind.BLOCKED))
        assert (await run_recheck(settings, store, probes, clock=clock)).results == {"removed/channel_blocked": 1}
        assert (await service.get(req.id)).status is RequestStatus.REMOVED
        clock.at += timedelta(seconds=settings.takedowns.removed_recheck_every + 60)
        again = await run_recheck(settings, store, probes, clock=clock)  # removed, but still due its extra checks
        assert again.results == {"removed/channel_blocked": 1}
        assert (await service.get(req.id)).items[0].removed_checks == 1
        site.set_world(world)  # unblocked: the channel is back
        clock.at += timedelta(seconds=2 * settings.takedowns.removed_recheck_every + 60)
        back = await run_recheck(settings, store, probes, clock=clock)
    assert back.results == {"online/present": 1} and back.reopened == [req.id]
    now = await service.get(req.id)
    assert now.status is RequestStatus.REOPENED and now.reopen_count == 1
    alerts = await store["alerts"].find({"kind": "reupload"}).to_list(None)
    assert [a["details"]["cause"] for a in alerts] == ["back_online"] and alerts[0]["details"]["request"] == req.id


async def test_the_scheduler_runs_rechecks_as_a_task(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    world = build_world(big_size=40)
    ids = last_ids(world, "daily_brief", 2)
    async with SampleSite.serve(world) as site:
        settings = settings_for(site.base_url, tmp_path)
        await crawl(store, site.base_url, tmp_path, "daily_brief")
        service = TakedownService(store, Ledger(store), settings.takedowns)
        req = await service.create(reason=Reason.NCII, actor="m", messages=[f"daily_brief/{i}" for i in ids])
        site.set_world(world.without_message("daily_brief", ids[0]))
        schedule = takedown_schedule(settings.takedowns.recheck_every)
        assert schedule is not None and takedown_schedule(0) is None
        now = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)
        daemons = [Daemon(store, lambda: TargetsConfig(), clock=now.timestamp, system=[schedule]) for _ in range(2)]
        for d in daemons:
            await d.sync()  # two schedulers agree on one task per due time
        tasks = await store["crawl_tasks"].find().to_list(None)
        assert len(tasks) == 1 and tasks[0]["_id"].startswith(TAKEDOWN_TARGET + "/")
        assert tasks[0]["payload"]["method"] == TAKEDOWN_METHOD
        ctx = RunContext(settings, store, ingest, consumer="w1", web_base=site.base_url)
        report = await Worker(ctx, poll_seconds=0.1).run(asyncio.Event(), until_idle=True)
        await ctx.aclose()
    assert report.acked == 1 and report.nacked == 0
    done = await service.get(req.id)
    assert [i.status for i in done.items] == [ItemStatus.REMOVED, ItemStatus.ONLINE]
    run = await store["runs"].find_one({"kind": "takedown_recheck"})
    assert run is not None and run["worker"] == "w1" and run["counts"]["checked"] == 2


def tgwatch(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


async def test_the_takedown_commands(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    world = build_world(big_size=40)
    ids = last_ids(world, "daily_brief", 2)
    async with SampleSite.serve(world) as site:
        await crawl(store, site.base_url, tmp_path, "daily_brief")
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)

        def run(*args: str) -> str:
            return tgwatch(env, *args)

        out = await asyncio.to_thread(
            run, "takedown", "create", "--message", f"daily_brief/{ids[0]}", "--message",
            f"https://t.me/daily_brief/{ids[1]}", "--reason", "sexual_deepfake", "--case", "C-7", "--actor", "kim",
        )  # fmt: skip
        assert out.startswith("created TD-000001: 2 items, reason sexual_deepfake")
        text = await asyncio.to_thread(run, "takedown", "show", "TD-000001")
        assert f"https://t.me/daily_brief/{ids[0]}" in text and "case C-7" in text
        doc = json.loads(await asyncio.to_thread(run, "takedown", "show", "TD-000001", "--format", "json"))
        assert doc["schema"] == "tgwatch.takedown/1" and len(doc["items"]) == 2
        sent = await asyncio.to_thread(run, "takedown", "mark-sent", "TD-000001", "--via", "in-app", "--actor", "kim")
        assert "marked sent via in-app by cli:kim" in sent and "(sent)" in sent
        site.set_world(world.without_message("daily_brief", ids[1]))
        checked = json.loads(await asyncio.to_thread(run, "takedown", "recheck", "TD-000001", "--json"))
        assert checked["results"] == {"online/present": 1, "removed/post_not_found": 1}
    status = await asyncio.to_thread(run, "takedown", "show", "TD-000001", "--format", "status")
    assert "partial" in status and "removed (post_not_found)" in status
    listed = await asyncio.to_thread(run, "takedown", "list", "--status", "partial")
    assert listed.startswith("TD-000001  partial")
    stats = json.loads(await asyncio.to_thread(run, "takedown", "stats", "--json"))
    assert stats["requests"]["partial"] == 1 and stats["items"]["removed"] == 1
    assert stats["request_to_removal"]["count"] == 1
    history = await asyncio.to_thread(run, "takedown", "history", "TD-000001", "--json")
    actions = [e["action"] for e in json.loads(history)]
    assert actions[:3] == ["create", "sent", "status"] and actions.count("item_status") == 2
    audit = await store["audit"].find({"action": "takedowns.history"}).to_list(None)
    assert len(audit) == 1 and audit[0]["target"] == "TD-000001"
    assert config.load  # the child processes read the same settings layers
