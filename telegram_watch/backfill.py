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

Beyond the history (on by default, ``comments``/``topics``/``bots`` switch them off): a channel's
comments are read thread by thread, each with its own checkpoint (``threads``); a forum's topic list is
kept on its channel record; bots named in buttons and links are tracked (``bots``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from telethon import TelegramClient
from telethon.tl import types

from foundation.contracts import IngestDoor, IngestRecord, IngestResult
from foundation.errors import NotAuthorized, RateLimited, SourceError
from foundation.logs import get_logger
from foundation.models import ChannelRef, ChannelState, Checkpoint, utcnow
from telegram_watch import threads
from telegram_watch.bots import bots_named_in, track_bots
from telegram_watch.convert import (
    DEFAULT_WEB_BASE,
    channel_ref,
    convert_channel,
    convert_messages,
    split_incomplete_tail,
    unavailable_channel,
)
from telegram_watch.entities import Resolved, Target, input_peer, resolve
from telegram_watch.errors import TelegramDenied, TelegramNotFound
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

PAGE_SIZE = 100  # the most one getHistory request returns
#: comment threads walked per run at most: a channel with thousands of commented posts (or a hostile
#: one inflating its reply counters) cannot turn one run into thousands of getReplies walks; the rest
#: stay pending in the checkpoint, newest posts first, for the next runs
MAX_THREADS_PER_RUN = 50
#: messages of one comment thread read per run at most: the rest next run, from the thread's checkpoint
MAX_THREAD_MESSAGES = 2000
BOTS_PENDING = "bots_pending"  # history checkpoint: bots named but not tracked yet (over a run's cap)


@dataclass
class BackfillResult:
    channel: str
    stream: str
    fetched: int = 0
    batches: int = 0
    complete: bool = False
    state: str = "ok"
    stored: IngestResult = field(default_factory=IngestResult)
    comments: int = 0  # comments fetched (every thread walked in this run)
    threads: int = 0  # comment threads walked
    threads_cut: int = 0  # comment threads left unfinished at ``max_thread_messages`` (read on)
    threads_dropped: int = 0  # commented posts given up from the pending list (over ``max_pending``)
    topics: int = 0  # forum topics listed
    bots: list[str] = field(default_factory=list)  # bots newly tracked
    bot_names: set[str] = field(default_factory=set)  # bots named in what was read


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
        comments: bool = True,
        topics: bool = True,
        bots: bool = True,
        recent_posts: int = PAGE_SIZE,
        max_threads: int = MAX_THREADS_PER_RUN,
        max_thread_messages: int = MAX_THREAD_MESSAGES,
        max_pending: int = threads.MAX_PENDING,
        max_topic_pages: int = threads.MAX_TOPIC_PAGES,
    ) -> None:
        self.max_threads = max_threads
        self.max_thread_messages = max_thread_messages
        self.max_pending = max_pending
        self.max_topic_pages = max_topic_pages
        #: follow a channel's comments / a forum's topic list / the bots its messages point at
        self.comments = comments
        self.topics = topics
        self.bots = bots
        #: the newest posts looked at again on every run for new comments
        self.recent_posts = min(recent_posts, PAGE_SIZE)
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
        await self.require_private_read(resolved)
        with_topics = await self.with_topics(resolved, result)  # a private forum's topics only past the gate
        if with_topics is not resolved:
            resolved = with_topics
            result.stored.add(await self.ingest.submit([resolved.channel], run_id=self.run_id))
        walk = _Walk(self, self._history(resolved), result, limit=limit, since=since)
        try:
            await walk.whole()
            await self._beyond_history(resolved, result)
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

    async def require_private_read(self, resolved: Resolved) -> None:
        """Refuse (``NotAuthorized`` from the gate) before anything of a private chat is read.

        A chat without a public username is private: its history, topics, comments and stories are
        read only under a covering authorization. Every path that reads a chat (``run``, the
        watcher's start, stories) asks here first."""
        if resolved.ok and resolved.ref.username is None:
            await ask_private_gate(self.private_gate, resolved, self.pool)

    async def catch_up(self, resolved: Resolved) -> BackfillResult:
        """Read everything newer than the checkpoint (after a disconnect, or on a new-message signal)."""
        result = BackfillResult(channel=str(resolved.ref.natural_key()), stream=resolved.stream)
        walk = _Walk(self, self._history(resolved), result, limit=None, since=None)
        try:
            await walk.top()
        finally:
            await walk.settle()
        await self._beyond_history(resolved, result)
        return result

    async def catch_up_thread(
        self, resolved: Resolved, group_ref: ChannelRef, post_id: int, newest: int
    ) -> BackfillResult:
        """Read one comment thread past its checkpoint (a live comment's signal), then its bots.

        The same walk as a run's (``_thread``: its checkpoint, ``max_thread_messages``); a thread cut
        or failed stays in the history checkpoint's pending list, so the next catch-up reads it."""
        result = BackfillResult(channel=str(resolved.ref.natural_key()), stream=resolved.stream)
        post = str(post_id)
        try:
            state = await self._thread(resolved, group_ref, post_id, newest, result)
        except (TelegramDenied, TelegramNotFound, RateLimited, SourceError) as exc:
            await self.ingest.record_error(exc, run_id=self.run_id, record=f"{resolved.ref.natural_key()}/{post}")
            if not isinstance(exc, TelegramNotFound):
                await self.keep_pending(resolved, {post: newest}, result)
            return result
        if state == CUT:
            result.threads_cut += 1
            await self.keep_pending(resolved, {post: newest}, result)
        else:
            cp = await self.ingest.checkpoint(resolved.stream)
            if cp is not None and post in (cp.extra.get(threads.PENDING) or {}):
                await self.ingest.submit([], checkpoint=threads.without_pending(cp, post), run_id=self.run_id)
        if self.bots:
            await self._bots(resolved, result)
        return result

    # --- beyond the history: comments, topics, bots -------------------------------------------

    def follows_comments(self, resolved: Resolved) -> bool:
        ch = resolved.channel
        return self.comments and ch.kind == "channel" and ch.linked_chat_id is not None

    def _history(self, resolved: Resolved) -> Feed:
        return history_feed(resolved, collect_threads=self.follows_comments(resolved))

    async def with_topics(self, resolved: Resolved, result: BackfillResult | None = None) -> Resolved:
        """A forum's topic list on its channel record (a failure is recorded; the history is still read)."""
        if not (resolved.ok and self.topics and resolved.channel.forum):
            return resolved
        pages = self.max_topic_pages
        try:
            listed = await self.pool.run(
                resolved.target.key, lambda c: threads.fetch_topics(c, resolved.target, max_pages=pages)
            )
        except SourceError as exc:
            await self.ingest.record_error(exc, run_id=self.run_id, record=f"{resolved.ref.natural_key()}:topics")
            return resolved
        if result is not None:
            result.topics = len(listed.topics)
        update: dict[str, Any] = {"topics": listed.topics}
        if not listed.ended:
            notice = f"topics: the list did not end after {pages} pages; the first {len(listed.topics)} kept"
            update["notices"] = [*resolved.channel.notices, notice]
            log.warning("forum topic list cut", channel=str(resolved.ref.natural_key()), kept=len(listed.topics))
        channel = resolved.channel.model_copy(update=update)
        return Resolved(resolved.target, resolved.ref, channel)

    async def _beyond_history(self, resolved: Resolved, result: BackfillResult) -> None:
        if self.follows_comments(resolved):
            await self._comments(resolved, result)
        if self.bots:
            await self._bots(resolved, result)

    async def _bots(self, resolved: Resolved, result: BackfillResult) -> None:
        """Track the bots named in what was read, and those a capped earlier run left (kept in the checkpoint)."""
        cp = await self.ingest.checkpoint(resolved.stream)
        left_before = list(cp.extra.get(BOTS_PENDING) or []) if cp else []
        names = result.bot_names | set(left_before)
        if not names:
            return
        tracked, left = await track_bots(self.pool, self.ingest, names, run_id=self.run_id)
        result.bots.extend(str(b.ref.username) for b in tracked)
        if cp is not None and sorted(left) != sorted(left_before):
            cp = await self.ingest.checkpoint(resolved.stream) or cp
            kept = cp.model_copy(update={"extra": {**cp.extra, BOTS_PENDING: sorted(left)}})
            await self.ingest.submit([], checkpoint=kept, run_id=self.run_id)

    async def _comments(self, resolved: Resolved, result: BackfillResult) -> None:
        """Walk every comment thread that has comments past its checkpoint (see ``threads``)."""
        key, target = resolved.target.key, resolved.target
        try:
            group = await self.pool.run(key, lambda c: threads.linked_chat(c, target))
            if group is None:
                return
            group_ref = channel_ref(group)
            header = convert_channel(group).model_copy(update={"linked_chat_id": resolved.ref.tg_id})
            if isinstance(group, types.ChannelForbidden):  # a private group: known by id and title only
                header = header.model_copy(update={"kind": "megagroup", "raw": None})
            result.stored.add(await self.ingest.submit([header], run_id=self.run_id))
            recent = await self.pool.run(
                key, lambda c: fetch_page(c, target, offset_id=0, floor=0, limit=self.recent_posts)
            )
        except (TelegramDenied, TelegramNotFound):
            raise
        except SourceError as exc:
            await self.ingest.record_error(exc, run_id=self.run_id, record=f"{resolved.ref.natural_key()}:comments")
            return
        cp = await self.ingest.checkpoint(resolved.stream) or Checkpoint(stream=resolved.stream)
        stored_pending = dict(cp.extra.get(threads.PENDING) or {})
        todo = {**threads.commented_posts(recent)}
        for post, newest in stored_pending.items():
            todo[post] = max(int(newest), todo.get(post, 0))
        ordered = sorted(todo, key=int, reverse=True)
        walked = 0
        for i, post in enumerate(ordered):
            where = f"{resolved.ref.natural_key()}/{post}"
            if walked >= self.max_threads:
                left = {p: todo[p] for p in ordered[i:] if p not in stored_pending}
                await self.keep_pending(resolved, left, result)
                log.warning("comment threads capped for this run", channel=result.channel, left=len(ordered) - i)
                return
            try:
                state = await self._thread(resolved, group_ref, int(post), todo[post], result)
                walked += state != IDLE
            except RateLimited as exc:  # every account waits: the rest stay pending for the next run
                await self.ingest.record_error(exc, run_id=self.run_id, record=where)
                return
            except TelegramNotFound as exc:  # the post or its thread is gone: nothing left to read
                await self.ingest.record_error(exc, run_id=self.run_id, record=where)
            except SourceError as exc:  # this thread only: recorded, kept pending, the others go on
                log.warning("comment thread not read", channel=result.channel, post=post, error=exc.message)
                await self.ingest.record_error(exc, run_id=self.run_id, record=where)
                if post not in stored_pending:  # keep it for the next run even when it was not noted yet
                    await self.keep_pending(resolved, {post: todo[post]}, result)
                continue
            if state == CUT:  # read on next run, from the thread's checkpoint
                result.threads_cut += 1
                if post not in stored_pending:
                    await self.keep_pending(resolved, {post: todo[post]}, result)
                continue
            if post in stored_pending:
                cp = await self.ingest.checkpoint(resolved.stream) or cp
                await self.ingest.submit([], checkpoint=threads.without_pending(cp, post), run_id=self.run_id)

    async def keep_pending(self, resolved: Resolved, posts: dict[str, int], result: BackfillResult) -> None:
        """Note threads left unread in the history checkpoint (read by later runs and catch-ups)."""
        if not posts:
            return
        cp = await self.ingest.checkpoint(resolved.stream) or Checkpoint(stream=resolved.stream)
        pending = {**(cp.extra.get(threads.PENDING) or {}), **posts}
        kept = threads.with_pending(cp, pending, limit=self.max_pending)
        _count_dropped(result, cp, kept)
        await self.ingest.submit([], checkpoint=kept, run_id=self.run_id)

    async def _thread(
        self, resolved: Resolved, group_ref: ChannelRef, post_id: int, newest: int, result: BackfillResult
    ) -> str:
        """Walk one thread past its checkpoint, at most ``max_thread_messages`` of it.

        ``IDLE`` when there was nothing new (no request sent), ``CUT`` when the limit stopped the walk
        (the thread's checkpoint says where the next run goes on), ``DONE`` otherwise."""
        stream = threads.thread_stream(resolved.ref.tg_id, post_id)
        cp = await self.ingest.checkpoint(stream)
        if cp is not None and cp.walk_top is None and cp.complete and (cp.newest_id or 0) >= newest:
            return IDLE  # nothing new under this post
        target = resolved.target
        if cp is None:  # first visit: the group's copy of the post, the root every comment answers
            roots = await self.pool.run(target.key, lambda c: threads.fetch_discussion_root(c, target, post_id))
            if not roots:
                return DONE
            root_id = min(m.id for m in roots)
            records = convert_messages(
                roots, group_ref, web_base=self.web_base, thread_root=root_id, request="messages.getDiscussionMessage"
            )
            result.stored.add(await self.ingest.submit(records, run_id=self.run_id))
            cp = Checkpoint(stream=stream, extra={"root": root_id, "post": post_id})
            await self.ingest.submit([], checkpoint=cp, run_id=self.run_id)
        root = int(cp.extra.get("root") or 0) or None

        async def fetch(client: TelegramClient, offset_id: int, floor: int, limit: int) -> list[Any]:
            return await threads.fetch_replies(client, target, post_id, offset_id=offset_id, floor=floor, limit=limit)

        feed = Feed(stream, group_ref, target.key, fetch, thread_root=root, request="messages.getReplies")
        sub = BackfillResult(channel=group_ref.natural_key(), stream=stream)
        walk = _Walk(self, feed, sub, limit=self.max_thread_messages, since=None)
        try:
            await walk.whole()
        finally:
            result.threads += 1
            result.comments += sub.fetched
            result.stored.add(sub.stored)
            result.bot_names.update(sub.bot_names)
        if walk.stopped:
            log.warning("comment thread cut for this run", channel=result.channel, post=post_id, read=sub.fetched)
            return CUT
        return DONE


