"""The web probe: re-check reported items on t.me's public web preview.

One Scrapy run (``spiders.takedown_probe.TakedownProbeSpider``) per ``check`` call, for all items
at once, so the project's politeness (concurrency per domain, autothrottle, back-off, Retry-After)
spans the whole batch. The spider's answers reach a collector here through
``spiders.takedown_probe.ProbePipeline``; the probe then returns exactly one ``ProbeResult`` per
input item, in input order. An item the run never answered (a crash inside a callback, a request
Scrapy dropped) is ``unknown/fetch_failed`` "no answer", and a run that fails as a whole answers
every item that way: the ``Probe`` contract lets only store failures propagate, and this probe
has no store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crawler.takedowns.models import ItemStatus, ProbeItem, ProbeResult
from foundation.egress import check_base_url
from foundation.errors import StoreError
from foundation.logs import get_logger
from foundation.models import utcnow

if TYPE_CHECKING:
    from config import Settings

log = get_logger(__name__)


class _Collector:
    """The spider's sink: keeps the first answer per item."""

    def __init__(self) -> None:
        self.results: dict[str, ProbeResult] = {}

    def accept(self, result: ProbeResult) -> None:
        self.results.setdefault(result.item_id, result)


class WebProbe:
    """``Probe`` over t.me web pages (``method = "web"``)."""

    method = "web"

    def __init__(
        self, settings: Settings, *, base_url: str | None = None, scrapy_overrides: dict[str, Any] | None = None
    ) -> None:
        self.settings = settings
        self.base_url = check_base_url(base_url or settings.telegram_web_base)
        self.scrapy_overrides = dict(scrapy_overrides or {})

    async def check(self, items: Sequence[ProbeItem]) -> list[ProbeResult]:
        """One result per item, in order; fetch problems are ``unknown`` results, never exceptions."""
        if not items:
            return []
        from spiders.runner import run_spider  # first: installs the asyncio reactor on this loop
        from spiders.settings import Shared, build_scrapy_settings
        from spiders.takedown_probe import PROBE_PIPELINES, TakedownProbeSpider

        collector = _Collector()
        overrides: dict[str, Any] = {"ITEM_PIPELINES": PROBE_PIPELINES, "TGWATCH_PROBE_SINK": Shared(collector)}
        overrides.update(self.scrapy_overrides)
        missing_detail = "no answer"
        try:
            await run_spider(
                TakedownProbeSpider,
                build_scrapy_settings(self.settings, overrides=overrides, allow=(self.base_url,)),
                items=list(items),
                base_url=self.base_url,
            )
        except StoreError:
            raise
        except Exception as exc:  # the contract: a failed run is "unknown" for the items it did not answer
            log.error("web probe run failed", error=f"{type(exc).__name__}: {exc}", items=len(items))
            missing_detail = f"no answer: probe run failed ({type(exc).__name__}: {exc})"
        out = [collector.results.get(item.item_id) or _no_answer(item, missing_detail) for item in items]
        log.info(
            "web probe done",
            items=len(items),
            online=sum(r.status is ItemStatus.ONLINE for r in out),
            removed=sum(r.status is ItemStatus.REMOVED for r in out),
            unknown=sum(r.status is ItemStatus.UNKNOWN for r in out),
        )
        return out


def _no_answer(item: ProbeItem, detail: str) -> ProbeResult:
    return ProbeResult(
        item_id=item.item_id,
        status=ItemStatus.UNKNOWN,
        reason="fetch_failed",
        checked_at=utcnow(),
        method=WebProbe.method,
        detail=detail,
    )
