"""Drive one web-preview crawl: resolve the target, run the spider, keep the run record.

This is where a crawl meets the rest of tgwatch: the checkpoint is read from ingest, the spider's
pages go through the one pipeline into ``Ingest.submit`` (which saves each page's checkpoint after
its batch), and every page's counts and every problem (``BadPage`` with its URL, HTTP failures,
rate limits) land on the run record while the crawl goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger
from foundation.models import Channel, ChannelState, Checkpoint

if TYPE_CHECKING:
    from config import Settings
    from crawler.ingest import Ingest, IngestResult
    from spiders.pipelines import PageItem
    from spiders.tme_channel import CrawlMode
    from storage.client import Store
    from storage.repos.runs import OpenRun

log = get_logger(__name__)


class RunRecorder(Protocol):
    """The run record of one crawl (the lead's ``runs`` repository sits behind it)."""

    def recording(self, target: str, kind: str) -> AbstractAsyncContextManager[OpenRun]: ...

    async def add(self, counts: Mapping[str, int]) -> None: ...

    async def error(self, err: dict[str, object]) -> None: ...


class Progress(Protocol):
    def __call__(self, summary: CrawlSummary, url: str) -> None: ...


class StoreRunRecorder:
    """``RunRecorder`` over the store's ``runs`` and ``errors`` collections."""

    def __init__(self, store: Store) -> None:
        from storage.repos.errors import ErrorRepo
        from storage.repos.runs import RunRepo

        self.runs = RunRepo(store)
        self.errors = ErrorRepo(store)
        self.run_id: str | None = None

    def run_fields(self) -> dict[str, Any]:
        """Fields written on the run when it starts (a subclass adds its own)."""
        return {}

    @asynccontextmanager
    async def recording(self, target: str, kind: str) -> AsyncIterator[OpenRun]:
        """The run's lifecycle (``RunRepo.record``): ``run.status`` on return, ``failed`` when the
        body raised, ``abandoned`` when it was cancelled."""
        async with self.runs.record(target, kind, **self.run_fields()) as run:
            self.run_id = run.id
            yield run

    async def add(self, counts: Mapping[str, int]) -> None:
        if self.run_id is not None:
            await self.runs.add(self.run_id, **counts)

    async def error(self, err: dict[str, object]) -> None:
        await self.errors.record(dict(err), run_id=self.run_id)
        if self.run_id is not None:
            await self.runs.error(self.run_id)


@asynccontextmanager
async def open_run(recorder: RunRecorder | None, target: str, kind: str) -> AsyncIterator[OpenRun | None]:
    """The run record of one crawl or discovery run, or None when the caller keeps none."""
    if recorder is None:
        yield None
        return
    async with recorder.recording(target, kind) as run:
        yield run


@dataclass
class CrawlSummary:
    target: str
    username: str | None = None
    run_id: str | None = None
    pages: int = 0
    messages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    media_refs: int = 0
    undated: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)
    state: ChannelState | None = None
    state_reason: str | None = None
    checkpoint: Checkpoint | None = None
    status: str = "running"

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "username": self.username,
            "run_id": self.run_id,
            "status": self.status,
            "state": self.state.value if self.state else None,
            "state_reason": self.state_reason,
            "pages": self.pages,
            "messages": self.messages,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "media_refs": self.media_refs,
            "undated": self.undated,
            "errors": len(self.errors),
            "newest_id": self.checkpoint.newest_id if self.checkpoint else None,
            "oldest_id": self.checkpoint.oldest_id if self.checkpoint else None,
            "complete": self.checkpoint.complete if self.checkpoint else False,
        }