IDLE, DONE, CUT = "idle", "done", "cut"  # what ``Backfill._thread`` did with one thread


def _count_dropped(result: BackfillResult, before: Checkpoint, after: Checkpoint) -> None:
    """Count (and log) the commented posts a capped pending list gave up."""
    lost = threads.dropped(after) - threads.dropped(before)
    if lost > 0:
        result.threads_dropped += lost
        log.warning("pending comment threads capped", channel=result.channel, dropped=lost)


def _header_records(requested: Target, resolved: Resolved) -> list[IngestRecord]:
    """The channel record; under the requested name first when it was renamed, so both names stay aliases."""
    records: list[IngestRecord] = []
    if resolved.ok and requested.username and requested.username != resolved.ref.username:
        old = resolved.ref.model_copy(update={"username": requested.username})
        records.append(resolved.channel.model_copy(update={"ref": old}))
    records.append(resolved.channel)
    return records


#: ``fetch(client, offset_id, floor, limit)``: one page of a feed, newest first
PageFetch = Callable[[TelegramClient, int, int, int], Awaitable[list[Any]]]


@dataclass(frozen=True)
class Feed:
    """What one walk reads: a channel's history, or one reply thread of it (comments).

    ``stream`` names its checkpoint, ``ref`` the chat its messages are stored under, ``pool_key``
    the per-channel bookkeeping in the pool; ``thread_root`` marks every message as part of that
    thread; ``collect_threads`` makes the walk note posts with comments in its checkpoint.
    """

    stream: str
    ref: ChannelRef
    pool_key: str
    fetch: PageFetch
    thread_root: int | None = None
    request: str = "messages.getHistory"
    collect_threads: bool = False


