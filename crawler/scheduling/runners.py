"""Method → crawl function: what a worker calls to crawl one target once.

``web`` is ``crawler.crawl_web.crawl_channel`` (spider → ingest → checkpoint → run record);
``mtproto`` is ``telegram_watch.backfill.Backfill`` over the account pool. Both record a ``runs``
document (target, task, due, worker, start, end, pages, messages new/updated, media, errors) and
count the Prometheus metrics; an MTProto run also counts comments, threads, topics and bots (the bots
named in what it stored are proposed as web targets by ingest's snowball stage, for review) and says on
the target when MTProto cannot read it. A cancelled crawl (shutdown, lost lease) is finished as
``abandoned``: checkpoints are written by ingest after every stored batch, so the next run resumes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler.crawl_web import StoreRunRecorder
from crawler.scheduling.plan import EXCHANGE_METHOD, TAKEDOWN_METHOD
from crawler.scheduling.preview_switch import UNREACHABLE, PreviewOutcome, settle_preview_state
from crawler.scheduling.tasks import TaskSpec
from foundation import metrics
from foundation.errors import RateLimited, TgwatchError
from foundation.logs import get_logger
from foundation.models import ChannelState, utcnow
from storage.repos.runs import RunRepo

if TYPE_CHECKING:
    from config import Settings
    from crawler.ingest import Ingest
    from storage.client import Store
    from telegram_watch.pool import AccountPool

log = get_logger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    run_id: str | None
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "counts": self.counts, "errors": self.errors}


@dataclass
class RunContext:
    """What runners share in one process: settings, store, ingest, and the MTProto pool (opened on
    first use, closed by ``aclose``)."""

    settings: Settings
    store: Store
    ingest: Ingest
    consumer: str = "local"
    web_base: str | None = None
    scrapy_overrides: dict[str, Any] | None = None
    #: the MTProto account pool; opened from the stored accounts on first use unless given
    account_pool: AccountPool | None = None

    async def pool(self) -> AccountPool:
        if self.account_pool is None:
            self.account_pool = await self.load_pool()
        return self.account_pool

    async def load_pool(self) -> AccountPool:
        """A new pool over the stored accounts (the caller closes it; ``pool`` keeps one for the process)."""
        from storage.repos.accounts import AccountRepo
        from telegram_watch.accounts import Accounts
        from telegram_watch.client import real_client_factory
        from telegram_watch.crypto import SecretBox
        from telegram_watch.pool import AccountPool

        accounts = Accounts(AccountRepo(self.store), SecretBox.from_settings(self.settings))
        return await AccountPool.load(
            accounts,
            real_client_factory(self.settings),
            pacing=self.settings.telegram.request_pacing_seconds,
            lease_seconds=self.settings.telegram.lease_seconds,
        )

    async def aclose(self) -> None:
        try:
            if self.account_pool is not None:
                pool, self.account_pool = self.account_pool, None
                await pool.close()
        finally:
            stop_twisted_threads()


def stop_twisted_threads() -> None:
    """Stop the Twisted reactor's thread pool (Scrapy's DNS lookups start it). Its threads are not
    daemon threads and the reactor is never ``run()``/``stop()``-ped here (asyncio drives it), so
    without this a finished ``tgwatch worker`` would never exit and be SIGKILLed at shutdown."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    if getattr(reactor, "threadpool", None) is not None:
        reactor._stopThreadPool()  # Twisted's own shutdown trigger; resets the pool


Runner = Callable[[RunContext, TaskSpec], Awaitable[RunOutcome]]


class MeteredRecorder(StoreRunRecorder):
    """The crawl driver's run recorder, plus task details on the run and Prometheus counting."""

    def __init__(self, store: Store, task: TaskSpec, consumer: str, method: str) -> None:
        super().__init__(store)
        self.task, self.consumer, self.method = task, consumer, method
        self.counts: dict[str, int] = {}
        self.error_count = 0

    def run_fields(self) -> dict[str, Any]:
        return {
            "method": self.method, "task": self.task.task_id, "due": self.task.due,
            "attempt": self.task.attempt, "worker": self.consumer,
        }  # fmt: skip

    async def add(self, counts: Mapping[str, int]) -> None:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + int(v)
        metrics.count_page(self.method, int(counts.get("pages", 0)))
        metrics.count_messages(self.method, int(counts.get("new", 0)), int(counts.get("updated", 0)))
        if counts.get("media_refs"):
            metrics.MEDIA_REFS.labels(self.method).inc(int(counts["media_refs"]))
        await super().add(counts)

    async def error(self, err: dict[str, object]) -> None:
        self.error_count += 1
        kind = str(err.get("kind", "error"))
        metrics.count_error(kind)
        if kind == "rate_limited":
            retry = err.get("retry_after")
            metrics.count_flood_wait(self.method, float(retry) if isinstance(retry, int | float) else 0.0)
        await super().error(err)


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


async def _abandon(store: Store, run_id: str | None) -> None:
    """Mark a cancelled run ``abandoned`` (shielded: we are being cancelled)."""
    if run_id is not None:
        with suppress(Exception):
            await asyncio.shield(RunRepo(store).finish(run_id, "abandoned"))


