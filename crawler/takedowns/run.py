"""Run re-checks with real probes: the CLI's ``takedown recheck`` and the scheduler's recurring task.

The web probe is cheap to build; the MTProto probe needs the account pool, which is opened only
when an item found over MTProto is actually due (``LazyProbe``), so a deployment without Telegram
accounts re-checks its web items and records the MTProto ones as ``unknown/no_account``.
A run record (``runs``, kind ``takedown_recheck``) is kept when something was checked, so monitors
see re-checks beside crawls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from crawler.evidence.wiring import build_ledger
from crawler.takedowns.models import ItemStatus, ProbeItem, ProbeResult
from crawler.takedowns.probe import Probe
from crawler.takedowns.service import Clock, RecheckSummary, TakedownService
from foundation.errors import StoreError, TgwatchError
from foundation.models import utcnow
from storage.repos.runs import RunRepo

if TYPE_CHECKING:
    from config import Settings
    from storage.client import Store
    from telegram_watch.pool import AccountPool


class LazyProbe:
    """A probe built on first use; if it cannot be built, every item it was given is ``unknown``."""

    def __init__(self, method: str, make: Callable[[], Awaitable[Probe]], *, clock: Clock = utcnow) -> None:
        self.method = method
        self._make = make
        self._probe: Probe | None = None
        self._clock = clock

    async def check(self, items: Sequence[ProbeItem]) -> list[ProbeResult]:
        if self._probe is None:
            try:
                self._probe = await self._make()
            except StoreError:
                raise
            except TgwatchError as exc:
                return [
                    ProbeResult(
                        item_id=i.item_id, status=ItemStatus.UNKNOWN, reason="no_account", checked_at=self._clock(),
                        method=self.method, detail=f"cannot check over {self.method}: {exc.message}",
                    )
                    for i in items
                ]  # fmt: skip
        return await self._probe.check(items)


def build_probes(
    settings: Settings,
    *,
    web_base: str | None = None,
    scrapy_overrides: dict[str, Any] | None = None,
    pool: Callable[[], Awaitable[AccountPool]] | None = None,
    clock: Clock = utcnow,
) -> dict[str, Probe]:
    from crawler.takedowns.web import WebProbe

    probes: dict[str, Probe] = {
        "web": WebProbe(settings, base_url=web_base or settings.telegram_web_base, scrapy_overrides=scrapy_overrides)
    }
    if pool is not None:
        get_pool = pool

        async def make() -> Probe:
            from telegram_watch.takedown_probe import MtprotoProbe

            return MtprotoProbe(await get_pool())

        probes["mtproto"] = LazyProbe("mtproto", make, clock=clock)
    return probes


async def run_recheck(
    settings: Settings,
    store: Store,
    probes: dict[str, Probe],
    *,
    request_id: str | None = None,
    clock: Clock = utcnow,
    record_run: bool = True,
    **run_fields: Any,
) -> RecheckSummary:
    service = TakedownService(store, build_ledger(store, settings), settings.takedowns, clock=clock)
    summary = await service.recheck(probes, request_id=request_id)
    if record_run and summary.checked:
        runs = RunRepo(store)
        run_id = await runs.start(request_id or "takedowns", "takedown_recheck", **run_fields)
        await runs.add(run_id, checked=summary.checked, changed=summary.changed, requests=summary.requests)
        unknown = sum(n for key, n in summary.results.items() if key.startswith("unknown/"))
        await runs.finish(run_id, "ok" if not unknown else "partial", results=dict(summary.results))
    return summary
