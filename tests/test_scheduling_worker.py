"""Tasks and workers in one process, with the real crawl driver against the sample site."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

from config.targets import TargetsConfig
from crawler.ingest import Ingest
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.runners import RunContext
from crawler.scheduling.tasks import CrawlTasks, Created
from crawler.scheduling.worker import Worker
from spiders.sample_site.server import SampleSite
from storage.client import Store
from tests.test_scheduling_support import many_channels, settings_for

NOW = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)


def config(names: list[str], every: str = "10m") -> TargetsConfig:
    return TargetsConfig.model_validate({"targets": [{"name": n, "every": every, "jitter": "0s"} for n in names]})


async def test_two_schedulers_create_each_task_once(store: Store) -> None:
    cfg = config(["feed_00", "feed_01", "feed_02"])
    clock = NOW.timestamp
    a = Daemon(store, lambda: cfg, clock=clock)
    b = Daemon(store, lambda: cfg, clock=clock)
    await a.sync()  # no APScheduler started: sync + tick only, on the injected clock
    await b.sync()
    first = await a.tick(NOW)
    assert set(first.values()) == {Created.EXISTS}  # sync already caught up the current due time
    assert set((await b.tick(NOW)).values()) == {Created.EXISTS}
    ids = sorted([d["_id"] async for d in store["crawl_tasks"].find({}, {"_id": 1})])
    due = int(datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp())
    assert ids == [f"https://t.me/feed_0{i}/{due}" for i in range(3)]


async def test_open_task_coalesces_later_due_times(store: Store) -> None:
    cfg = config(["feed_00"])
    d = Daemon(store, lambda: cfg, clock=NOW.timestamp)
    await d.sync()
    later = datetime(2026, 5, 1, 12, 30, 1, tzinfo=UTC)
    assert await d.tick(later) == {"https://t.me/feed_00": Created.BUSY}  # first crawl not done: no pile-up
    assert len(await store["crawl_tasks"].find().to_list(None)) == 1


async def test_paused_target_gets_no_task(store: Store) -> None:
    cfg = TargetsConfig.model_validate({"targets": [{"name": "feed_00", "every": "1h", "paused": True}]})
    d = Daemon(store, lambda: cfg, clock=NOW.timestamp)
    await d.sync()
    assert await d.tick(NOW) == {"https://t.me/feed_00": Created.PAUSED}


async def test_apscheduler_fires_on_short_interval(store: Store) -> None:
    """The real AsyncIOScheduler on this loop creates one task per due time as time passes."""
    cfg = config(["feed_00"], every="1s")
    d = Daemon(store, lambda: cfg, sync_seconds=60)
    tasks = CrawlTasks(store)
    await d.start()
    try:
        seen: set[str] = set()
        for _ in range(100):  # up to ~10 s; usually 2–3 s
            async for doc in store["crawl_tasks"].find({"state": "ready"}):
                seen.add(doc["_id"])
                lease = (await tasks.queue.claim("test", 1, 30))[0]  # settle it so the next due is not "busy"
                await tasks.queue.ack(lease.job_id, lease.token, {})
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.1)
    finally:
        d.shutdown()
    assert len(seen) >= 3
    dues = sorted(int(s.rsplit("/", 1)[1]) for s in seen)
    assert len(set(dues)) == len(dues)  # distinct due times, one task each
    assert d.fired >= 2


async def test_worker_crawls_task_with_real_driver(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    async with SampleSite.serve(many_channels(2)) as site:
        settings = settings_for(site.base_url, tmp_path)
        d = Daemon(store, lambda: config(["feed_00", "feed_01"]), clock=NOW.timestamp)
        await d.sync()
        ctx = RunContext(settings, store, ingest, consumer="w1")
        report = await Worker(ctx, poll_seconds=0.1).run(asyncio.Event(), until_idle=True)
    assert report.acked == 2 and report.nacked == 0
    tasks = await store["crawl_tasks"].find().to_list(None)
    assert {t["state"] for t in tasks} == {"done"}
    runs = await store["runs"].find().to_list(None)
    assert sorted(r["target"] for r in runs) == ["https://t.me/feed_00", "https://t.me/feed_01"]
    for run in runs:
        assert run["status"] == "ok" and run["worker"] == "w1" and run["task"].startswith(run["target"] + "/")
        assert run["counts"]["pages"] >= 1 and run["counts"]["new"] >= 1 and run["finished_at"] is not None
    assert await store["messages"].count_documents({}) == sum(r["counts"]["new"] for r in runs)


async def test_concurrent_workers_never_overlap_one_target(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    """Due times keep coming faster than crawls finish; two workers; runs of the target never overlap."""
    async with SampleSite.serve(many_channels(1)) as site:
        site.faults.slow("/s/feed_00", 0.4)
        settings = settings_for(site.base_url, tmp_path)
        cfg = config(["feed_00"], every="1s")
        d = Daemon(store, lambda: cfg, sync_seconds=60)
        stop = asyncio.Event()
        workers = [Worker(RunContext(settings, store, ingest, consumer=f"w{i}"), poll_seconds=0.05) for i in range(2)]
        await d.start()
        running = [asyncio.create_task(w.run(stop)) for w in workers]
        try:
            for _ in range(150):
                if await store["runs"].count_documents({"status": {"$ne": "running"}}) >= 3:
                    break
                await asyncio.sleep(0.1)
        finally:
            d.shutdown()
            stop.set()
            await asyncio.gather(*running)
    runs = sorted(await store["runs"].find().to_list(None), key=lambda r: r["started_at"])
    assert len(runs) >= 3
    for before, after in itertools.pairwise(runs):
        assert before["finished_at"] <= after["started_at"]
    tasks = await store["crawl_tasks"].find().to_list(None)
    assert all(t["state"] == "done" for t in tasks)
    assert len({r["task"] for r in runs}) == len(runs)  # one run per task


async def test_approved_candidate_and_mtproto_target_are_crawled(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    """A target created by discovery (no schedule fields) runs on the default schedule over MTProto,
    through the real backfill on the fake Telegram."""
    from crawler.discovery.targets import create_target
    from telegram_watch.fake.world import FakeTelegram
    from tests.test_tg_support import pool_over

    world = FakeTelegram(seed="scheduling-tests")
    ch = world.add_channel("News", username="news_chan")
    world.fill_history(ch, 120)
    await create_target(store, "https://t.me/news_chan", "mtproto")
    d = Daemon(store, TargetsConfig)
    await d.sync()
    (schedule,) = d.current.values()
    assert (schedule.method, schedule.every, schedule.source) == ("mtproto", 6 * 3600, "candidate")
    await store["crawl_tasks"].update_many({}, {"$set": {"available_at": 0}})  # skip the jitter wait
    ctx = RunContext(settings_for("http://127.0.0.1:9", tmp_path), store, ingest, consumer="tg")
    ctx.account_pool = pool_over(world, world.add_account("alice"))
    try:
        report = await Worker(ctx, poll_seconds=0.1).run(asyncio.Event(), until_idle=True)
    finally:
        await ctx.account_pool.close()
    assert report.acked == 1
    (run,) = await store["runs"].find().to_list(None)
    assert run["kind"] == "backfill" and run["method"] == "mtproto" and run["status"] == "ok"
    assert run["counts"]["new"] == 120 == await store["messages"].count_documents({})


async def test_stop_abandons_a_crawl_past_its_grace(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    """Stop with a crawl stuck longer than the grace period: the crawl is cancelled, its run marked
    abandoned, its task given back to the queue (not left leased), and the spider really stops."""
    async with SampleSite.serve(many_channels(1, posts=60)) as site:
        site.faults.slow("/s/feed_00*", 1.0, times=None)
        settings = settings_for(site.base_url, tmp_path)
        d = Daemon(store, lambda: config(["feed_00"]), clock=NOW.timestamp)
        await d.sync()
        stop = asyncio.Event()
        worker = Worker(RunContext(settings, store, ingest, consumer="w"), poll_seconds=0.05, grace_seconds=0.3)
        running = asyncio.create_task(worker.run(stop))
        for _ in range(1200):  # until the crawl is under way (a hang guard, not a guess at the start-up)
            if site.hits or await store["runs"].count_documents({}):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker never started its crawl")
        stop.set()
        report = await asyncio.wait_for(running, 30)
        await asyncio.sleep(1.5)  # the request in flight is answered (the server logs it then) …
        hits = len(site.hits)
        await asyncio.sleep(1.5)
        assert len(site.hits) == hits  # … and no new one follows: nothing keeps crawling in the background
    assert report.abandoned == 1 and report.acked == 0
    (task,) = await store["crawl_tasks"].find().to_list(None)
    assert task["state"] == "ready" and "abandoned at shutdown" in task["errors"][0]
    (run,) = await store["runs"].find().to_list(None)
    assert run["status"] == "abandoned" and run["finished_at"] is not None


async def test_sync_prunes_done_tasks_after_the_keep_period(store: Store) -> None:
    now = [NOW.timestamp()]
    d = Daemon(store, lambda: config(["feed_00"]), clock=lambda: now[0], keep_done_seconds=3600)
    await d.sync()  # creates the task of the current due time
    (lease,) = await d.tasks.queue.claim("w1", n=1, lease_seconds=60)
    await d.tasks.queue.ack(lease.job_id, lease.token, {"status": "ok"})
    await d.sync()
    assert await store["crawl_tasks"].find_one({"_id": lease.job_id}) is not None  # kept while recent
    now[0] += 7200
    await d.sync()
    assert await store["crawl_tasks"].find_one({"_id": lease.job_id}) is None
