"""``tgwatch run`` and ``tgwatch worker`` put together: daemon, workers, children, HTTP, shutdown.

Single-process mode is the default of ``tgwatch run``: the scheduler creates tasks *and* an
in-process worker claims them through the same leased queue as remote workers would. There is one
code path for crawling (the queue), so a single machine and a scaled-out deployment behave the
same; ``--no-work`` makes a pure scheduler (for deployments with separate ``tgwatch worker``
processes) and ``--workers N`` adds N local worker processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config import Settings
from config.targets import TargetsConfig
from crawler.evidence.hooks import notification_hook
from crawler.evidence.wiring import build_ledger
from crawler.notify.service import notifier
from crawler.scheduling.children import STOP_SLACK_SECONDS, Children
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.groups import target_groups
from crawler.scheduling.plan import exchange_schedule, takedown_schedule
from crawler.scheduling.runners import RunContext
from crawler.scheduling.shutdown import Shutdown
from crawler.scheduling.tasks import CrawlTasks
from crawler.scheduling.worker import Worker, WorkerReport
from foundation.logs import get_logger
from storage.client import Store

if TYPE_CHECKING:
    from crawler.api.app import Registrar

log = get_logger(__name__)


@dataclass
class ServiceOptions:
    work: bool = True
    concurrency: int = 1
    workers: int = 0
    child_argv: Sequence[str] = ()
    with_api: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    api_modules: Sequence[Registrar] = field(default_factory=list)
    lease_seconds: float = 60.0
    grace_seconds: float = 30.0
    poll_seconds: float = 2.0
    misfire_grace: float = 300.0
    sync_seconds: float = 30.0
    max_attempts: int = 3
    #: also deliver notifications from this process (woken at once by alerts raised here)
    notify: bool = True


@contextlib.asynccontextmanager
async def http_server(
    store: Store, settings: Settings, modules: Sequence[Registrar], host: str, port: int
) -> AsyncIterator[str]:
    """The API (or just health + metrics) on ``host:port`` for the block; yields its base URL.
    aiohttp's server and the API are imported here: a worker without ``--metrics-port`` never loads
    them (issue 17)."""
    from aiohttp import web

    from crawler.api.app import build_app, runner_args

    runner = web.AppRunner(build_app(store, settings, modules), **runner_args(settings), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0]
        url = f"http://{bound[0]}:{bound[1]}"
        log.info("http server listening", url=url)
        yield url
    finally:
        await runner.cleanup()


async def run_service(
    ctx: RunContext,
    load_config: Callable[[], TargetsConfig],
    opts: ServiceOptions,
    shutdown: Shutdown,
    *,
    on_ready: Callable[[dict[str, object]], None] | None = None,
) -> WorkerReport | None:
    """Run the daemon until ``shutdown.stop``; everything started here is stopped here."""
    tasks = CrawlTasks(ctx.store, max_attempts=opts.max_attempts)
    recheck = takedown_schedule(ctx.settings.takedowns.recheck_every)
    exchanges = exchange_schedule(ctx.settings.exchanges.sync_every)
    daemon = Daemon(
        ctx.store, load_config, tasks=tasks, misfire_grace=opts.misfire_grace, sync_seconds=opts.sync_seconds,
        system=[s for s in (recheck, exchanges) if s is not None],
    )  # fmt: skip
    children = Children(opts.child_argv)
    report: WorkerReport | None = None
    async with contextlib.AsyncExitStack() as stack:
        info: dict[str, object] = {}
        if opts.with_api:
            info["api"] = await stack.enter_async_context(
                http_server(ctx.store, ctx.settings, opts.api_modules, opts.host, opts.port)
            )
        await daemon.start()
        stack.callback(daemon.shutdown)
        if opts.notify:
            on_sent = notification_hook(build_ledger(ctx.store, ctx.settings).append)
            groups = target_groups(ctx.store, ctx.settings)
            await stack.enter_async_context(notifier(ctx.store, ctx.settings, on_sent=on_sent, channel_groups=groups))
        stack.push_async_callback(ctx.aclose)
        if opts.workers:
            stack.push_async_callback(children.stop, opts.grace_seconds + STOP_SLACK_SECONDS)
            await children.start(opts.workers)
            info["children"] = children.pids
        info["targets"] = len(daemon.current)
        if on_ready is not None:
            on_ready(info)
        if opts.work:
            worker = Worker(
                ctx, tasks=tasks, lease_seconds=opts.lease_seconds, poll_seconds=opts.poll_seconds,
                concurrency=opts.concurrency, grace_seconds=opts.grace_seconds,
            )  # fmt: skip
            report = await worker.run(shutdown.stop)
        else:
            await shutdown.stop.wait()
    return report


async def run_worker(
    ctx: RunContext,
    opts: ServiceOptions,
    shutdown: Shutdown,
    *,
    metrics_port: int | None = None,
    until_idle: bool = False,
) -> WorkerReport:
    """One ``tgwatch worker``: claim and crawl until stopped; optionally serve health and metrics."""
    async with contextlib.AsyncExitStack() as stack:
        if metrics_port is not None:
            from crawler.scheduling.api import register as metrics_routes

            await stack.enter_async_context(
                http_server(ctx.store, ctx.settings, [metrics_routes], opts.host, metrics_port)
            )
        stack.push_async_callback(ctx.aclose)
        worker = Worker(
            ctx, tasks=CrawlTasks(ctx.store, max_attempts=opts.max_attempts), lease_seconds=opts.lease_seconds,
            poll_seconds=opts.poll_seconds, concurrency=opts.concurrency, grace_seconds=opts.grace_seconds,
        )  # fmt: skip
        return await worker.run(shutdown.stop, until_idle=until_idle)
