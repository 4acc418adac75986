"""Runs left ``running`` by a process that died (``kill -9``, OOM kill, power loss) become ``abandoned``.

Called when a worker or ``tgwatch runs`` starts and on every scheduler sync: the run records say what
happened instead of showing a crawl that will never end.
"""

from __future__ import annotations

from foundation.errors import StoreError
from foundation.logs import get_logger
from storage.client import Store
from storage.repos.runs import RunRepo

log = get_logger(__name__)


async def reap_dead_runs(store: Store) -> list[str]:
    """Mark the runs of dead owner processes ``abandoned``; a store error is logged, not raised."""
    try:
        reaped = await RunRepo(store).reap_dead()
    except StoreError as exc:
        log.warning("could not check for abandoned runs", error=exc.message)
        return []
    if reaped:
        log.warning("runs of dead processes marked abandoned", runs=len(reaped))
    return reaped