def history_feed(resolved: Resolved, *, collect_threads: bool = False) -> Feed:
    async def fetch(client: TelegramClient, offset_id: int, floor: int, limit: int) -> list[Any]:
        return await fetch_page(client, resolved.target, offset_id=offset_id, floor=floor, limit=limit)

    return Feed(resolved.stream, resolved.ref, resolved.target.key, fetch, collect_threads=collect_threads)


async def ask_private_gate(gate: PrivateGate | None, resolved: Resolved, pool: AccountPool) -> None:
    """Ask ``gate`` before a private chat is read; without a gate the read is refused (fail closed):
    a reader built without one may read public chats only."""
    key = resolved.ref.natural_key()
    if gate is None:
        raise NotAuthorized(f"{key} is a private chat and this reader has no authorization gate")
    await gate(key, [m.name for m in pool.candidates(None)])


class _Walk:
    """One run's walks over one feed, sharing the limit/since budget."""

    def __init__(
        self,
        owner: Backfill,
        resolved: Resolved | Feed,
        result: BackfillResult,
        *,
        limit: int | None,
        since: datetime | None,
    ) -> None:
        self.o = owner
        self.feed = resolved if isinstance(resolved, Feed) else history_feed(resolved)
        self.result = result
        self.remaining = limit
        self.since = since
        self.stopped = False
        self._cp: Checkpoint | None = None
        self._inflight: asyncio.Task[None] | None = None

    async def whole(self) -> None:
        """The newest messages first, then down the history unless the budget stopped it; the last
        batch is always stored and checkpointed, also when a request failed."""
        try:
            await self.top()
            if not self.stopped:
                await self.down()
        finally:
            await self.settle()

    async def _checkpoint(self) -> Checkpoint:
        """The checkpoint as it will be once the batch in flight is stored (this walk is its only writer)."""
        if self._cp is None:
            self._cp = await self.o.ingest.checkpoint(self.feed.stream) or Checkpoint(stream=self.feed.stream)
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
            page = await self.o.pool.run(self.feed.pool_key, partial(self._page, offset_id, floor, want))
            self.result.fetched += len(page)
            ended = len(page) < want
            if self.since is not None:
                kept = [m for m in page if m.date is None or m.date >= self.since]
                if len(kept) < len(page):
                    page, ended, self.stopped = kept, False, True
            if self.remaining is not None:
                self.remaining -= len(page)
            if page:
                lowest = min(m.id for m in page)
                if offset_id and lowest >= offset_id and not ended:
                    # a page below ``offset_id`` holding nothing below it: following it would never end
                    raise SourceError(
                        f"{self.feed.request} did not go down: asked below {offset_id}, got ids from {lowest}"
                    )
                offset_id = lowest
            yield page, ended
            if ended or self.stopped or not page:
                return

    async def _page(self, offset_id: int, floor: int, limit: int, client: TelegramClient) -> list[Any]:
        return await self.feed.fetch(client, offset_id, floor, limit)

    async def _submit(self, msgs: Sequence[Any], checkpoint: Checkpoint) -> None:
        """Convert now, store in the background while the next pages are fetched.

        Batches are still stored strictly one after the other (each waits for the one before), so
        every checkpoint is written after its own records and after all earlier batches.
        """
        feed = self.feed
        records = convert_messages(
            msgs, feed.ref, web_base=self.o.web_base, thread_root=feed.thread_root, request=feed.request
        )
        await self.settle()
        if feed.collect_threads:
            noted = threads.note_threads(checkpoint, msgs, limit=self.o.max_pending)
            _count_dropped(self.result, checkpoint, noted)
            checkpoint = noted
        if self.o.bots:
            self.result.bot_names.update(bots_named_in(records))
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
