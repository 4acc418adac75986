"""The one door out of Scrapy: pages' records go to the ingest door (``ingest.submit``) with a checkpoint.

Spiders never touch MongoDB: the pipeline is handed an ingest door and the driver's hooks through
the crawler settings (``TGWATCH_INGEST``, ``TGWATCH_HOOKS``, see ``spiders.shared``). Pages are
stored strictly in the order the spider produced them, because page *k+1*'s checkpoint must never be
saved before page *k*'s batch is stored, even though Scrapy may already be downloading page *k+1*.
One writer task does the storing; pages that arrive while a submit is in flight are stored together
in the next one (group commit: one batch, then the newest of their checkpoints), which is the same
outcome as storing them one by one, in fewer round trips.

After a stored group the driver hears ``page_stored`` once per page (the group's counts with the
first); the errors a page carries (``PageItem.errors``) are the driver's to record. When a submit
fails nothing of the group is checkpointed: its pages and every later one are dropped, the spider is
closed (``store_failed``) and the driver hears ``page_failed``, so a rerun fetches them again.

Media are passed on as ``MediaRef``s; fetching and hashing them is ingest's ``media`` stage
(``crawler.pipeline.STAGES``), not the spider's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

from scrapy.exceptions import DropItem, NotConfigured

from foundation.contracts import IngestResult
from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import Channel, Checkpoint, Deletion, Message, WebPage
from spiders.shared import shared

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = get_logger(__name__)


@dataclass
class PageItem:
    """One fetched page's worth of records and the checkpoint that becomes true once they are stored."""

    url: str
    records: list[Channel | Message | Deletion]
    checkpoint: Checkpoint | None
    errors: list[TgwatchError] = field(default_factory=list)
    media_refs: int = 0
    undated: int = 0  # messages kept without a date footer (counted on the run)
    kind: str = "page"  # "page" | "state" (a channel-state record without messages)
    #: the whole HTTP response the records were parsed from (kept for web archives), if any
    page: WebPage | None = None


class IngestLike(Protocol):
    async def submit(
        self, records: list[Channel | Message | Deletion | WebPage], *, checkpoint: Checkpoint | None = None
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
        self._pending: list[tuple[PageItem, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failed: TgwatchError | None = None
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ingest = shared(crawler.settings, "TGWATCH_INGEST")
        if ingest is None:
            raise NotConfigured("TGWATCH_INGEST is not set: nowhere to store items")
        return cls(ingest, shared(crawler.settings, "TGWATCH_HOOKS"), crawler)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        if self._failed is not None:
            # an earlier page was not stored: storing later pages would save a checkpoint past it
            raise DropItem(f"not stored after an earlier store failure: {self._failed}")
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_pending())
        await stored
        return item

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            if self._failed is not None:
                for _, stored in group:
                    stored.set_exception(DropItem(f"not stored after an earlier store failure: {self._failed}"))
                continue
            records: list[Channel | Message | Deletion | WebPage] = [r for item, _ in group for r in item.records]
            records += [item.page for item, _ in group if item.page is not None]
            checkpoint = next((item.checkpoint for item, _ in reversed(group) if item.checkpoint is not None), None)
            try:
                result = await self.ingest.submit(records, checkpoint=checkpoint)
            except TgwatchError as exc:
                # no checkpoint was saved: a rerun fetches these pages again, nothing is lost
                self._failed = exc
                # every waiting page is released and the spider closed before the hooks run: a
                # hook that fails too (it may need the store that just failed) must not leave
                # process_item waiting forever, which hung the whole crawl
                for _, stored in group:
                    stored.set_exception(DropItem(f"store failed: {exc}"))
                if self.crawler is not None and self.crawler.engine is not None:
                    self._closing = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="store_failed"))
                if self.hooks is not None:
                    for item, _ in group:
                        try:
                            await self.hooks.page_failed(item, exc)
                        except StoreError as hook_exc:
                            log.warning("could not record a page that failed to store", error=str(hook_exc)[:300])
                continue
            for index, (item, stored) in enumerate(group):
                if self.hooks is not None:  # the group's counts are told once, with its first page
                    try:
                        await self.hooks.page_stored(item, result if index == 0 else IngestResult())
                    except StoreError as hook_exc:
                        # the page is stored and checkpointed; only the driver's note of it failed
                        # (the store may have died just after the submit). The page is released all
                        # the same: a waiting process_item kept the spider from ever closing (CI saw
                        # a crawl hang after its store was killed); the next submit meets the outage
                        log.warning("could not record a stored page", url=item.url, error=str(hook_exc)[:300])
                stored.set_result(None)
