"""The Scrapy pipeline's writer releases every page, whatever the driver's hooks do.

CI once saw a crawl hang after its store was killed: the submit had succeeded, then the driver's
``page_stored`` hook (it counts the page on the run record) failed on the dead store; the writer
task died with that error and the page's ``process_item`` waited forever, so the spider never closed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from crawler.ingest import Ingest
from foundation.contracts import IngestResult
from foundation.errors import StoreError, TgwatchError
from foundation.models import ChannelRef, Checkpoint, Message, Source
from spiders.pipelines import IngestPipeline, PageItem
from storage.client import Store
from storage.repos.messages import MessageRepo


class DriverWhoseStoreDied:
    """A driver whose own notes fail the way a dead store fails them."""

    def __init__(self) -> None:
        self.told: list[str] = []

    async def page_stored(self, item: PageItem, result: IngestResult) -> None:
        self.told.append(item.url)
        raise StoreError("update run: AutoReconnect: connection reset")

    async def page_failed(self, item: PageItem, error: TgwatchError) -> None:
        raise AssertionError("the page was stored")


def page(msg_id: int) -> PageItem:
    message = Message(ref=ChannelRef(username="calm_room"), msg_id=msg_id, source=Source.WEB,
                      date=datetime(2026, 5, 1, tzinfo=UTC), text=f"post {msg_id}")  # fmt: skip
    return PageItem(url=f"http://127.0.0.1/s/calm_room?before={msg_id + 1}", records=[message],
                    checkpoint=Checkpoint(stream="web:calm_room", newest_id=msg_id, oldest_id=1))  # fmt: skip


async def test_a_stored_page_is_released_when_the_drivers_note_of_it_fails(store: Store, ingest: Ingest) -> None:
    driver = DriverWhoseStoreDied()
    pipeline = IngestPipeline(ingest, driver)
    items = [page(1), page(2)]
    # a hang guard, not a timing assertion: the old writer never released these pages
    done = await asyncio.wait_for(asyncio.gather(*(pipeline.process_item(i) for i in items)), 60)
    assert done == items
    assert driver.told == [i.url for i in items]
    stored = await MessageRepo(store).query(channel="calm_room", limit=10)
    assert sorted(m["msg_id"] for m in stored) == [1, 2]
