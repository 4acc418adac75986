"""Crawl tasks: one per target per due time, in the leased ``crawl_tasks`` work queue.

The task id is ``<target>/<due epoch>``, so every scheduler that computes the same due time tries to
insert the same id and only the first succeeds. A target that still has an open task (ready or
leased) gets no second one: a crawl that outlasts its interval, or a dead worker's task waiting for
its lease to expire, makes the next due time *coalesce* into the open task instead of stacking
overlapping runs of the same channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from crawler.scheduling.plan import Schedule
from foundation import metrics
from storage.client import Doc, Store
from storage.workqueue import WorkQueue

QUEUE = "crawl_tasks"


class Created(StrEnum):
    CREATED = "created"
    EXISTS = "exists"  # another scheduler (or an earlier tick) made it already
    BUSY = "busy"  # the target has an open task for an earlier due time
    PAUSED = "paused"


@dataclass(frozen=True)
class TaskSpec:
    """What a worker needs to run one task (the queue payload, typed)."""

    task_id: str
    target: str
    name: str
    method: str
    due: int
    attempt: int = 1

    @classmethod
    def from_payload(cls, task_id: str, payload: dict[str, Any], attempt: int = 1) -> TaskSpec:
        return cls(task_id, payload["target"], payload.get("name", payload["target"]), payload["method"],
                   int(payload["due"]), attempt)  # fmt: skip


def task_id(target: str, due: datetime | float) -> str:
    epoch = int(due.timestamp()) if isinstance(due, datetime) else int(due)
    return f"{target}/{epoch}"


class CrawlTasks:
    def __init__(self, store: Store, *, max_attempts: int = 3, clock: Callable[[], float] = time.time) -> None:
        self.queue = WorkQueue(store, QUEUE, max_attempts=max_attempts, clock=clock)
        self._clock = clock

    async def open_task(self, target: str) -> Doc | None:
        return await self.queue.open_with("target", target)

    async def create(self, schedule: Schedule, due: datetime, *, priority: int | None = None) -> Created:
        """Create the task of ``schedule`` for ``due`` unless it exists or the target is busy."""
        if schedule.paused:
            return Created.PAUSED
        tid = task_id(schedule.target, due)
        open_doc = await self.open_task(schedule.target)
        if open_doc is not None:
            result = Created.EXISTS if open_doc["_id"] == tid else Created.BUSY
            metrics.count_task(result.value)
            return result
        available = due.timestamp() + schedule.offset()
        payload = {
            "target": schedule.target,
            "name": schedule.name,
            "method": schedule.method,
            "due": int(due.timestamp()),
            "group": schedule.group,
        }
        inserted = await self.queue.enqueue(
            tid,
            payload,
            priority=schedule.priority if priority is None else priority,
            delay=max(0.0, available - self._clock()),
        )
        result = Created.CREATED if inserted else Created.EXISTS
        metrics.count_task(result.value)
        return result

    async def list(self, limit: int = 50, state: str | None = None) -> list[Doc]:
        return await self.queue.recent(limit, state)
