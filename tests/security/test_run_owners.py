"""A run whose process died (``kill -9``) does not stay ``running`` forever.

Runs record their owner (host, pid, pid start time) and a heartbeat; the next scheduler, worker or
``tgwatch runs`` start marks the runs of dead owners ``abandoned``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from aiohttp import web

from storage.client import Store
from storage.repos.runs import RunRepo, current_owner
from tests.test_scheduling_support import env_for

pytestmark = pytest.mark.xdist_group("cli")


@pytest.fixture
async def hanging_site() -> AsyncIterator[str]:
    """A web preview host that accepts every request and never answers (until the test ends)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        release.set()
        await runner.cleanup()


async def cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_crawl_killed_with_sigkill_is_abandoned_on_next_runs_list(
    store: Store, embedded_uri: str, hanging_site: str, tmp_path: Path
) -> None:
    env = env_for(embedded_uri, store.db.name, hanging_site, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "crawl", "channel", "hung_channel", "--base-url", hanging_site, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(1200):
            doc = await store["runs"].find_one({"status": "running"})
            if doc is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the crawl never recorded its run")
        assert doc["owner"]["pid"] == proc.pid
        tree = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    psutil.wait_procs(tree, timeout=30)  # what the crawl started dies with it

    listed = [json.loads(line) for line in (await cli(env, "runs", "list", "--json")).splitlines()]
    (run,) = [r for r in listed if r["_id"] == doc["_id"]]
    assert run["status"] == "abandoned" and run["finished_at"]
    assert run["abandoned_by"] == "owner process gone"


async def test_reaping_spares_live_owners_and_judges_other_hosts_by_heartbeat(store: Store) -> None:
    runs = RunRepo(store, heartbeat_seconds=3600)
    mine = await runs.start("https://t.me/alive", "crawl")  # this process: alive
    now = time.time()
    coll = store["runs"]
    elsewhere = {"host": "some-other-host", "pid": 1, "pid_started": 0.0}
    await coll.insert_one({"_id": "fresh", "status": "running", "owner": elsewhere, "heartbeat": now - 5})
    await coll.insert_one({"_id": "stale", "status": "running", "owner": elsewhere, "heartbeat": now - 3600})
    reused = {**current_owner(), "pid_started": current_owner()["pid_started"] - 1000}  # same pid, other start
    await coll.insert_one({"_id": "reused_pid", "status": "running", "owner": reused, "heartbeat": now})
    await coll.insert_one({"_id": "legacy", "status": "running"})  # recorded before owners: left alone
    await coll.insert_one({"_id": "done", "status": "ok", "owner": elsewhere, "heartbeat": now - 3600})

    assert sorted(await runs.reap_dead()) == ["reused_pid", "stale"]
    states = {d["_id"]: d["status"] for d in await coll.find().to_list(None)}
    assert states == {
        mine: "running", "fresh": "running", "stale": "abandoned", "reused_pid": "abandoned", "legacy": "running",
        "done": "ok",
    }  # fmt: skip
    await runs.finish(mine)
    assert (await runs.get(mine) or {})["status"] == "ok"


async def test_an_open_run_keeps_its_heartbeat_fresh_until_finished(store: Store) -> None:
    runs = RunRepo(store, heartbeat_seconds=0.05)
    run_id = await runs.start("https://t.me/beating", "crawl")
    first = (await runs.get(run_id) or {})["heartbeat"]
    for _ in range(400):
        await asyncio.sleep(0.05)
        if (await runs.get(run_id) or {})["heartbeat"] > first:
            break
    else:
        raise AssertionError("the heartbeat was never refreshed")
    await runs.finish(run_id, "ok")
    assert not [t for t in asyncio.all_tasks() if t.get_name() == f"run heartbeat {run_id}"]


async def test_scheduler_sync_abandons_the_runs_of_a_dead_process(store: Store) -> None:
    from config.targets import TargetsConfig
    from crawler.scheduling.daemon import Daemon

    dead = psutil.Popen([sys.executable, "-c", "pass"])
    owner = {**current_owner(), "pid": dead.pid, "pid_started": dead.create_time()}
    dead.wait()
    await store["runs"].insert_one({"_id": "dead", "status": "running", "owner": owner, "heartbeat": time.time()})
    await Daemon(store, lambda: TargetsConfig.model_validate({"targets": []})).sync()
    assert (await RunRepo(store).get("dead") or {})["status"] == "abandoned"