async def run_web(ctx: RunContext, task: TaskSpec) -> RunOutcome:
    from crawler.crawl_web import crawl_channel

    recorder = MeteredRecorder(ctx.store, task, ctx.consumer, "web")
    started = time.monotonic()
    status = "failed"
    metrics.RUNNING.labels("web").inc()
    try:
        summary = await crawl_channel(
            ctx.settings, ctx.ingest, task.target, base_url=ctx.web_base, recorder=recorder,
            scrapy_overrides=ctx.scrapy_overrides,
        )  # fmt: skip
        if _cancel_requested():  # cancelled while the crawl was being summed up: honour it here
            raise asyncio.CancelledError
        status = summary.status
        outcome = await _settle_preview(ctx, task, summary.state, summary.state_reason, recorder.run_id)
        if outcome is not None and outcome.action == UNREACHABLE:
            status = UNREACHABLE
        return RunOutcome(recorder.run_id, status, dict(recorder.counts), recorder.error_count)
    except asyncio.CancelledError:
        status = "abandoned"  # spiders.runner.run_spider has stopped the spider
        await _abandon(ctx.store, recorder.run_id)
        raise
    finally:
        metrics.RUNNING.labels("web").dec()
        metrics.observe_run("web", status, time.monotonic() - started)


async def _settle_preview(
    ctx: RunContext, task: TaskSpec, state: ChannelState | None, reason: str | None, run_id: str | None
) -> PreviewOutcome | None:
    """A previewless target moves to MTProto or is marked unreachable; a store hiccup here is logged,
    it does not undo a crawl whose pages are stored."""
    try:
        outcome = await settle_preview_state(
            ctx.settings, ctx.store, task.target, state, reason, run_id, probe=lambda: _mtproto_probe(ctx, task)
        )
    except TgwatchError as exc:
        log.warning("preview state not settled", target=task.target, error=exc.message)
        return None
    if outcome is not None:
        log.info("web preview unavailable", target=task.target, action=outcome.action, reason=outcome.reason)
    return outcome


def _private_gate(ctx: RunContext, run_id: str | None) -> Any:
    """The private-read gate of ``tgwatch backfill``: a scheduled private chat is read only under an
    authorization naming it (else ``NotAuthorized``, recorded as the run's error)."""
    from crawler.evidence.wiring import private_read_gate

    return private_read_gate(ctx.store, ctx.settings, run_id)


async def _mtproto_probe(ctx: RunContext, task: TaskSpec) -> str | None:
    """Can an account of the pool read the target? None when it can, else the MTProto error. A
    previewless target is switched only when it can (one resolve: ``channels.getFullChannel``)."""
    from telegram_watch.entities import Target, resolve

    # a web worker has no pool of its own: it opens one for this read and closes it (giving the leases back)
    pool = ctx.account_pool
    try:
        if pool is None:
            pool = await ctx.load_pool()
            try:
                resolved = await resolve(pool, Target.parse(task.name))
            finally:
                await pool.close()
        else:
            resolved = await resolve(pool, Target.parse(task.name))
    except TgwatchError as exc:
        return f"MTProto cannot read it: {exc.message}"
    if not resolved.ok:
        why = resolved.channel.state_reason or "unavailable"
        return f"MTProto cannot read it: {resolved.channel.state} ({why})"
    return None


async def _settle_mtproto_reach(
    ctx: RunContext, task: TaskSpec, state: str, error: str | None, run_id: str | None
) -> None:
    """After an MTProto run: a target MTProto cannot read (the channel's state, or no account at all)
    is marked unreachable with why, so ``targets list`` shows it; a readable one has its mark cleared."""
    from storage.repos.targets import TargetRepo

    mark: dict[str, Any] | None = None
    if state != "ok" or error is not None:
        reason = f"MTProto cannot read it: {error or state}"
        mark = {"reason": reason, "state": state, "at": utcnow(), "run_id": run_id, "method": "mtproto"}
    try:
        await TargetRepo(ctx.store).mark_unreachable(task.target, mark)
    except TgwatchError as exc:
        log.warning("reach not recorded", target=task.target, error=exc.message)


async def _read_stories(ctx: RunContext, pool: AccountPool, task: TaskSpec, run_id: str) -> int:
    """The target's visible stories (``target_policy.mtproto_stories``); a failure is recorded, not raised."""
    from storage.repos.errors import ErrorRepo
    from telegram_watch.entities import Target
    from telegram_watch.stories import StoryReader

    gate = _private_gate(ctx, run_id)
    reader = StoryReader(pool, ctx.ingest, run_id=run_id, web_base=ctx.settings.telegram_web_base, private_gate=gate)
    try:  # ``read`` resolves, passes the private-read gate, then stores what is visible
        stored = await reader.read(Target.parse(task.name))
    except TgwatchError as exc:
        if exc.kind == "store":
            raise
        await ErrorRepo(ctx.store).record(exc, run_id=run_id)
        return 0
    return 0 if stored is None else stored.new + stored.updated + stored.unchanged


