"""Cancelling a crawl stops its spider: nothing keeps fetching in the background."""

from __future__ import annotations

import asyncio
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
