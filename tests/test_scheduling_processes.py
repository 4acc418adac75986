"""Scale-out on one machine: worker *processes* sharing one store, kills, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from config.targets import TargetsConfig
from crawler.ingest import Ingest
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.runners import RunContext
from crawler.scheduling.worker import Worker
from spiders.sample_site.server import SampleSite
from storage.client import Store
from storage.repos.targets import TargetRepo
from tests.test_scheduling_support import env_for, many_channels, settings_for, tgwatch

pytestmark = pytest.mark.slow

DUE1 = datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)


def config(n: int) -> TargetsConfig:
    return TargetsConfig.model_validate(
        {"targets": [{"name": f"feed_{i:02d}", "every": "10m", "jitter": "0s"} for i in range(n)]}
    )


async def spawn(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(*tgwatch(*args), env=env, stdout=out, stderr=out)


async def wait_for(predicate: Any, timeout: float = 60.0, step: float = 0.1) -> None:
    for _ in range(int(timeout / step)):
        if await predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


async def test_three_workers_thirty_targets_once_per_due_time(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    world = many_channels(30)
    async with SampleSite.serve(world) as site:
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        new_per_round = []
        for round_no, now in enumerate((DUE1, DUE1 + timedelta(minutes=10))):
            daemons = [Daemon(store, lambda: config(30), clock=now.timestamp) for _ in range(2)]
            for d in daemons:  # two schedulers, same due time
                await d.sync()
                await d.tick(now)
            assert await store["crawl_tasks"].count_documents({"state": "ready"}) == 30
            procs = [
                await spawn(["worker", "--until-idle", "--poll", "0.2", "--lease", "30"], env,
                            tmp_path / f"worker{round_no}-{i}.log")
                for i in range(3)
            ]  # fmt: skip
            codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 240)
            assert codes == [0, 0, 0], [(tmp_path / f"worker{round_no}-{i}.log").read_text()[-2000:] for i in range(3)]
            runs = await store["runs"].find({"due": int(now.timestamp()) // 600 * 600}).to_list(None)
            assert len(runs) == 30
            assert Counter(r["target"] for r in runs) == Counter(f"https://t.me/feed_{i:02d}" for i in range(30))
            assert all(r["status"] == "ok" for r in runs)
            assert len({r["worker"] for r in runs}) >= 2  # the load was shared
            new_per_round.append(sum(r["counts"].get("new", 0) for r in runs))
        tasks = await store["crawl_tasks"].find().to_list(None)
        assert len(tasks) == 60 and {t["state"] for t in tasks} == {"done"}
        assert all(t["attempts"] == 1 for t in tasks)
        stored = await store["messages"].count_documents({})
        assert new_per_round[0] == stored > 0  # every message stored once …
        assert new_per_round[1] == 0  # … and the second due time found nothing new: no duplicates
        assert await store["message_versions"].count_documents({}) == 0


async def test_killed_worker_task_is_reclaimed_and_completed(
    store: Store, ingest: Ingest, embedded_uri: str, tmp_path: Path
) -> None:
    async with SampleSite.serve(many_channels(1)) as site:
        site.faults.slow("/s/feed_00", 5.0, times=1)  # the first worker hangs in its crawl
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        d = Daemon(store, lambda: config(1), clock=DUE1.timestamp)
        await d.sync()
        proc = await spawn(["worker", "--poll", "0.2", "--lease", "2"], env, tmp_path / "victim.log")

        async def crawl_started() -> bool:
            return await store["runs"].count_documents({"status": "running"}) == 1 and bool(site.hits)

        await wait_for(crawl_started)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        (task,) = await store["crawl_tasks"].find().to_list(None)
        assert task["state"] == "leased"  # nobody settled it: the dead worker still holds the lease

        ctx = RunContext(settings_for(site.base_url, tmp_path), store, ingest, consumer="rescuer")

        async def rescued() -> bool:
            await Worker(ctx, lease_seconds=2, poll_seconds=0.1).run(asyncio.Event(), until_idle=True)
            doc = await store["crawl_tasks"].find_one({})
            return bool(doc and doc["state"] == "done")

        await wait_for(rescued, timeout=30, step=0.3)
    (task,) = await store["crawl_tasks"].find().to_list(None)
    assert task["attempts"] == 2 and task["lease_owner"] == "rescuer"
    runs = {r["status"]: r for r in await store["runs"].find().to_list(None)}
    # the dead worker's run is closed, not left "running": the rescuer found its owner gone
    assert set(runs) == {"abandoned", "ok"} and runs["abandoned"]["abandoned_by"] == "owner process gone"
    assert runs["ok"]["worker"] == "rescuer" and runs["ok"]["task"] == task["_id"]
    assert await store["messages"].count_documents({}) == runs["ok"]["counts"]["new"] > 0


async def test_sigterm_stops_daemon_and_children_without_orphans(
    store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    async with SampleSite.serve(many_channels(4)) as site:
        site.faults.slow("/s/*", 1.0, times=None)
        repo = TargetRepo(store)
        for i in range(4):
            await repo.add(f"feed_{i:02d}", method="web", every="1h", jitter="0s")
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        log = tmp_path / "run.log"
        proc = await spawn(
            ["run", "--workers", "2", "--with-api", "--port", "0", "--lease", "10", "--grace", "2"], env, log
        )
        ready: dict[str, Any] = {}

        async def is_ready() -> bool:
            for line in log.read_text().splitlines():
                if line.startswith("tgwatch run: "):
                    ready.update(json.loads(line.removeprefix("tgwatch run: ")))
            return bool(ready) and await store["runs"].count_documents({}) >= 2

        await wait_for(is_ready, timeout=90)
        parent = psutil.Process(proc.pid)
        family = [parent, *parent.children(recursive=True)]
        assert {c.pid for c in family} >= set(ready["children"])  # two worker processes
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            raise AssertionError(log.read_text()[-4000:]) from None
        assert code == 0, log.read_text()[-3000:]
        # the workers are reaped by now; their hashing pools' helpers end on their own (EOF), and
        # a slow machine may take a few seconds for that: generous, yet still an orphan check
        _gone, alive = await asyncio.to_thread(psutil.wait_procs, family, 30)
        assert alive == [], [p.pid for p in alive]
    assert await store["crawl_tasks"].count_documents({"state": "leased"}) == 0  # finished or given back
    assert await store["runs"].count_documents({"status": "running"}) == 0


def test_a_child_is_killed_only_after_its_own_worst_clean_stop() -> None:
    """``run`` SIGKILLs a worker child ``--grace`` + slack after SIGTERM; the child itself needs the grace,
    then up to a spider's stop bound to cancel its crawl and give the task back (on a loaded machine it took
    longer than the old 5 s slack, and the killed child left its task leased)."""
    from crawler.scheduling.children import STOP_SLACK_SECONDS
    from spiders.runner import STOP_SPIDER_SECONDS

    assert STOP_SLACK_SECONDS > STOP_SPIDER_SECONDS
