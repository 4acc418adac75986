"""``tgwatch worker``: claim crawl tasks with leases, keep the leases alive, run, settle.

* A task is leased for ``lease_seconds``; a heartbeat extends the lease every third of it while the
  crawl runs. A worker that dies (even ``kill -9``) stops extending, the lease expires, and the next
  ``claim`` by any worker takes the task again (``WorkQueue`` re-claims expired leases first).
* If the heartbeat finds the lease lost (expired and taken by someone else), the crawl is cancelled:
  two workers never keep crawling the same task.
* Stop (first SIGTERM): claim nothing more; crawls in flight get ``grace_seconds`` to finish, then
  are cancelled and their tasks given back (``nack``) so another worker picks them up soon; their
  runs end ``abandoned``. Checkpoints were written after every stored page, so nothing is redone
  except the page in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from crawler.scheduling.abandoned import reap_dead_runs
from crawler.scheduling.failures import raise_failure
from crawler.scheduling.runners import RUNNERS, RunContext, Runner, RunOutcome
from crawler.scheduling.tasks import CrawlTasks, TaskSpec
from foundation import metrics
from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger
from storage.repos.runs import RunRepo
from storage.workqueue import Lease, LeaseLost, UnknownJob

log = get_logger(__name__)


def consumer_name(prefix: str = "worker") -> str:
    """A name unique to this process: host, pid and a random suffix (pids repeat across hosts)."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerReport:
    claimed: int = 0
    acked: int = 0
    nacked: int = 0
    abandoned: int = 0
    lost: int = 0


class Worker:
    def __init__(
        self,
        ctx: RunContext,
        *,
        tasks: CrawlTasks | None = None,
        runners: Mapping[str, Runner] = RUNNERS,
        lease_seconds: float = 60.0,
        poll_seconds: float = 2.0,
        concurrency: int = 1,
        grace_seconds: float = 30.0,
    ) -> None:
        self.ctx = ctx
        self.consumer = ctx.consumer
        self.tasks = tasks or CrawlTasks(ctx.store)
        self.runners = dict(runners)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.concurrency = max(1, concurrency)
        self.grace_seconds = grace_seconds
        self.report = WorkerReport()
        self._active: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> WorkerReport:
        """Work until ``stop`` is set (or, with ``until_idle``, until no task is ready)."""
        log.info("worker started", worker=self.consumer, concurrency=self.concurrency)
        await reap_dead_runs(self.ctx.store)
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._active)
                leases: list[Lease] = []
                if free > 0:
                    try:
                        leases = await self.tasks.queue.claim(self.consumer, free, self.lease_seconds)
                    except StoreError as exc:
                        log.warning("claim failed, retrying", error=exc.message)
                    for lease in leases:
                        self.report.claimed += 1
                        metrics.count_task("claimed")
                        task = asyncio.create_task(self._work(lease), name=f"crawl {lease.job_id}")
                        self._active.add(task)
                        task.add_done_callback(self._active.discard)
                if until_idle and not leases and not self._active:
                    break
                if leases and len(self._active) < self.concurrency:
                    continue
                await self._wait(stop)
            await self._drain()
        except asyncio.CancelledError:
            await self._cancel_all()
            raise
        log.info("worker stopped", worker=self.consumer, **self.report.__dict__)
        return self.report

    async def _wait(self, stop: asyncio.Event) -> None:
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({stopper, *self._active}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()

    async def _drain(self) -> None:
        """Stop requested: let crawls in flight finish within the grace period, then abandon them."""
        if not self._active:
            return
        log.info("finishing crawls in flight", count=len(self._active), grace=self.grace_seconds)
        _, pending = await asyncio.wait(set(self._active), timeout=self.grace_seconds)
        if pending:
            await self._cancel_all()

    async def _cancel_all(self) -> None:
        tasks = set(self._active)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, lease: Lease) -> None:
        spec = TaskSpec.from_payload(lease.job_id, lease.payload, lease.attempt)
        if lease.attempt > 1:
            await self._close_orphan_runs(spec)
        runner = self.runners.get(spec.method)
        if runner is None:
            await self._settle_nack(lease, f"no runner for method {spec.method!r}")
            return
        crawl: asyncio.Task[RunOutcome] = asyncio.ensure_future(runner(self.ctx, spec))
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(lease, crawl, lost))
        try:
            outcome = await crawl
        except asyncio.CancelledError:
            if lost.is_set() and not _cancelling():
                self.report.lost += 1
                metrics.count_task("lease_lost")
                log.warning("lease lost, crawl cancelled", task=spec.task_id)
                return
            self.report.abandoned += 1
            metrics.count_task("abandoned")
            with contextlib.suppress(TgwatchError):
                await asyncio.shield(self.tasks.queue.nack(lease.job_id, lease.token, "abandoned at shutdown"))
            raise
        except Exception as exc:
            log.error("crawl task failed", task=spec.task_id, error=str(exc)[:500])
            await self._settle_nack(lease, f"{type(exc).__name__}: {exc}")
            return
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        try:
            await self.tasks.queue.ack(lease.job_id, lease.token, outcome.as_dict())
            self.report.acked += 1
            metrics.count_task("acked")
            log.info("crawl task done", task=spec.task_id, status=outcome.status, run=outcome.run_id)
            await raise_failure(self.ctx.store, spec, outcome.status)
        except (LeaseLost, UnknownJob) as exc:
            self.report.lost += 1
            log.warning("crawl finished after its lease was lost", task=spec.task_id, error=exc.message)

    async def _settle_nack(self, lease: Lease, error: str) -> None:
        try:
            state = await self.tasks.queue.nack(lease.job_id, lease.token, error)
            self.report.nacked += 1
            metrics.count_task("nacked" if state != "dead" else "dead")
            if state == "dead":
                spec = TaskSpec.from_payload(lease.job_id, lease.payload, lease.attempt)
                await raise_failure(self.ctx.store, spec, "dead", reason=error)
        except (LeaseLost, UnknownJob) as exc:
            log.warning("nack refused", task=lease.job_id, error=exc.message)

    async def _heartbeat(self, lease: Lease, crawl: asyncio.Task[RunOutcome], lost: asyncio.Event) -> None:
        interval = max(self.lease_seconds / 3.0, 0.2)
        while not crawl.done():
            await asyncio.sleep(interval)
            try:
                await self.tasks.queue.extend(lease.job_id, lease.token, self.lease_seconds)
            except (LeaseLost, UnknownJob):
                lost.set()
                crawl.cancel()
                return
            except StoreError as exc:  # keep crawling; the next beat may get through
                log.warning("lease extension failed", task=lease.job_id, error=exc.message)

    async def _close_orphan_runs(self, spec: TaskSpec) -> None:
        """Runs of an earlier attempt still marked running belong to a worker that died: close them."""
        runs = RunRepo(self.ctx.store)
        for run_id in await runs.running_for_task(spec.task_id):
            await runs.finish(run_id, "lost", lost_by="lease expired; task re-claimed")


def _cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())
