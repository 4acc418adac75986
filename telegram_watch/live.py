"""Live watching: new, edited and deleted messages of the watched channels, gap-free.

New messages are not stored from the event itself: a ``NewMessage`` is a *signal* that runs the
checkpointed top walk (``Backfill.catch_up``) for that channel. That one path stores every message
between the checkpoint and the newest one, merges albums whole, and moves the checkpoint only after
the batch is stored, so a missed event, a disconnect or a crash never leaves a hole: the next signal
(or the reconnect, or the periodic resync) reads from the checkpoint again. Catch-ups of one channel
are coalesced (one runs at a time; signals during it cause one more).

Comments and bots follow every catch-up (``Backfill.catch_up``: threads under the newest posts with new
comments are read), and a forum's topic list is kept on its channel record from start-up.

Comments live. A watched channel's discussion group (``linked_chat_id``) is watched too: its updates
reach the receiving account when that account is a member of the group (tgwatch never joins by
itself). A new comment is, like a new post, a *signal*: its thread root (the group's copy of a post,
named by the comment's reply header) is mapped to the post once (the copy is an automatic forward
naming ``channel_post``; one ``get_messages`` of the root when it was not seen live), and the thread's
checkpointed walk (``Backfill.catch_up_thread``) stores every comment past the thread's checkpoint as a
message of the discussion group with its ``thread_root``. Edits of comments are stored as they come
(with their thread root); deletions in the group become ``Deletion`` records of the group. Group
messages outside a comment thread are not followed (as in backfill). The same gate holds: a group is
watched only for a channel that passed ``require_private_read``; the same caps hold: at most
``Backfill.max_threads`` live thread walks and ``MAX_ROOT_LOOKUPS`` root look-ups between two resyncs
(the rest stay pending in the checkpoint for the resync's catch-up), each walk at most
``max_thread_messages``. A channel's history catch-ups and its thread walks run one at a time, in one
loop per channel, so they never write the channel's checkpoint concurrently.

Edits are converted and submitted as they come (ingest turns a changed text/media into a new version);
an edited album part refetches its neighbours so the album record stays whole. Deletions become
``Deletion`` records (ingest sets ``deleted_at``, nothing is removed). Event handlers run on one
account's connection; the reads they trigger go through the pool like any other work.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient, events
from telethon.tl import types

from foundation.contracts import IngestDoor
from foundation.errors import NotAuthorized, SourceError, TgwatchError
from foundation.logs import get_logger
from foundation.models import ChannelRef, Deletion, Source, utcnow
from telegram_watch import threads
from telegram_watch.backfill import Backfill, BackfillResult
from telegram_watch.convert import channel_ref, convert_messages, peer_channel_id
from telegram_watch.entities import Resolved, Target, input_peer, resolve
from telegram_watch.pool import AccountLeased, AccountPool, Member, NoAccount

log = get_logger(__name__)

ALBUM_SPAN = 9  # an album has at most 10 parts
#: thread roots looked up (one ``get_messages`` each) between two resyncs at most: a group flooded
#: with replies to ever new messages cannot turn live watching into a request per message
MAX_ROOT_LOOKUPS = 200
#: thread root → post mappings kept (a plain dict, emptied when full: a miss costs one look-up)
MAX_ROOTS_CACHED = 10_000


@dataclass(frozen=True)
class Discussion:
    """A watched channel's discussion group: where its comments arrive live."""

    channel: Resolved
    group: ChannelRef


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
        #: discussion group id → its channel; channel id → thread roots signalled (root → newest comment)
        self.discussions: dict[int, Discussion] = {}
        self._roots_due: dict[int, dict[int, int]] = {}
        self._posts: dict[tuple[int, int], int | None] = {}  # (group id, root id) → post id (None: no thread)
        self._thread_walks = 0  # live thread walks since the last resync (capped at ``backfill.max_threads``)
        self._lookups = 0  # root look-ups since the last resync (capped at ``MAX_ROOT_LOOKUPS``)
        self.counts: dict[str, int] = {"new_signals": 0, "edits": 0, "deletions": 0, "catch_ups": 0, "errors": 0,
                                       "comment_signals": 0, "thread_walks": 0, "comments_deferred": 0}  # fmt: skip

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
            await self._watch_discussion(resolved)
        self.member, self.client = await self._receiving_account()
        self.client.add_event_handler(self._on_new, events.NewMessage())
        self.client.add_event_handler(self._on_edit, events.MessageEdited())
        self.client.add_event_handler(self._on_delete, events.MessageDeleted())
        await self.catch_up_all()

    async def _watch_discussion(self, resolved: Resolved) -> None:
        """Note the channel's discussion group, whose updates are its comments (a failure is recorded;
        the comments are then read at catch-ups only)."""
        if not self.backfill.follows_comments(resolved) or resolved.channel.linked_chat_id is None:
            return
        target = resolved.target
        try:
            group = await self.pool.run(target.key, lambda c: threads.linked_chat(c, target))
        except TgwatchError as exc:
            self.counts["errors"] += 1
            await self.ingest.record_error(exc, run_id=self.run_id, record=f"{target.key}:discussion")
            return
        if group is None:
            return
        self.discussions[int(group.id)] = Discussion(resolved, channel_ref(group))

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
        self._thread_walks = self._lookups = 0  # a resync opens the next window of the live caps
        for channel_id in list(self.watched):
            self.signal(channel_id)
        await self.drain()

    def signal(self, channel_id: int) -> None:
        """Ask for a catch-up of one channel; coalesced with one already running."""
        self._again.add(channel_id)
        self._wake(channel_id)

    def signal_thread(self, channel_id: int, root: int, newest: int) -> None:
        """Ask for a walk of the comment thread under ``root`` (the group's copy of a post) of a channel."""
        due = self._roots_due.setdefault(channel_id, {})
        due[root] = max(newest, due.get(root, 0))
        self._wake(channel_id)

    def _wake(self, channel_id: int) -> None:
        if channel_id not in self._running:
            self._running[channel_id] = asyncio.ensure_future(self._catch_up_loop(channel_id))

    async def _catch_up_loop(self, channel_id: int) -> None:
        """One channel's work, one piece at a time: history catch-ups, then the threads signalled."""
        try:
            while channel_id in self._again or self._roots_due.get(channel_id):
                if channel_id in self._again:
                    self._again.discard(channel_id)
                    self.counts["catch_ups"] += 1
                    try:
                        await self.backfill.catch_up(self.watched[channel_id])
                    except TgwatchError as exc:
                        self.counts["errors"] += 1
                        log.error("catch-up failed", channel=f"id{channel_id}", error=exc.message, kind=exc.kind)
                        await self.ingest.record_error(exc, run_id=self.run_id, record=f"id{channel_id}")
                        self._roots_due.pop(channel_id, None)  # the next resync's catch-up reads them
                        return
                due = self._roots_due.pop(channel_id, {})
                if due:
                    await self._walk_threads(channel_id, due)
        finally:
            self._running.pop(channel_id, None)

    async def _walk_threads(self, channel_id: int, due: dict[int, int]) -> None:
        resolved = self.watched[channel_id]
        disc = next((d for d in self.discussions.values() if d.channel is resolved), None)
        if disc is None or disc.group.tg_id is None:
            return
        deferred: dict[str, int] = {}
        for i, (root, newest) in enumerate(sorted(due.items())):
            try:
                post = await self._post_of(disc, root)
            except LookupsCapped as exc:  # recorded once; the resync's catch-up reads the newest posts' threads
                self.counts["comments_deferred"] += len(due) - i
                await self.ingest.record_error(exc, run_id=self.run_id, record=f"{disc.group.natural_key()}")
                break
            except TgwatchError as exc:
                self.counts["errors"] += 1
                await self.ingest.record_error(exc, run_id=self.run_id, record=f"{disc.group.natural_key()}/{root}")
                continue
            if post is None:
                continue  # a reply to a plain group message: not a comment thread
            if self._thread_walks >= self.backfill.max_threads:
                deferred[str(post)] = newest  # over this window's cap: the resync's catch-up reads it
                continue
            self._thread_walks += 1
            self.counts["thread_walks"] += 1
            try:
                await self.backfill.catch_up_thread(resolved, disc.group, post, newest)
            except TgwatchError as exc:  # a store problem: the thread's checkpoint is unchanged
                self.counts["errors"] += 1
                log.error("comment thread not read", channel=f"id{channel_id}", post=post, error=exc.message)
                await self.ingest.record_error(exc, run_id=self.run_id, record=f"id{channel_id}/{post}")
        if deferred:
            self.counts["comments_deferred"] += len(deferred)
            log.warning("live comment threads capped until the next resync", channel=f"id{channel_id}",
                        left=len(deferred))  # fmt: skip
            await self.backfill.keep_pending(resolved, deferred, BackfillResult(f"id{channel_id}", resolved.stream))

    async def _post_of(self, disc: Discussion, root: int) -> int | None:
        """The channel post whose thread ``root`` is (None: ``root`` is no copy of a post of it)."""
        group_id = int(disc.group.tg_id or 0)
        if (group_id, root) in self._posts:
            return self._posts[(group_id, root)]
        if self._lookups >= MAX_ROOT_LOOKUPS:
            raise LookupsCapped(f"more than {MAX_ROOT_LOOKUPS} thread roots to look up before the next resync")
        self._lookups += 1
        group = Target(username=disc.group.username, tg_id=disc.group.tg_id)

        async def fetch(client: TelegramClient) -> Any:
            got = await client.get_messages(await input_peer(client, group), ids=[root])
            return got[0] if got else None

        message = await self.pool.run(group.key, fetch)
        post = _copied_post(message, disc.channel) if message is not None else None
        self._remember(group_id, root, post)
        return post

    def _remember(self, group_id: int, root: int, post: int | None) -> None:
        if len(self._posts) >= MAX_ROOTS_CACHED:
            self._posts.clear()
        self._posts[(group_id, root)] = post

    # --- handlers -------------------------------------------------------------------------------

    def _watched(self, message: Any) -> Resolved | None:
        channel_id = peer_channel_id(message)
        return self.watched.get(channel_id) if channel_id is not None else None

    def _discussion(self, message: Any) -> Discussion | None:
        channel_id = peer_channel_id(message)
        return self.discussions.get(channel_id) if channel_id is not None else None

    async def _on_new(self, event: events.NewMessage.Event) -> None:
        resolved = self._watched(event.message)
        if resolved is not None and resolved.ref.tg_id is not None:
            self.counts["new_signals"] += 1
            self.signal(resolved.ref.tg_id)
            return
        disc = self._discussion(event.message)
        if disc is None or disc.channel.ref.tg_id is None:
            return
        message = event.message
        post = _copied_post(message, disc.channel)
        if post is not None:  # the group's copy of a new post: the root of its future comments
            self._remember(int(disc.group.tg_id or 0), int(message.id), post)
            return
        root = thread_root_of(message)
        if root is not None:
            self.counts["comment_signals"] += 1
            self.signal_thread(disc.channel.ref.tg_id, root, int(message.id))

    async def _on_edit(self, event: events.MessageEdited.Event) -> None:
        message = event.message
        resolved = self._watched(message)
        if resolved is None:
            disc = self._discussion(message)
            if disc is not None:
                await self._on_comment_edit(disc, message)
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

    async def _on_comment_edit(self, disc: Discussion, message: Any) -> None:
        """An edited comment (or the group's copy of an edited post) with its thread root."""
        group_id = int(disc.group.tg_id or 0)
        root = thread_root_of(message)
        if root is None and _copied_post(message, disc.channel) is not None:
            root = int(message.id)  # the copy itself: stored as its own thread's root, as backfill does
        if root is None:
            return
        try:
            if await self._post_of(disc, root) is None:
                return  # not in a comment thread of the channel
            self.counts["edits"] += 1
            records = convert_messages([message], disc.group, thread_root=root, request="updateEditChannelMessage",
                                       web_base=self.backfill.web_base)  # fmt: skip
            await self.ingest.submit(records, run_id=self.run_id)
        except TgwatchError as exc:
            self.counts["errors"] += 1
            log.error("comment edit not stored", channel=f"id{group_id}", msg_id=message.id, error=exc.message)
            await self.ingest.record_error(exc, run_id=self.run_id, record=f"id{group_id}/{message.id}")

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
        disc = self.discussions.get(channel_id) if channel_id is not None else None
        ref = resolved.ref if resolved is not None else disc.group if disc is not None else None
        if ref is None:
            return  # deletions outside channels carry no chat id: nothing to attach them to
        self.counts["deletions"] += len(event.deleted_ids)
        # in a discussion group: ingest marks the stored comments; ids it never stored change nothing
        deletion = Deletion(ref=ref, msg_ids=list(event.deleted_ids), source=Source.MTPROTO, seen_at=utcnow())
        try:
            await self.ingest.submit([deletion], run_id=self.run_id)
        except TgwatchError as exc:
            self.counts["errors"] += 1
            log.error("deletion not stored", channel=ref.natural_key(), error=exc.message)


class LookupsCapped(SourceError):
    """Too many thread roots to look up before the next resync: the comment waits for the resync."""

    kind = "live_comments_capped"


def thread_root_of(message: Any) -> int | None:
    """The thread a group message answers: the reply header's top id, else the message it replies to."""
    reply = getattr(message, "reply_to", None)
    if reply is None or getattr(reply, "forum_topic", False):
        return None
    top = getattr(reply, "reply_to_top_id", None) or getattr(reply, "reply_to_msg_id", None)
    return int(top) if top else None


def _copied_post(message: Any, channel: Resolved) -> int | None:
    """The post id when ``message`` is the discussion group's copy of a post of ``channel``."""
    fwd = getattr(message, "fwd_from", None)
    source = getattr(fwd, "from_id", None) if fwd is not None else None
    post = getattr(fwd, "channel_post", None) if fwd is not None else None
    if isinstance(source, types.PeerChannel) and source.channel_id == channel.ref.tg_id and post:
        return int(post)
    return None


async def _disconnected(client: TelegramClient) -> None:
    await client.disconnected
