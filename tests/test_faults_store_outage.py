"""Fault injection: the store stops answering in the middle of a crawl, then comes back.

A private nx-27017 server (an ``EmbeddedStore`` on this test's own data dir) is frozen with
SIGSTOP while a sample-site channel is being crawled through the full door (``open_pipeline``:
media, version, persist, snowball, ledger capture), and thawed with SIGCONT a few seconds later.
A frozen server is the realistic outage (a stalled disk, a paused VM, a GC pause of a real
MongoDB): connections stay open and nothing answers. The client has short socket timeouts, so
every write during the freeze fails with ``StoreError`` and ``Ingest.submit`` retries the batch.
Afterwards every message id of the channel must be stored exactly once and the checkpoint complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

import config
from crawler.crawl_web import crawl_channel
from crawler.pipeline import open_pipeline
from spiders.sample_site.content import build_world
from spiders.sample_site.server import SampleSite
from storage import schema
from storage.client import Store
from storage.embedded import EmbeddedStore
from tests.media_host import LOOPBACK_HTTP

CHANNEL = "korea_now"
OUTAGE_SECONDS = 4.0
GUARD_SECONDS = 180.0  # hang guard only


class FailedCommands(monitoring.CommandListener):
    """The driver's own command monitoring: which commands failed (timed out) during the freeze."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.names.append(event.command_name)


@pytest.fixture
async def private_store(tmp_path: Path) -> AsyncIterator[tuple[Store, int, FailedCommands]]:
    """A store on its own server (so freezing it disturbs no other test) and that server's pid."""
    embedded = EmbeddedStore(tmp_path / "data")
    uri = await asyncio.to_thread(embedded.acquire)
    pid = embedded.status().pid
    assert pid is not None
    listener = FailedCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=1500,
        socketTimeoutMS=1500,
        connectTimeoutMS=1500,
        event_listeners=[listener],
    )
    db = client["outage"]
    await schema.apply(db)
    try:
        yield Store(client=client, db=db, uri=uri, kind="embedded"), pid, listener
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # never leave a frozen server behind
        await client.close()
        await asyncio.to_thread(embedded.release)


@pytest.mark.slow
async def test_store_frozen_mid_crawl_loses_and_duplicates_nothing(
    private_store: tuple[Store, int, FailedCommands], tmp_path: Path
) -> None:
    store, server_pid, listener = private_store
    world = build_world()
    channel = world.channel(CHANNEL)
    assert channel is not None
    expected = sorted(m.id for m in channel.messages)
    settings = config.load(
        log_level="WARNING", data_dir=tmp_path / "data", media={"hash_workers": 1}, http=LOOPBACK_HTTP
    )
    froze = thawed = False

    async with SampleSite.serve(world) as site, open_pipeline(store, settings) as ingest:
        site.faults.slow(f"/s/{CHANNEL}?before=*", 0.5)  # keep the walk going while the store is frozen

        async def outage() -> None:
            nonlocal froze, thawed
            for _ in range(600):  # until the first page (and its checkpoint) is stored
                await asyncio.sleep(0.05)
                cp = await ingest.checkpoint(f"web:{CHANNEL}")
                if cp is not None and cp.oldest_id is not None:
                    break
            os.kill(server_pid, signal.SIGSTOP)
            froze = True
            await asyncio.sleep(OUTAGE_SECONDS)
            os.kill(server_pid, signal.SIGCONT)
            thawed = True

        crawl = crawl_channel(
            settings,
            ingest,
            CHANNEL,
            base_url=site.base_url,
            scrapy_overrides={"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05},
        )
        summary, _ = await asyncio.wait_for(asyncio.gather(crawl, outage()), GUARD_SECONDS)

    assert froze and thawed
    # the freeze hit the crawl: the pipeline's commands timed out, so its batches failed and were retried
    assert listener.names, "no command failed: the outage missed the crawl"
    assert summary.status == "ok", summary.errors
    docs = await store["messages"].find({"channel": CHANNEL}, {"msg_id": 1}).to_list(None)
    ids = [d["msg_id"] for d in docs]
    assert sorted(ids) == expected, "every message of the channel is stored"
    assert len(ids) == len(set(ids)) == len(expected), "and each exactly once"
    cp = await ingest.checkpoint(f"web:{CHANNEL}")
    assert cp is not None and cp.complete and (cp.oldest_id, cp.newest_id) == (expected[0], expected[-1])
    # the ledger captured each stored message version exactly once, replays included
    captures = await store["ledger"].find({"kind": "capture", "capture_of": {"$regex": f"^{CHANNEL}/"}}).to_list(None)
    capture_of = [c["capture_of"] for c in captures]
    assert len(capture_of) == len(set(capture_of))
    assert {c.rsplit("/", 1)[0] for c in capture_of if c.count("/") == 2} >= {f"{CHANNEL}/{i}" for i in expected}