class _Hooks:
    """What the pipeline reports after each page: counts to the summary and the run record."""

    def __init__(self, summary: CrawlSummary, recorder: RunRecorder | None, progress: Progress | None) -> None:
        self.summary = summary
        self.recorder = recorder
        self.progress = progress

    async def page_stored(self, item: PageItem, result: IngestResult) -> None:
        s = self.summary
        messages = sum(1 for r in item.records if not isinstance(r, Channel))
        for rec in item.records:
            if isinstance(rec, Channel):
                s.state, s.state_reason = rec.state, rec.state_reason
        if item.kind == "page":
            s.pages += 1
        s.messages += messages
        s.new += result.new
        s.updated += result.updated
        s.unchanged += result.unchanged
        s.media_refs += item.media_refs
        s.undated += item.undated
        if item.checkpoint is not None:
            s.checkpoint = item.checkpoint
        if self.recorder is not None:
            await self.recorder.add(
                {
                    "pages": 1 if item.kind == "page" else 0,
                    "messages": messages,
                    "new": result.new,
                    "updated": result.updated,
                    "media_refs": item.media_refs,
                    "undated": item.undated,
                }
            )
        for err in item.errors:
            await self._error(err)
        if self.progress is not None:
            self.progress(s, item.url)

    async def page_failed(self, item: PageItem, error: TgwatchError) -> None:
        await self._error(error)

    async def _error(self, err: TgwatchError) -> None:
        doc = err.to_doc()
        self.summary.errors.append(doc)
        log.warning("crawl problem", **{k: v for k, v in doc.items() if k != "kind"}, problem=doc.get("kind"))
        # a store failure is not written to the store that just failed (each try would wait out the
        # driver's timeout); it ends the crawl and reaches the caller as a StoreError anyway
        if self.recorder is not None and not isinstance(err, StoreError):
            await self.recorder.error(doc)


async def crawl_channel(
    settings: Settings,
    ingest: Ingest,
    target: str,
    *,
    mode: CrawlMode | None = None,
    base_url: str | None = None,
    recorder: RunRecorder | None = None,
    progress: Progress | None = None,
    scrapy_overrides: dict[str, Any] | None = None,
    fallback_bases: list[str] | None = None,
) -> CrawlSummary:
    """Crawl one channel's web preview into ``ingest``. Never raises for source problems: they are
    recorded on the summary and the run; store failures (``StoreError``) do propagate.

    ``fallback_bases``: hosts tried when the base cannot be reached; by default the settings'
    (``Settings.web_fallbacks``) when the settings' base is used, none with an explicit ``base_url``."""
    from foundation.egress import check_base_url
    from spiders.runner import run_spider  # first: installs the asyncio reactor on this loop
    from spiders.settings import build_scrapy_settings
    from spiders.tme_channel import CrawlMode, TmeChannelSpider, resolve_username, stream_name

    check_base_url(base_url or settings.telegram_web_base)  # ConfigError before anything is recorded
    if fallback_bases is None:
        fallback_bases = settings.web_fallbacks() if base_url is None else []
    for fallback in fallback_bases:
        check_base_url(fallback)
    mode = mode or CrawlMode()
    summary = CrawlSummary(target=target)
    async with open_run(recorder, target, "web_channel") as run:
        summary.run_id = run.id if run is not None else None
        hooks = _Hooks(summary, recorder, progress)
        try:
            summary.username = resolve_username(target)
        except TgwatchError as exc:
            await hooks._error(exc)
            summary.status = "failed"
            if run is not None:
                run.status = summary.status
            return summary

        checkpoint = await ingest.checkpoint(stream_name(summary.username))
        summary.checkpoint = checkpoint
        scrapy_settings = build_scrapy_settings(
            settings, ingest=ingest, hooks=hooks, overrides=scrapy_overrides, allow=(base_url, *fallback_bases)
        )
        status = "failed"
        try:
            await run_spider(
                TmeChannelSpider,
                scrapy_settings,
                username=summary.username,
                base_url=base_url or settings.telegram_web_base,
                mode=mode,
                checkpoint=checkpoint,
                fallback_bases=fallback_bases,
            )
            status = "ok" if not summary.errors else "partial"
            if summary.state not in (None, ChannelState.OK) and summary.pages == 0:
                status = "ok"  # a clear channel state is a clean outcome, not a failure
        finally:
            summary.status = status
        if run is not None:
            run.status = status
    summary.checkpoint = await ingest.checkpoint(stream_name(summary.username)) or summary.checkpoint
    return summary
