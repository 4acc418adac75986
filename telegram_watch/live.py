"""Live watching: new, edited and deleted messages of the watched channels, gap-free.

New messages are not stored from the event itself: a ``NewMessage`` is a *signal* that runs the
checkpointed top walk (``Backfill.catch_up``) for that channel. That one path stores every message
between the checkpoint and the newest one, merges albums whole, and moves the checkpoint only after
the batch is stored, so a missed event, a disconnect or a crash never leaves a hole: the next signal
(or the reconnect, or the periodic resync) reads from the checkpoint again. Catch-ups of one channel
are coalesced (one runs at a time; signals during it cause one more).

Comments and bots follow every catch-up (``Backfill.catch_up``: threads under the newest posts with new
comments are read), and a forum's topic list is kept on its channel record from start-up.

Edits are converted and submitted as they come (ingest turns a changed text/media into a new version);
an edited album part refetches its neighbours so the album record stays whole. Deletions become
``Deletion`` records (ingest sets ``deleted_at``, nothing is removed). Event handlers run on one
account's connection; the reads they trigger go through the pool like any other work.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from telethon import TelegramClient, events

from foundation.contracts import IngestDoor
from foundation.errors import NotAuthorized, TgwatchError
from foundation.logs import get_logger
from foundation.models import Deletion, Source, utcnow
from telegram_watch.backfill import Backfill
from telegram_watch.convert import convert_messages, peer_channel_id
from telegram_watch.entities import Resolved, Target, input_peer, resolve
from telegram_watch.pool import AccountLeased, AccountPool, Member, NoAccount

log = get_logger(__name__)

ALBUM_SPAN = 9  # an album has at most 10 parts


class Watcher:
    def __init__(
        self,
        pool: AccountPool,
        ingest: IngestDoor,
        targets: list[Target],
        *,
        backfill: Backfill | None = None,
        resync_seconds: float = 300.0,
        run_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.ingest = ingest
        self.targets = targets
        self.backfill = backfill or Backfill(pool, ingest, run_id=run_id)
        self.resync_seconds = resync_seconds
        self.run_id = run_id
        self.watched: dict[int, Resolved] = {}
        self.member: Member | None = None
        self.client: TelegramClient | None = None
        self._running: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self.counts: dict[str, int] = {"new_signals": 0, "edits": 0, "deletions": 0, "catch_ups": 0, "errors": 0}

    # --- set-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the channels, attach the handlers to one account's client, catch up once."""
        for target in self.targets:
            resolved = await resolve(self.pool, target)
            try:  # a private chat is watched only under an authorization (the same gate as backfill)
                await self.backfill.require_private_read(resolved)
            except NotAuthorized as exc:
                self.counts["errors"] += 1
                log.warning("not watching private chat: no authorization", channel=target.key)
                await self.ingest.record_error(exc, run_id=self.run_id, record=target.key)
                continue
            resolved = await self.backfill.with_topics(resolved)
            await self.ingest.submit([resolved.channel], run_id=self.run_id)
            if not resolved.ok or resolved.ref.tg_id is None:
                log.warning("not watching unavailable channel", channel=target.key, state=str(resolved.channel.state))
                continue
            self.watched[resolved.ref.tg_id] = resolved
        self.member, self.client = await self._receiving_account()
        self.client.add_event_handler(self._on_new, events.NewMessage())
        self.client.add_event_handler(self._on_edit, events.MessageEdited())
        self.client.add_event_handler(self._on_delete, events.MessageDeleted())
        await self.catch_up_all()

    async def _receiving_account(self) -> tuple[Member, TelegramClient]:
        """The first account free to receive updates: one whose session another process holds (its
        lease) is passed over for the next, not a reason to stop watching."""
        candidates = self.pool.candidates(None)
        if not candidates:
            raise NoAccount("no usable Telegram account to receive live updates")
        leased: AccountLeased | None = None
        for member in candidates:
            try:
                return member, await self.pool.client(member)
            except AccountLeased as exc:
                log.info("account leased elsewhere: trying the next", account=member.name)
                leased = exc
        assert leased is not None
        raise leased  # every account is in use elsewhere: a wait, like a flood wait

    async def stop(self) -> None:
        if self.client is not None:
            for handler in (self._on_new, self._on_edit, self._on_delete):
                self.client.remove_event_handler(handler)
        await self.drain()

    async def drain(self) -> None:
        """Wait for every catch-up in flight (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; reconnect and catch up after every disconnect."""
        await self.start()
        try:
            while not stop.is_set():
                assert self.member is not None
                client = await self.pool.client(self.member)
                if client is not self.client or self.client is None:
                    raise NoAccount("the watching account's client was replaced")
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(_disconnected(client))]
                done, pending = await asyncio.wait(
                    waits, timeout=self.resync_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                if stop.is_set():
                    break
                if waits[1] in done:
                    log.warning("disconnected: reconnecting and catching up", account=self.member.name)
                    await self.reconnect()
                else:
                    await self.catch_up_all()
        finally:
            await self.stop()

    async def reconnect(self) -> None:
        assert self.member is not None
        self.client = await self.pool.client(self.member)
        with contextlib.suppress(Exception):
            await self.client.catch_up()  # replays missed edits/deletions when the server still has them
        await self.catch_up_all()

    # --- catch-up -------------------------------------------------------------------------------

    async def catch_up_all(self) -> None:
        for channel_id in list(self.watched):
            self.signal(channel_id)
        await self.drain()

    def signal(self, channel_id: int) -> None:
        """Ask for a catch-up of one channel; coalesced with one already running."""
        if channel_id in self._running:
            self._again.add(channel_id)
            return
        self._running[channel_id] = asyncio.ensure_future(self._catch_up_loop(channel_id))

    async def _catch_up_loop(self, channel_id: int) -> None:
        try:
            while True:
                self._again.discard(channel_id)
                self.counts["catch_ups"] += 1
                try:
                    await self.backfill.catch_up(self.watched[channel_id])
                except TgwatchError as exc:
                    self.counts["errors"] += 1
                    log.error("catch-up failed", channel=f"id{channel_id}", error=exc.message, kind=exc.kind)
                    await self.ingest.record_error(exc, run_id=self.run_id, record=f"id{channel_id}")
                    return
                if channel_id not in self._again:
                    return
        finally:
            self._running.pop(channel_id, None)

    # --- handlers -------------------------------------------------------------------------------

    def _watched(self, message: Any) -> Resolved | None:
        channel_id = peer_channel_id(message)
        return self.watched.get(channel_id) if channel_id is not None else None

    async def _on_new(self, event: events.NewMessage.Event) -> None:
        resolved = self._watched(event.message)
        if resolved is not None and resolved.ref.tg_id is not None:
            self.counts["new_signals"] += 1
            self.signal(resolved.ref.tg_id)

    async def _on_edit(self, event: events.MessageEdited.Event) -> None:
        message = event.message
        resolved = self._watched(message)
        if resolved is None:
            return
        self.counts["edits"] += 1
        try:
            parts: list[Any] = [message]
            if getattr(message, "grouped_id", None) is not None:
                parts = await self._album(resolved, message)
            records = convert_messages(parts, resolved.ref, request="updateEditChannelMessage")
            await self.ingest.submit(records, run_id=self.run_id)
        except TgwatchError as exc:
            self.counts["errors"] += 1
            log.error("edit not stored", channel=resolved.ref.natural_key(), msg_id=message.id, error=exc.message)

    async def _album(self, resolved: Resolved, message: Any) -> list[Any]:
        ids = list(range(max(1, message.id - ALBUM_SPAN), message.id + ALBUM_SPAN + 1))

        async def fetch(client: TelegramClient) -> list[Any]:
            got = await client.get_messages(await input_peer(client, resolved.target), ids=ids)
            return [m for m in got if m is not None]

        around = await self.pool.run(resolved.target.key, fetch)
        parts = [m for m in around if getattr(m, "grouped_id", None) == message.grouped_id]
        return parts or [message]

    async def _on_delete(self, event: events.MessageDeleted.Event) -> None:
        channel_id = getattr(event.original_update, "channel_id", None)
        resolved = self.watched.get(channel_id) if channel_id is not None else None
        if resolved is None:
            return  # deletions outside channels carry no chat id: nothing to attach them to
        self.counts["deletions"] += len(event.deleted_ids)
        deletion = Deletion(ref=resolved.ref, msg_ids=list(event.deleted_ids), source=Source.MTPROTO, seen_at=utcnow())
        try:
            await self.ingest.submit([deletion], run_id=self.run_id)
        except TgwatchError as exc:
            self.counts["errors"] += 1
            log.error("deletion not stored", channel=resolved.ref.natural_key(), error=exc.message)


async def _disconnected(client: TelegramClient) -> None:
    await client.disconnected
