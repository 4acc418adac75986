"""The scheduling daemon: APScheduler timers that turn due times into crawl tasks.

One ``AsyncIOScheduler`` job per target, on the same event loop as the spiders, Telethon and the
HTTP server. Jobs only *create tasks* (cheap, idempotent); crawling is the workers' job, in this
process (single-process mode) or in ``tgwatch worker`` processes. Job defaults: ``coalesce`` (a
backlog of missed fire times collapses into one), ``max_instances=1``, and a misfire grace time.

Every ``sync_seconds`` the schedules are rebuilt (and crawl tasks done more than a week ago are
deleted: the queue holds work, ``runs`` holds the history) from configuration and the ``targets`` collection
(targets added by the CLI or by discovery appear without a restart); a new or changed schedule gets
a catch-up ``tick``: its latest due time is enqueued at once, which is idempotent thanks to the
task id, so restarting the daemon never doubles a crawl and a brand-new target is crawled now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from config.targets import TargetsConfig
from crawler.scheduling.abandoned import reap_dead_runs
from crawler.scheduling.plan import Schedule, build_schedules
from crawler.scheduling.tasks import CrawlTasks, Created
from foundation import metrics
from foundation.errors import TgwatchError
from foundation.logs import get_logger
from storage.client import Store
from storage.repos.targets import TargetRepo

log = get_logger(__name__)

SYNC_JOB = "__sync__"


class Daemon:
    def __init__(
        self,
        store: Store,
        load_config: Callable[[], TargetsConfig],
        *,
        tasks: CrawlTasks | None = None,
        misfire_grace: float = 300.0,
        sync_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        system: Sequence[Schedule] = (),
        keep_done_seconds: float = 7 * 86_400.0,
    ) -> None:
        self.store = store
        #: done crawl tasks older than this are deleted at each sync (runs keep the history)
        self.keep_done_seconds = keep_done_seconds
        #: built-in schedules beside the targets' (the takedown re-check job)
        self.system = list(system)
        self.load_config = load_config
        self.tasks = tasks or CrawlTasks(store, clock=clock)
        self.misfire_grace = misfire_grace
        self.sync_seconds = sync_seconds
        self.clock = clock
        self.current: dict[str, Schedule] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.fired = 0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def schedules(self) -> list[Schedule]:
        return [*build_schedules(self.load_config(), await TargetRepo(self.store).list()), *self.system]

    async def tick(self, now: datetime | None = None, only: set[str] | None = None) -> dict[str, Created]:
        """Enqueue each schedule's latest due time (≤ ``now``); the injectable-clock entry point."""
        now = now or self.now()
        out: dict[str, Created] = {}
        for key, schedule in self.current.items():
            if only is not None and key not in only:
                continue
            due = schedule.due_at_or_before(now)
            if due is not None:
                out[key] = await self.tasks.create(schedule, due)
        return out

    async def sync(self) -> None:
        """Reload schedules; add, replace or remove their timer jobs; catch up new ones; prune done
        tasks; mark the runs of dead processes ``abandoned``."""
        try:
            fresh = {s.target: s for s in await self.schedules()}
        except TgwatchError as exc:
            log.error("schedules not reloaded", kind=exc.kind, error=exc.message)
            return
        changed = {k for k, s in fresh.items() if self.current.get(k) != s}
        removed = set(self.current) - set(fresh)
        self.current = fresh
        if self.scheduler is not None:
            for key in removed:
                if self.scheduler.get_job(key) is not None:
                    self.scheduler.remove_job(key)
            for key in changed:
                s = fresh[key]
                if s.paused:
                    if self.scheduler.get_job(key) is not None:
                        self.scheduler.remove_job(key)
                    continue
                self.scheduler.add_job(
                    self._fire, s.trigger(), args=[key], id=key, name=f"{s.target} ({s.describe})",
                    replace_existing=True,
                )  # fmt: skip
        if changed or removed:
            log.info("schedules synced", targets=len(fresh), changed=len(changed), removed=len(removed))
        if changed:
            await self.tick(only=changed)
        try:
            pruned = await self.tasks.queue.prune(self.keep_done_seconds)
        except TgwatchError as exc:
            log.warning("done crawl tasks not pruned", error=exc.message)
        else:
            if pruned:
                log.info("done crawl tasks pruned", count=pruned)
        await reap_dead_runs(self.store)  # at start and on every sync: a killed worker's runs end here

    async def _fire(self, key: str) -> None:
        schedule = self.current.get(key)
        if schedule is None:
            return
        due = schedule.due_at_or_before(self.now())
        if due is None:
            return
        self.fired += 1
        try:
            result = await self.tasks.create(schedule, due)
        except TgwatchError as exc:
            metrics.count_error(exc.kind)
            log.error("crawl task not created", target=key, kind=exc.kind, error=exc.message)
            return
        log.info("crawl due", target=key, due=due.isoformat(), task=result.value)

    async def start(self) -> None:
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(self.misfire_grace)},
        )
        self.scheduler.start()
        await self.sync()
        self.scheduler.add_job(self.sync, "interval", seconds=self.sync_seconds, id=SYNC_JOB, name="reload schedules")
        log.info("scheduler started", targets=len(self.current))

    def shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
