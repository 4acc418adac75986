"""History backfill with exact resume: every batch is stored, then its checkpoint, in that order.

The checkpoint (``mtproto:id<N>``) says which ids are read without a gap: ``oldest_id..newest_id``.
A run does up to two walks, both newest-first, one history page (one ``messages.getHistory``) per
pool operation so that a flood wait hands the very next page to another account:

1. the *top walk* from the channel's newest message down to ``newest_id`` (or to the bottom on the
   first run). While it runs, ``walk_top``/``walk_low`` record its progress; a crash resumes below
   ``walk_low`` and the walk joins ``newest_id`` when it gets there.
2. the *downward walk* below ``oldest_id`` until the first message (``complete``), ``--limit`` or
   ``--since-date``.

Each batch goes through ``Ingest.submit(records, checkpoint=...)``, which writes the records before
the checkpoint: a ``kill -9`` between the two only makes the next run submit that batch again, and
ingest's natural keys make the replay a no-op. Albums cut by a batch boundary are held back to the
next batch, so an album is always merged whole (see ``convert``) and the checkpoint never points
into the middle of one.

Live catch-up after a disconnect is the top walk alone (``catch_up``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from telethon import TelegramClient

from foundation.contracts import IngestDoor, IngestRecord, IngestResult
from foundation.logs import get_logger
from foundation.models import ChannelState, Checkpoint, utcnow
from telegram_watch.convert import DEFAULT_WEB_BASE, convert_messages, split_incomplete_tail, unavailable_channel
from telegram_watch.entities import Resolved, Target, input_peer, resolve
from telegram_watch.errors import TelegramDenied, TelegramNotFound
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

PAGE_SIZE = 100  # the most one getHistory request returns


@dataclass
class BackfillResult:
    channel: str
    stream: str
    fetched: int = 0
    batches: int = 0
    complete: bool = False
    state: str = "ok"
    stored: IngestResult = field(default_factory=IngestResult)


async def fetch_page(client: TelegramClient, target: Target, *, offset_id: int, floor: int, limit: int) -> list[Any]:
    """One history page: ids below ``offset_id`` (0 = from the newest) and above ``floor``, newest first."""
    peer = await input_peer(client, target)
    page = await client.get_messages(peer, limit=limit, offset_id=offset_id, min_id=floor)
    return list(page or [])


#: ``gate(channel_key, account_names)`` raises ``NotAuthorized`` unless an authorization covers the read
PrivateGate = Callable[[str, list[str]], Awaitable[object]]


class Backfill:
    def __init__(
        self,
        pool: AccountPool,
        ingest: IngestDoor,
        *,
        batch_size: int = 500,
        page_size: int = PAGE_SIZE,
        web_base: str = DEFAULT_WEB_BASE,
        run_id: str | None = None,
        private_gate: PrivateGate | None = None,
    ) -> None:
        self.pool = pool
        #: checks an active authorization before any history of a private chat is read
        self.private_gate = private_gate
        self.ingest = ingest
        self.batch_size = batch_size
        self.page_size = min(page_size, PAGE_SIZE)
        self.web_base = web_base
        self.run_id = run_id

    async def run(
        self, target: Target | str, *, limit: int | None = None, since: datetime | None = None
    ) -> BackfillResult:
        tgt = Target.parse(target) if isinstance(target, str) else target
        resolved = await resolve(self.pool, tgt)
        result = BackfillResult(channel=str(resolved.ref.natural_key()), stream=resolved.stream)
        header = _header_records(tgt, resolved)
        result.stored.add(await self.ingest.submit(header, run_id=self.run_id))
        if not resolved.ok:
            result.state = str(resolved.channel.state)
            return result
        if resolved.ref.username is None and self.private_gate is not None:
            # a chat without a public username is private: reading it needs a covering authorization
            await self.private_gate(resolved.ref.natural_key(), [m.name for m in self.pool.candidates(None)])
        walk = _Walk(self, resolved, result, limit=limit, since=since)
        try:
            try:
                await walk.top()
                if not walk.stopped:
                    await walk.down()
            finally:
                await walk.settle()
        except (TelegramDenied, TelegramNotFound) as exc:
            # readable at resolve time, not any more (kicked, channel banned …): record the state
            state = exc.channel_state or ChannelState.PRIVATE
            lost = unavailable_channel(resolved.ref, state, exc.rpc)
            result.stored.add(await self.ingest.submit([lost], run_id=self.run_id))
            result.state = str(state)
            log.warning("backfill stopped: channel unavailable", channel=result.channel, rpc=exc.rpc)
            return result
        cp = await self.ingest.checkpoint(resolved.stream)
        result.complete = bool(cp and cp.complete)
        log.info(
            "backfill done",
            channel=result.channel,
            fetched=result.fetched,
            new=result.stored.new,
            complete=result.complete,
        )
        return result

    async def catch_up(self, resolved: Resolved) -> BackfillResult:
        """Read everything newer than the checkpoint (after a disconnect, or on a new-message signal)."""
        result = BackfillResult(channel=str(resolved.ref.natural_key()), stream=resolved.stream)
        walk = _Walk(self, resolved, result, limit=None, since=None)
        try:
            await walk.top()
        finally:
            await walk.settle()
        return result


def _header_records(requested: Target, resolved: Resolved) -> list[IngestRecord]:
    """The channel record; under the requested name first when it was renamed, so both names stay aliases."""
    records: list[IngestRecord] = []
    if resolved.ok and requested.username and requested.username != resolved.ref.username:
        old = resolved.ref.model_copy(update={"username": requested.username})
        records.append(resolved.channel.model_copy(update={"ref": old}))
    records.append(resolved.channel)
    return records


class _Walk:
    """One run's walks over one channel, sharing the limit/since budget."""

    def __init__(
        self, owner: Backfill, resolved: Resolved, result: BackfillResult, *, limit: int | None, since: datetime | None
    ) -> None:
        self.o = owner
        self.r = resolved
        self.result = result
        self.remaining = limit
        self.since = since
        self.stopped = False
        self._cp: Checkpoint | None = None
        self._inflight: asyncio.Task[None] | None = None

    async def _checkpoint(self) -> Checkpoint:
        """The checkpoint as it will be once the batch in flight is stored (this walk is its only writer)."""
        if self._cp is None:
            self._cp = await self.o.ingest.checkpoint(self.r.stream) or Checkpoint(stream=self.r.stream)
        return self._cp

    async def settle(self) -> None:
        """Wait for the batch in flight; its failure surfaces here."""
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            await task

    async def _pages(self, offset_id: int, floor: int) -> Any:
        """Yield (page, ended) newest-first; stops at the floor, the bottom, the limit or the date."""
        while True:
            want = self.o.page_size if self.remaining is None else min(self.o.page_size, self.remaining)
            if want <= 0:
                self.stopped = True
                yield [], False
                return
            page = await self.o.pool.run(self.r.target.key, partial(self._page, offset_id, floor, want))
            self.result.fetched += len(page)
            ended = len(page) < want
            if self.since is not None:
                kept = [m for m in page if m.date is None or m.date >= self.since]
                if len(kept) < len(page):
                    page, ended, self.stopped = kept, False, True
            if self.remaining is not None:
                self.remaining -= len(page)
            if page:
                offset_id = min(m.id for m in page)
            yield page, ended
            if ended or self.stopped or not page:
                return

    async def _page(self, offset_id: int, floor: int, limit: int, client: TelegramClient) -> list[Any]:
        return await fetch_page(client, self.r.target, offset_id=offset_id, floor=floor, limit=limit)

    async def _submit(self, msgs: Sequence[Any], checkpoint: Checkpoint) -> None:
        """Convert now, store in the background while the next pages are fetched.

        Batches are still stored strictly one after the other (each waits for the one before), so
        every checkpoint is written after its own records and after all earlier batches.
        """
        records = convert_messages(msgs, self.r.ref, web_base=self.o.web_base)
        await self.settle()
        self._cp = checkpoint

        async def store() -> None:
            stored = await self.o.ingest.submit(records, checkpoint=checkpoint, run_id=self.o.run_id)
            self.result.stored.add(stored)
            self.result.batches += 1

        self._inflight = asyncio.ensure_future(store())

    async def top(self) -> None:
        """From the newest message down to ``newest_id`` (or the bottom), resuming a cut walk."""
        cp = await self._checkpoint()
        floor = cp.newest_id or 0
        resuming = cp.walk_top is not None and cp.walk_low is not None
        walk_top = cp.walk_top if resuming else None
        offset = (cp.walk_low or 0) if resuming else 0
        buffer: list[Any] = []
        async for page, ended in self._pages(offset, floor):
            buffer.extend(page)
            if walk_top is None and buffer:
                walk_top = max(m.id for m in buffer)
            finished = ended and not self.stopped
            if len(buffer) < self.o.batch_size and not finished and not self.stopped:
                continue
            send, buffer = (buffer, []) if finished else split_incomplete_tail(buffer)
            cp = await self._checkpoint()
            if walk_top is None:  # nothing newer than the checkpoint
                return
            low = min(m.id for m in send) if send else (cp.walk_low or walk_top)
            if finished:
                cp = _joined(cp, walk_top, low, reached_bottom=floor == 0)
            elif self.stopped and cp.newest_id is None:
                cp = _joined(cp, walk_top, low, reached_bottom=False)
            else:
                cp = cp.model_copy(update={"walk_top": walk_top, "walk_low": low})
            await self._submit(send, cp)
        await self.settle()

    async def down(self) -> None:
        """Below ``oldest_id`` towards the channel's first message."""
        cp = await self._checkpoint()
        if cp.complete or cp.oldest_id is None or cp.walk_top is not None:
            return
        buffer: list[Any] = []
        async for page, ended in self._pages(cp.oldest_id, 0):
            buffer.extend(page)
            finished = ended and not self.stopped
            if len(buffer) < self.o.batch_size and not finished and not self.stopped:
                continue
            send, buffer = (buffer, []) if finished else split_incomplete_tail(buffer)
            cp = await self._checkpoint()
            update: dict[str, Any] = {"complete": finished}
            if send:
                update["oldest_id"] = min(cp.oldest_id or 0, min(m.id for m in send))
            await self._submit(send, cp.model_copy(update=update))
        await self.settle()


