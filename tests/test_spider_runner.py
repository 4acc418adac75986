"""Cancelling a crawl stops its spider: nothing keeps fetching in the background."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.crawl_web import crawl_channel
from crawler.ingest import Ingest
from spiders.sample_site import SampleSite, build_world
from spiders.tme_channel import CrawlMode
from storage.client import Store
from tests.test_scheduling_support import settings_for


async def test_cancelling_a_crawl_stops_its_spider(store: Store, tmp_path: Path) -> None:
    async with SampleSite.serve(build_world(big_size=400)) as site:
        site.faults.slow("/s/big_feed", 0.3, times=None)  # every page of the walk takes a while
        crawl = asyncio.create_task(
            crawl_channel(
                settings_for(site.base_url, tmp_path), Ingest(store), "big_feed", mode=CrawlMode(full=True),
                base_url=site.base_url,
            )
        )  # fmt: skip
        for _ in range(200):
            if len(site.hits_for_prefix("/s/big_feed")) >= 2:
                break
            await asyncio.sleep(0.05)
        crawl.cancel()
        with pytest.raises(asyncio.CancelledError):
            await crawl
        fetched = len(site.hits_for_prefix("/s/big_feed"))
        await asyncio.sleep(1.5)  # a spider left running would fetch a page every 0.3 s
        assert len(site.hits_for_prefix("/s/big_feed")) == fetched
        assert fetched < 20, "the walk was stopped long before its 20 pages"


EXIT_AFTER_TWO_CRAWLS = """
import asyncio, threading
from spiders.runner import ensure_asyncio_reactor
from crawler.scheduling.runners import stop_twisted_threads

async def crawl_once():
    ensure_asyncio_reactor()
    from twisted.internet import reactor, threads
    await threads.deferToThreadPool(reactor, reactor.getThreadPool(), lambda: None).asFuture(
        asyncio.get_running_loop())

async def main():
    await crawl_once()
    stop_twisted_threads()  # what a finished scheduled run does
    await crawl_once()      # a later crawl in the same process gets a new pool
    print("done", flush=True)

asyncio.run(main())
"""


def test_a_process_exits_after_crawls_around_a_stopped_thread_pool(tmp_path: Path) -> None:
    """Twisted's pool threads are not daemons by default; a pool replaced after ``stop_twisted_threads``
    must get daemon threads too, or the process (a test run, a worker) hangs at exit."""
    script = tmp_path / "two_crawls.py"
    script.write_text(EXIT_AFTER_TWO_CRAWLS)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr[-800:]
