"""What the app shell calls: manage rules, send a test, read the log and the dead letters, and run
a dispatcher in the background of a long-running process (``notifier``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from config import Settings
from crawler.notify.dispatcher import Dispatcher, GroupsResolver, OnSent
from crawler.notify.render import render_test
from crawler.notify.rules import NotifyRule
from crawler.notify.sinks import SessionFactory, SinkError
from foundation.errors import TgwatchError
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Doc, Store

log = get_logger(__name__)


class NotifyError(TgwatchError):
    kind = "notify"


class NotifyService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        session_factory: SessionFactory | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_sent: OnSent | None = None,
        channel_groups: GroupsResolver | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(
            store, settings, session_factory=session_factory, env=env, clock=clock, on_sent=on_sent,
            channel_groups=channel_groups,
        )  # fmt: skip
        self.rules = self.dispatcher.rules
        self.settings = settings

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

    async def add(self, rule: NotifyRule) -> None:
        if not await self.rules.add(rule.to_doc()):
            raise NotifyError(f"a notification rule named {rule.name!r} exists (remove it first)")

    async def all_rules(self) -> list[NotifyRule]:
        """Every readable rule (a damaged document is logged and left out)."""
        return await self.dispatcher.rules_readable()

    async def get(self, name: str) -> NotifyRule:
        doc = await self.rules.get(name)
        if doc is None:
            raise NotifyError(f"no notification rule {name!r}")
        try:
            return NotifyRule.from_doc(doc)
        except ValueError:
            raise NotifyError(f"notification rule {name!r} is unreadable: remove it and add it again") from None

    async def remove(self, name: str) -> None:
        """Delete a rule; its deliveries not yet sent are skipped (and logged) when next claimed."""
        if not await self.rules.remove(name):
            raise NotifyError(f"no notification rule {name!r}")

    async def test(self, name: str) -> str:
        """Send a test message through the rule's sink now (not queued); returns the SHA-256 sent."""
        rule = await self.get(name)
        message = render_test(lang=rule.lang, rule=rule.name)
        entry: dict[str, Any] = {
            "rule": rule.name, "sink": rule.sink, "kind": "test", "deliveries": [], "alerts": [], "attempt": 1,
        }  # fmt: skip
        try:
            sha256 = await self.dispatcher.sink_for(rule).send(message)
        except SinkError as exc:
            failed = {"outcome": "failed", "error": exc.message, "sha256": None}
            await self.dispatcher.log.record({**entry, **failed, "at_ts": time.time(), "at": utcnow()})
            raise
        await self.dispatcher.log.record(
            {**entry, "outcome": "sent", "error": None, "sha256": sha256, "at_ts": time.time(), "at": utcnow()}
        )
        if self.dispatcher.on_sent is not None:
            sent = {"rule": rule.name, "sink": rule.sink, "message": "test", "sha256": sha256, "alerts": [],
                    "deliveries": []}  # fmt: skip
            await self.dispatcher.on_sent(sent)
        return sha256

    async def log(self, rule: str | None = None, limit: int = 50) -> list[Doc]:
        return await self.dispatcher.log.list(rule, limit)

    async def dead(self, limit: int = 100) -> list[Doc]:
        return await self.dispatcher.queue.dead(limit)

    async def requeue(self, delivery_ids: list[str], *, all_dead: bool = False) -> int:
        ids = [str(d["_id"]) for d in await self.dead(10_000)] if all_dead else delivery_ids
        return sum([await self.dispatcher.queue.requeue(i) for i in ids])

    async def stats(self) -> dict[str, Any]:
        return await self.dispatcher.queue.stats()


@contextlib.asynccontextmanager
async def notifier(
    store: Store,
    settings: Settings,
    *,
    session_factory: SessionFactory | None = None,
    on_sent: OnSent | None = None,
    channel_groups: GroupsResolver | None = None,
) -> AsyncIterator[Dispatcher]:
    """A dispatcher running in the background for the block (``tgwatch run``, ``tgwatch serve``)."""
    dispatcher = Dispatcher(
        store, settings, session_factory=session_factory, on_sent=on_sent, channel_groups=channel_groups
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop), name="notify-dispatcher")
    log.info("notification dispatcher started", consumer=dispatcher.consumer)
    try:
        yield dispatcher
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=settings.notify.send_timeout + 5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        await dispatcher.aclose()