def _joined(cp: Checkpoint, walk_top: int | None, low: int, *, reached_bottom: bool) -> Checkpoint:
    """The checkpoint once a top walk has met ``newest_id`` (or the bottom): no walk in progress."""
    update: dict[str, Any] = {"walk_top": None, "walk_low": None}
    if walk_top is not None:
        update["newest_id"] = max(walk_top, cp.newest_id or 0)
    if cp.oldest_id is None:
        update["oldest_id"] = low
        update["complete"] = reached_bottom
    return cp.model_copy(update=update)


async def backfill(
    pool: AccountPool,
    ingest: IngestDoor,
    target: str,
    *,
    limit: int | None = None,
    since: datetime | None = None,
    batch_size: int = 500,
    run_id: str | None = None,
    web_base: str = DEFAULT_WEB_BASE,
) -> BackfillResult:
    """Convenience wrapper used by the CLI and the bench."""
    runner = Backfill(pool, ingest, batch_size=batch_size, run_id=run_id, web_base=web_base)
    try:
        return await runner.run(target, limit=limit, since=since)
    except (TelegramDenied, TelegramNotFound) as exc:
        log.warning("backfill stopped", channel=target, rpc=exc.rpc)
        raise
    finally:
        log.debug("backfill stats", **dict(pool.stats), at=utcnow().isoformat())
