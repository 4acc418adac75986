"""The one door out of Scrapy: each page's records go to ``ingest.submit`` with the page's checkpoint.

Spiders never touch MongoDB. Pages are submitted strictly in the order the spider produced them
(an ``asyncio.Lock`` is FIFO), because page *k+1*'s checkpoint must never be saved before page *k*'s
batch is stored, even though Scrapy may already be downloading page *k+1*.

Media are passed on as ``MediaRef``s; fetching and hashing them is ingest's media stage (the seam
named ``media`` in ``crawler.ingest``), not the spider's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

from scrapy.exceptions import DropItem, NotConfigured

from crawler.errors import TgwatchError
from crawler.models import Channel, Checkpoint, Deletion, Message

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.ingest import IngestResult


@dataclass
class PageItem:
    """One fetched page's worth of records and the checkpoint that becomes true once they are stored."""

    url: str
    records: list[Channel | Message | Deletion]
    checkpoint: Checkpoint | None
    errors: list[TgwatchError] = field(default_factory=list)
    media_refs: int = 0
    kind: str = "page"  # "page" | "state" (a channel-state record without messages)


class IngestLike(Protocol):
    async def submit(
        self, records: list[Channel | Message | Deletion], *, checkpoint: Checkpoint | None = None
    ) -> IngestResult: ...


class CrawlHooks(Protocol):
    """What the driver wants to hear about; all optional in practice (see ``crawler.crawl_web``)."""

    async def page_stored(self, item: PageItem, result: IngestResult) -> None: ...

    async def page_failed(self, item: PageItem, error: TgwatchError) -> None: ...


class IngestPipeline:
    def __init__(self, ingest: IngestLike, hooks: CrawlHooks | None, crawler: Crawler | None = None) -> None:
        self.ingest = ingest
        self.hooks = hooks
        self.crawler = crawler
        self._lock = asyncio.Lock()
        self._failed: TgwatchError | None = None
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from spiders.settings import shared

        ingest = shared(crawler.settings, "TGWATCH_INGEST")
        if ingest is None:
            raise NotConfigured("TGWATCH_INGEST is not set: nowhere to store items")
        return cls(ingest, shared(crawler.settings, "TGWATCH_HOOKS"), crawler)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        async with self._lock:
            if self._failed is not None:
                # an earlier page was not stored: storing later pages would save a checkpoint past it
                raise DropItem(f"not stored after an earlier store failure: {self._failed}")
            try:
                result = await self.ingest.submit(item.records, checkpoint=item.checkpoint)
            except TgwatchError as exc:
                # the checkpoint was not saved: a rerun fetches this page again, nothing is lost
                self._failed = exc
                if self.hooks is not None:
                    await self.hooks.page_failed(item, exc)
                if self.crawler is not None and self.crawler.engine is not None:
                    self._closing = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="store_failed"))
                raise DropItem(f"store failed: {exc}") from exc
            if self.hooks is not None:
                await self.hooks.page_stored(item, result)
        return item
