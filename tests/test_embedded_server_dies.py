"""The embedded nx-27017 server is killed (``kill -9``) under running tgwatch processes.

* A short command (a crawl) cannot get its store back: it must stop with a clear store error, not
  hang, and exit non-zero within a bound.
* A long-running process (``tgwatch serve``) brings the server back on the same ``data_dir``: its
  ``/readyz`` answers 503 while the store is gone and 200 again soon after, and the data written
  before the kill is still there.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from spiders.sample_site.content import build_world
from spiders.sample_site.server import SampleSite
from storage._embedded_state import Layout, read_state, same_process, try_lock

ROOT = Path(__file__).resolve().parents[1]
CHANNEL = "big_feed"
CRAWL_EXIT_BOUND_SECONDS = 150.0  # ingest retries (60 s + one 10 s try) + finish run (10 s) ~ 81 s; slack for CI
READY_AGAIN_BOUND_SECONDS = 10.0
_BOUND = re.compile(rb"tgwatch API on (http://[^/\s]+)/")


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TGWATCH_DATA_DIR": str(data), **extra}


async def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.1)


def _kill_server(data: Path) -> int:
    state = read_state(Layout.for_data_dir(data).state)
    assert state is not None and same_process(state.server_pid, state.server_start)
    os.kill(state.server_pid, signal.SIGKILL)
    return state.server_pid


def _walking(site: SampleSite) -> Callable[[], Any]:
    async def walking() -> bool:
        return len(site.hits_for_prefix(f"/s/{CHANNEL}?before=")) >= 2

    return walking


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve(build_world(big_size=2000)) as served:
        served.faults.slow(f"/s/{CHANNEL}?before=*", 0.3)  # keep the crawl walking while we kill
        yield served


@pytest.mark.slow
async def test_crawl_whose_server_dies_exits_with_a_store_error_in_bounded_time(
    site: SampleSite, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    log_path = tmp_path / "crawl.log"  # a file, not a pipe: the crawl logs a lot and must never block on it
    with log_path.open("wb") as log_file:
        crawl = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-format", "json",
            "crawl", "channel", CHANNEL, "--full", "--base-url", site.base_url,
            stdout=asyncio.subprocess.DEVNULL, stderr=log_file, env=_env(data),
        )  # fmt: skip
    try:
        # the walk back is under way (a store read by the test could race the crawl's schema set-up)
        await _until(_walking(site), 120, "the crawl to walk back through the channel")
        _kill_server(data)
        killed_at = time.monotonic()
        await asyncio.wait_for(crawl.wait(), CRAWL_EXIT_BOUND_SECONDS + 60)
        took = time.monotonic() - killed_at
    finally:
        if crawl.returncode is None:
            crawl.kill()
            await crawl.wait()
    text = log_path.read_text(errors="replace")
    assert crawl.returncode not in (0, None), text[-2000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("Error: store:"), text[-2000:]
    assert "Traceback" not in text
    assert took < CRAWL_EXIT_BOUND_SECONDS, f"exited {took:.0f}s after the kill"


async def _readyz(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(15)) as r:
            return r.status
    except aiohttp.ClientError:
        return -1


@pytest.mark.slow
async def test_serve_brings_a_killed_server_back_and_readyz_recovers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--data-dir", str(data), "tokens", "create", "--name", "before-kill",
        "--role", "admin", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=_env(data),
    )  # fmt: skip
    _, err = await init.communicate()
    assert init.returncode == 0, err.decode()[-1500:]

    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-format", "json",
        "serve", "--port", "0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=_env(data),
    )  # fmt: skip
    assert serve.stderr is not None
    try:
        seen = b""
        while not (found := _BOUND.search(seen)):
            line = await asyncio.wait_for(serve.stderr.readline(), 60)
            assert line, f"serve exited before listening: {seen.decode()[-1500:]}"
            seen += line
        url = found.group(1).decode()
        drain = asyncio.create_task(serve.stderr.read())  # never let its log pipe fill up
        assert await _readyz(url) == 200

        # the test holds the store's lock across the kill: serve cannot bring the server back before
        # /readyz has reported the outage (without it a fast restart could hide the outage from a
        # slow poll: readyz waits for a server to come back before it gives up)
        hold = await _until(lambda: _try_lock(Layout.for_data_dir(data).lock), 30, "the embedded store's lock")
        try:
            old_pid = _kill_server(data)
            await _until(lambda: _readyz_is(url, 503), 30, "/readyz to report the store gone")
        finally:
            os.close(hold)  # closing the descriptor releases the flock: the restart may go ahead
        gone_at = time.monotonic()
        await _until(lambda: _readyz_is(url, 200), 60, "/readyz to be ready again")
        took = time.monotonic() - gone_at
        assert took < READY_AGAIN_BOUND_SECONDS, f"ready again only {took:.1f}s after the restart could begin"

        state = read_state(Layout.for_data_dir(data).state)
        assert state is not None and state.server_pid != old_pid
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(state.uri, serverSelectionTimeoutMS=5000)
        try:
            names = [d["name"] async for d in client["tgwatch"]["tokens"].find({}, {"name": 1})]
        finally:
            await client.close()
        assert names == ["before-kill"], "the data written before the kill is still there"
    finally:
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(serve.wait(), 30)
            except TimeoutError:
                serve.kill()
                await serve.wait()
    drain.cancel()


async def _try_lock(path: Path) -> int | None:
    return try_lock(path)


async def _readyz_is(url: str, status: int) -> bool:
    return await _readyz(url) == status


@pytest.mark.slow
async def test_keep_alive_store_reconnects_after_its_server_is_killed(tmp_path: Path) -> None:
    """What ``run`` and ``worker`` use: ``open_store(keep_alive=True)`` (``serve`` is tested above)."""
    import config
    from foundation.errors import StoreError
    from storage.client import open_store

    data = tmp_path / "data"
    settings = config.load(data_dir=data, log_level="WARNING")
    async with open_store(settings, keep_alive=True) as store:
        await store["targets"].insert_one({"_id": "before-kill"})
        _kill_server(data)

        async def answers() -> bool:
            try:
                await store.ping()
            except StoreError:
                return False
            return True

        await _until(answers, 60, "the store to answer again")
        assert [d["_id"] async for d in store["targets"].find({})] == ["before-kill"]
    assert read_state(Layout.for_data_dir(data).state) is None, "the restarted server stops with its last user"
