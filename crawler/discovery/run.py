"""Drive discovery crawls: one aggregator site, or a triage pass over pending candidates.

This is where discovery spiders meet the rest of tgwatch: the spider's items reach a sink here
(through ``spiders.aggregator.DiscoveryPipeline``), which records them through ``DiscoveryService``
and keeps a run record (``runs`` + ``errors``, as web crawls do). Source problems (HTTP failures,
rate limits) are recorded and the crawl goes on; store failures propagate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.aggregators import AggregatorRules, RulesError, load_rules
from config.discovery import discovery_settings
from crawler.crawl_web import open_run
from crawler.discovery.models import TriageResult
from crawler.discovery.service import DiscoveryService
from foundation.egress import check_base_url
from foundation.errors import ConfigError, TgwatchError
from foundation.logs import get_logger

if TYPE_CHECKING:
    from config import Settings
    from crawler.crawl_web import RunRecorder
    from storage.client import Store

log = get_logger(__name__)

#: links of a capped page kept in its error record, so a reviewer sees what was left out
_CAPPED_SAMPLE = 20


@dataclass
class AggregatorSummary:
    site: str
    start_urls: list[str]
    run_id: str | None = None
    pages: int = 0
    links: int = 0
    new: int = 0
    merged: int = 0
    ignored: int = 0
    capped: int = 0  # new links left out by max_new_per_page / max_new_per_site_run
    errors: list[dict[str, object]] = field(default_factory=list)
    status: str = "running"

    def as_dict(self) -> dict[str, Any]:
        return {k: (len(v) if k == "errors" else v) for k, v in self.__dict__.items()}


@dataclass
class TriageSummary:
    run_id: str | None = None
    checked: int = 0
    states: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, object]] = field(default_factory=list)
    status: str = "running"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "checked": self.checked,
            "states": dict(self.states),
            "errors": len(self.errors),
        }


class _AggregatorSink:
    def __init__(self, service: DiscoveryService, summary: AggregatorSummary, recorder: RunRecorder | None) -> None:
        self.service, self.summary, self.recorder = service, summary, recorder
        self.reserved = 0  # site budget held by pages being recorded now (Scrapy hands items concurrently)

    async def accept(self, item: Any) -> None:
        from spiders.aggregator import AggregatorPageItem, FetchFailed

        if isinstance(item, AggregatorPageItem):
            limits = self.service.settings
            left = limits.max_new_per_site_run - self.summary.new - self.reserved
            budget = max(0, min(limits.max_new_per_page, left))
            self.reserved += budget  # before any await: a concurrent page sees what this one holds
            try:
                result = await self.service.record_aggregator_page(
                    item.site, item.page_url, item.links, item.fetched_at, max_new=budget
                )
            finally:
                self.reserved -= budget
            s = self.summary
            s.pages += 1
            s.links += len(item.links)
            s.new += result.new  # with the release above, before any await
            s.merged += result.merged
            s.ignored += item.ignored
            if result.capped:
                await self._capped(item.page_url, result.capped)
            if self.recorder is not None:
                await self.recorder.add({"pages": 1, "links": len(item.links), "new": result.new})
        elif isinstance(item, FetchFailed):
            await _record_error(self.summary.errors, self.recorder, item.error)

    async def _capped(self, page_url: str, links: tuple[str, ...]) -> None:
        """The excess of a volume cap: counted, and recorded once per page with a sample of it."""
        limits = self.service.settings
        self.summary.capped += len(links)
        doc: dict[str, object] = {
            "kind": "discovery_capped",
            "message": (
                f"{len(links)} new links not taken: over max_new_per_page={limits.max_new_per_page} "
                f"or max_new_per_site_run={limits.max_new_per_site_run}"
            ),
            "url": page_url,
            "capped": len(links),
            "sample": list(links[:_CAPPED_SAMPLE]),
        }
        self.summary.errors.append(doc)
        log.warning("discovery volume cap applied", url=page_url, capped=len(links))
        if self.recorder is not None:
            await self.recorder.error(doc)
            await self.recorder.add({"capped": len(links)})


class _TriageSink:
    def __init__(self, service: DiscoveryService, summary: TriageSummary, recorder: RunRecorder | None) -> None:
        self.service, self.summary, self.recorder = service, summary, recorder

    async def accept(self, item: Any) -> None:
        if not isinstance(item, TriageResult):
            return
        await self.service.apply_triage(item)
        self.summary.checked += 1
        self.summary.states[item.state] += 1
        if item.error is not None:
            doc = {**item.error, "link": item.link}
            self.summary.errors.append(doc)
            if self.recorder is not None:
                await self.recorder.error(doc)
        elif self.recorder is not None:
            await self.recorder.add({"checked": 1})


async def _record_error(errors: list[dict[str, object]], recorder: RunRecorder | None, err: TgwatchError) -> None:
    doc = err.to_doc()
    errors.append(doc)
    log.warning("discovery fetch problem", **{k: v for k, v in doc.items() if k != "kind"}, problem=doc.get("kind"))
    if recorder is not None:
        await recorder.error(doc)


def _recorder(store: Store, record_run: bool) -> RunRecorder | None:
    if not record_run:
        return None
    from crawler.crawl_web import StoreRunRecorder

    return StoreRunRecorder(store)


def _scrapy_settings(
    settings: Settings, sink: Any, overrides: dict[str, Any] | None, allow: tuple[str | None, ...]
) -> Any:
    from spiders.aggregator import DISCOVERY_PIPELINES
    from spiders.settings import Shared, build_scrapy_settings

    values: dict[str, Any] = {"ITEM_PIPELINES": DISCOVERY_PIPELINES, "TGWATCH_DISCOVERY": Shared(sink)}
    values.update(overrides or {})
    return build_scrapy_settings(settings, overrides=values, allow=allow)


async def crawl_aggregator(
    settings: Settings,
    store: Store,
    name_or_url: str,
    *,
    base_url: str | None = None,
    rules: AggregatorRules | None = None,
    service: DiscoveryService | None = None,
    record_run: bool = True,
    scrapy_overrides: dict[str, Any] | None = None,
) -> AggregatorSummary:
    """Crawl one aggregator (a rule's NAME, or a URL: matching rule, else the generic rule)."""
    from spiders.aggregator import AggregatorSpider
    from spiders.runner import run_spider  # first: installs the asyncio reactor on this loop

    dsettings = discovery_settings(settings)
    service = service or DiscoveryService(store, dsettings)
    try:
        rules = rules or load_rules(dsettings.aggregators_file)
        rule, urls = rules.resolve(name_or_url)
        start_urls = urls or rule.resolved_start_urls(base_url)
        for url in start_urls:
            check_base_url(url)
    except RulesError as exc:
        raise ConfigError(str(exc)) from exc
    summary = AggregatorSummary(site=rule.name, start_urls=start_urls)
    recorder = _recorder(store, record_run)
    async with open_run(recorder, name_or_url, "aggregator") as run:
        summary.run_id = run.id if run is not None else None
        sink = _AggregatorSink(service, summary, recorder)
        status = "failed"
        try:
            await run_spider(
                AggregatorSpider,
                # the operator named these hosts (rule file, --base-url or the URL given)
                _scrapy_settings(settings, sink, scrapy_overrides, allow=tuple(start_urls)),
                rule=rule,
                start_urls=start_urls,
                max_pages=dsettings.max_pages_per_site,
            )
            status = "ok" if not summary.errors else "partial"
        finally:
            summary.status = status
        if run is not None:
            run.status = status
    return summary


async def run_triage(
    settings: Settings,
    store: Store,
    *,
    links: list[str] | None = None,
    limit: int | None = None,
    base_url: str | None = None,
    service: DiscoveryService | None = None,
    record_run: bool = True,
    scrapy_overrides: dict[str, Any] | None = None,
) -> TriageSummary:
    """Fetch and score the preview page of every pending candidate (or of ``links``)."""
    from spiders.runner import run_spider
    from spiders.tme_preview import TmePreviewSpider

    check_base_url(base_url or settings.telegram_web_base)
    service = service or DiscoveryService(store, discovery_settings(settings))
    if links is None:
        links = [str(doc["_id"]) for doc in await service.pending(limit)]
    summary = TriageSummary()
    if not links:
        summary.status = "ok"
        return summary
    recorder = _recorder(store, record_run)
    async with open_run(recorder, f"triage:{len(links)}", "triage") as run:
        summary.run_id = run.id if run is not None else None
        sink = _TriageSink(service, summary, recorder)
        status = "failed"
        try:
            await run_spider(
                TmePreviewSpider,
                _scrapy_settings(settings, sink, scrapy_overrides, allow=(base_url,)),
                links=links,
                base_url=base_url or settings.telegram_web_base,
            )
            status = "ok" if not summary.errors else "partial"
        finally:
            summary.status = status
        if run is not None:
            run.status = status
    return summary
