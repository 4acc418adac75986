"""Assemble the ingest door with every stage this process needs, and own their resources.

``open_pipeline`` is where seams get filled: the media stage (fetch → hash → quarantine → match →
detection queue) before ``version``; after ``persist`` the discovery snowball (links, mentions and
forwards become candidates), the evidence capture stage (ledger entries for every stored
record), the takedown re-upload check (removed items' media seen again re-open their request) and
the takedown policy stage (a new match alert on a ``draft``/``auto`` list drafts or sends a request;
``takedown_reporter`` is the source's in-app reporter when one is open).
Sources add their own media fetcher (e.g. Telethon's) through ``fetchers``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from config import Settings
from crawler.detection.service import DetectionService
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage
from crawler.evidence.capture import install as install_capture
from crawler.evidence.hooks import verdict_hook
from crawler.evidence.wiring import build_ledger
from crawler.hashing.idle import IdleHashPool
from crawler.hashing.images import ImageLimits
from crawler.hashing.pool import HashOptions, HashPool
from crawler.hashing.video import VideoLimits
from crawler.ingest import Ingest
from crawler.media.fetchers import MediaFetcher, WebFetcher
from crawler.media.matcher import Matcher
from crawler.media.stage import MediaStage
from crawler.models import Source
from crawler.takedowns.autodraft import PolicyHook, PolicyStage
from crawler.takedowns.reupload import ReuploadStage
from crawler.takedowns.senders import Reporter, build_senders
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from storage.client import Store

#: a crawling process's hash pool is shut down after this long without media (issue 17: idle pool
#: workers were a third of ``tgwatch run --workers 2``'s memory); the next file starts it again
HASH_POOL_IDLE_SECONDS = 60.0


def hash_options(settings: Settings) -> HashOptions:
    limits = settings.limits
    return HashOptions(
        image=ImageLimits(max_bytes=limits.max_media_bytes, max_pixels=limits.max_image_pixels),
        video=VideoLimits(max_bytes=limits.max_media_bytes, max_duration=limits.max_video_seconds),
        dihedral=settings.matching.dihedral,
        max_bytes=limits.max_media_bytes,
    )


@asynccontextmanager
async def open_pipeline(
    store: Store,
    settings: Settings,
    *,
    fetchers: dict[Source, MediaFetcher] | None = None,
    takedown_reporter: Reporter | None = None,
) -> AsyncIterator[Ingest]:
    ingest = Ingest(store)
    ledger = build_ledger(store, settings)
    async with AsyncExitStack() as stack:
        if settings.media.fetch:
            options = hash_options(settings)
            hasher = await stack.enter_async_context(
                IdleHashPool(
                    lambda: HashPool(workers=settings.media.hash_workers, options=options),
                    idle_seconds=HASH_POOL_IDLE_SECONDS,
                )
            )
            web = await stack.enter_async_context(WebFetcher(settings))
            all_fetchers: dict[Source, MediaFetcher] = {Source.WEB: web, **(fetchers or {})}
            ingest.add_stage(
                MediaStage(
                    store,
                    settings,
                    hasher=hasher,
                    fetchers=all_fetchers,
                    matcher=Matcher(store, settings.matching),
                    detection=DetectionService(store, settings, verdict_hook=verdict_hook(ledger)),
                ),
                before="version",
            )
        install_capture(ingest, ledger, worker=settings.evidence.worker_name)
        ingest.add_stage(SnowballStage(DiscoveryService(store, settings.discovery)), after="persist")
        # after the capture stage ("ledger"): a re-upload added to a request already has its evidence
        takedowns = TakedownService(store, ledger, settings.takedowns)
        ingest.add_stage(ReuploadStage(takedowns, settings.matching), after="ledger")
        # the lists' takedown policies: a new match alert drafts a request, or sends it (``auto``)
        senders = build_senders(settings, reporter=takedown_reporter)
        hook = PolicyHook(takedowns, Dispatcher(takedowns, senders), settings.takedowns)
        stack.push_async_callback(hook.aclose)
        ingest.add_stage(PolicyStage(hook), after="reupload")
        yield ingest