async def run_mtproto(ctx: RunContext, task: TaskSpec) -> RunOutcome:
    from foundation.errors import TgwatchError
    from telegram_watch.backfill import Backfill
    from telegram_watch.entities import Target

    runs = RunRepo(ctx.store)
    started = time.monotonic()
    status = "failed"
    metrics.RUNNING.labels("mtproto").inc()
    counts: dict[str, int] = {}
    errors = 0
    try:
        async with runs.record(
            task.target, "backfill", method="mtproto", task=task.task_id, due=task.due, attempt=task.attempt,
            worker=ctx.consumer,
        ) as run:  # fmt: skip
            run_id = run.id
            pool = await ctx.pool()
            floods_before = int(pool.stats.get("flood_waits", 0))
            seconds_before = int(pool.stats.get("flood_wait_seconds", 0))
            runner = Backfill(
                pool, ctx.ingest, batch_size=ctx.settings.ingest.batch_size, run_id=run_id,
                web_base=ctx.settings.telegram_web_base, private_gate=_private_gate(ctx, run_id),
            )  # fmt: skip
            policy = ctx.settings.target_policy
            try:
                result = await runner.run(Target.parse(task.name))
                status = "ok" if result.state == "ok" else result.state
                counts = {
                    "pages": result.batches, "messages": result.fetched, "new": result.stored.new,
                    "updated": result.stored.updated, "comments": result.comments, "threads": result.threads,
                    "topics": result.topics, "bots": len(result.bots),
                }  # fmt: skip
                if policy.mtproto_stories and status == "ok":
                    counts["stories"] = await _read_stories(ctx, pool, task, run_id)
                await runs.add(run_id, **counts)
                await _settle_mtproto_reach(ctx, task, result.state, None, run_id)
                metrics.count_page("mtproto", result.batches)
                metrics.count_messages("mtproto", result.stored.new, result.stored.updated)
            except TgwatchError as exc:  # source problems end the run, they do not fail the task
                from storage.repos.errors import ErrorRepo

                errors = 1
                metrics.count_error(exc.kind)
                await ErrorRepo(ctx.store).record(exc, run_id=run_id)
                await runs.error(run_id)
                if exc.kind == "store":
                    raise
                if not isinstance(exc, RateLimited):  # a flood wait passes; no account or a refusal does not
                    await _settle_mtproto_reach(ctx, task, "failed", exc.message, run_id)
            floods = int(pool.stats.get("flood_waits", 0)) - floods_before
            if floods > 0:
                metrics.FLOOD_WAITS.labels("mtproto").inc(floods)
                metrics.FLOOD_WAIT_SECONDS.labels("mtproto").inc(
                    max(0, int(pool.stats.get("flood_wait_seconds", 0)) - seconds_before)
                )
            run.status = status
        return RunOutcome(run_id, status, counts, errors)
    except asyncio.CancelledError:
        status = "abandoned"  # the run record says so too (``RunRepo.record``)
        raise
    finally:
        metrics.RUNNING.labels("mtproto").dec()
        metrics.observe_run("mtproto", status, time.monotonic() - started)


async def run_takedown_recheck(ctx: RunContext, task: TaskSpec) -> RunOutcome:
    """The recurring takedown re-check: every reported item due now, through the probe of its source."""
    from crawler.takedowns.run import build_probes, run_recheck

    probes = build_probes(ctx.settings, web_base=ctx.web_base, scrapy_overrides=ctx.scrapy_overrides, pool=ctx.pool)
    summary = await run_recheck(
        ctx.settings, ctx.store, probes, method="takedown", task=task.task_id, due=task.due, worker=ctx.consumer
    )
    return RunOutcome(None, "ok", {"checked": summary.checked, "changed": summary.changed})


async def run_exchange_sync(ctx: RunContext, task: TaskSpec) -> RunOutcome:
    """The recurring hash-exchange sync: every configured exchange, each its own ``exchange_sync`` run."""
    from crawler.hashing.exchanges import configured
    from crawler.media.exchange_sync import sync_exchange
    from crawler.pipeline import policy_hook

    counts = {"exchanges": 0, "added": 0, "withdrawn": 0, "failed": 0}
    async with policy_hook(ctx.store, ctx.settings) as hook:
        for exchange in configured(ctx.settings):
            result = await sync_exchange(ctx.store, ctx.settings, exchange, trigger="schedule", on_alert=hook)
            counts["exchanges"] += 1
            counts["added"] += result.added
            counts["withdrawn"] += result.withdrawn
            counts["failed"] += result.status != "ok"
    return RunOutcome(None, "ok" if not counts["failed"] else "failed", counts, counts["failed"])


#: the product runners; tests may pass another mapping to ``Worker`` but never replace these
RUNNERS: dict[str, Runner] = {"web": run_web, "mtproto": run_mtproto, TAKEDOWN_METHOD: run_takedown_recheck,
                              EXCHANGE_METHOD: run_exchange_sync}  # fmt: skip
