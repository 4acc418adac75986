"""``GET /metrics``: Prometheus text exposition of this process.

Monitor-only (and admin), not public: the numbers hold no collected content, but queue depths,
error kinds and rates tell an outsider what is being watched and when it struggles. Prometheus
scrapes with a bearer token (``authorization: {credentials_file: …}`` in its scrape config), and
``/healthz``/``/readyz`` stay public for the orchestrator's probes.
"""

from __future__ import annotations

from aiohttp import web

from config.takedowns import TakedownSettings
from crawler.routes.context import SETTINGS, STORE
from crawler.routes.table import RouteTable
from crawler.tokens import Role
from foundation import metrics
from foundation.errors import TgwatchError
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Store

log = get_logger(__name__)


async def refresh_queue_depth(store: Store) -> None:
    """Read queue depths from the store into the gauges (crawl tasks and detection jobs)."""
    from crawler.scheduling.tasks import QUEUE
    from storage.workqueue import WorkQueue

    for name in (QUEUE, "detection_jobs"):
        try:
            metrics.set_queue_depth(name, await WorkQueue(store, name).stats())
        except TgwatchError as exc:
            log.warning("queue depth unavailable", queue=name, error=exc.message)


async def refresh_takedown_figures(store: Store, settings: TakedownSettings) -> None:
    """Compute the takedown figures from the stored requests into the gauges.

    A store failure (or a request document that no longer reads) logs a warning and leaves the
    previous values: a monitoring scrape must never fail because of one feature's data.
    """
    from crawler.takedowns.gauges import set_takedown_figures
    from crawler.takedowns.models import TakedownRequest
    from crawler.takedowns.stats import compute_stats
    from storage.repos.takedowns import TakedownRepo

    try:
        requests = [TakedownRequest.from_doc(d) for d in await TakedownRepo(store).all()]
    except TgwatchError as exc:
        log.warning("takedown figures unavailable", error=exc.message)
        return
    except ValueError as exc:  # pydantic's ValidationError: a stored request that no longer reads
        log.warning("takedown figures unavailable", error=str(exc).splitlines()[0])
        return
    set_takedown_figures(compute_stats(requests, utcnow(), overdue_after=settings.overdue_after))


def register(routes: RouteTable) -> None:
    @routes.add("GET", "/metrics", roles={Role.MONITOR}, summary="Prometheus metrics of this process", tag="health")
    async def prometheus_metrics(request: web.Request) -> web.StreamResponse:
        await refresh_queue_depth(request.app[STORE])
        await refresh_takedown_figures(request.app[STORE], request.app[SETTINGS].takedowns)
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response
