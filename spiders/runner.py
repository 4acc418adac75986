"""Run Scrapy spiders inside tgwatch's own running asyncio loop.

Scrapy's ``AsyncCrawlerRunner`` with Twisted's ``AsyncioSelectorReactor`` *bound to the loop that is
already running* (ours): Scrapy's downloads, our MongoDB writes (PyMongo async) and aiohttp all
share one loop and one thread. The reactor is installed once per process, on first use, before
anything imports Twisted's default reactor; ``reactor.run()`` is never called because the asyncio
loop is what runs. Safe to call many times in one process (the tests run many crawls).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from typing import Any

from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.settings import Settings as ScrapySettings

from foundation.errors import ConfigError
from foundation.logs import get_logger


def ensure_asyncio_reactor() -> None:
    """Install Twisted's asyncio reactor on the running loop, or check the installed one uses it."""
    loop = asyncio.get_running_loop()
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        asyncioreactor.install(eventloop=loop)
    from twisted.internet import reactor

    bound = getattr(reactor, "_asyncioEventloop", None)
    if bound is None:
        raise ConfigError(
            f"a non-asyncio Twisted reactor ({type(reactor).__name__}) was installed before tgwatch could "
            "install the asyncio one; import spiders.runner before anything imports twisted.internet.reactor"
        )
    if bound is not loop:
        raise ConfigError(
            "Twisted's asyncio reactor is bound to another event loop; run every crawl of one process on "
            "one loop (pytest: a session-scoped loop)"
        )
    # The reactor is never stopped, so its thread pool's shutdown trigger never fires: daemon
    # threads keep idle DNS workers from holding the process open at exit. Checked on every crawl,
    # not only the first: a pool stopped between crawls (``stop_twisted_threads``) is replaced by
    # a new one with Twisted's default, non-daemon threads (a test run once hung at exit on them).
    pool = reactor.getThreadPool()
    pool.threadFactory = functools.partial(threading.Thread, daemon=True)
    if not reactor.running:
        # reactor.run() would run the loop, which already runs: only fire the startup triggers
        # (thread pool for DNS, etc.) and mark the reactor as running
        reactor.startRunning(installSignalHandlers=False)


#: how long a cancelled crawl may take to close its spider (downloads in flight, pipelines)
STOP_SPIDER_SECONDS = 15.0


async def run_spider(spidercls: type[Any], settings: ScrapySettings, **spider_kwargs: Any) -> Crawler:
    """Run one spider to completion in the running loop; returns its crawler (stats, spider).

    Cancelling the caller stops the crawl. Awaiting a Scrapy crawl from asyncio does not do that by
    itself: the cancellation either reaches only the awaiting future (the engine goes on fetching in
    the background) or is absorbed by the Deferred (the crawl returns normally). Both cases end here
    in ``crawler.stop_async()`` and a ``CancelledError`` for the caller.
    """
    ensure_asyncio_reactor()
    runner = AsyncCrawlerRunner(settings)
    crawler = runner.create_crawler(spidercls)
    try:
        await runner.crawl(crawler, **spider_kwargs)
    except asyncio.CancelledError:
        await asyncio.shield(_stop(crawler))
        raise
    task = asyncio.current_task()
    if task is not None and task.cancelling():  # the crawl absorbed our cancellation: honour it
        await asyncio.shield(_stop(crawler))
        raise asyncio.CancelledError
    return crawler


async def _stop(crawler: Crawler) -> None:
    if not crawler.crawling:
        return
    try:
        await asyncio.wait_for(crawler.stop_async(), STOP_SPIDER_SECONDS)
    except Exception as exc:  # best effort: the process may be going away anyway
        get_logger(__name__).warning("spider did not stop cleanly", error=str(exc)[:300])
