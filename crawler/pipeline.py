"""Assemble the ingest door with every stage this process needs, and own their resources.

``STAGES`` below is the ingest chain, in order, in one place; ``open_pipeline`` builds the feature
stages and ``Ingest.assemble`` lays them out as declared (the takedown policy stage: a new match alert
on a ``draft``/``auto`` list drafts or sends a request; ``takedown_reporter`` is the source's in-app
reporter when one is open). Sources add their own media fetcher (e.g. Telethon's) through ``fetchers``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from config import Settings
from crawler.detection.service import DetectionService
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage
from crawler.evidence.capture import CaptureStage
from crawler.evidence.hooks import verdict_hook
from crawler.evidence.ledger import Ledger
from crawler.evidence.screenshots import AlertScreenshots, Screenshots
from crawler.evidence.wiring import build_ledger
from crawler.hashing.idle import IdleHashPool
from crawler.hashing.images import ImageLimits
from crawler.hashing.pool import HashOptions, HashPool
from crawler.hashing.video import VideoLimits
from crawler.ingest import Ingest, Stage
from crawler.media.fetchers import MediaFetcher, WebFetcher
from crawler.media.matcher import Matcher
from crawler.media.stage import MediaStage
from crawler.takedowns.autodraft import PolicyHook, PolicyStage
from crawler.takedowns.reupload import ReuploadStage
from crawler.takedowns.senders import Reporter, build_senders
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from foundation.models import Source
from storage.client import Store
from storage.repos.alerts import on_alert_raised

#: The ingest chain, in order: (stage name, essential). A non-essential stage's failure is recorded
#: and the batch goes on; an essential one aborts the batch before its checkpoint (``crawler.ingest``).
STAGES: tuple[tuple[str, bool], ...] = (
    ("normalize", True),  # channel keys, record validation (crawler.ingest)
    ("media", False),  # fetch → hash → quarantine → match → detection queue; only with media.fetch
    ("version", True),  # new / edited / unchanged, against the stored message (crawler.ingest)
    ("persist", True),  # raw captures, versions, messages, sightings, snapshots, deletions
    ("snowball", False),  # links, mentions and forwards become discovery candidates
    ("ledger", True),  # evidence capture entries for every stored record
    ("reupload", False),  # removed items' media seen again re-open their takedown (needs its evidence)
    ("takedown_policy", False),  # a new match alert on a draft/auto list drafts or sends a request
)

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
        extra: list[Stage] = []
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
            extra.append(
                MediaStage(
                    store,
                    settings,
                    hasher=hasher,
                    fetchers=all_fetchers,
                    matcher=Matcher(store, settings.matching),
                    detection=DetectionService(store, settings, verdict_hook=verdict_hook(ledger)),
                )
            )
        hook = await stack.enter_async_context(policy_hook(store, settings, ledger, reporter=takedown_reporter))
        extra += [
            SnowballStage(DiscoveryService(store, settings.discovery), propose_bots=settings.target_policy.track_bots),
            CaptureStage(ledger, worker=settings.evidence.worker_name),
            ReuploadStage(TakedownService(store, ledger, settings.takedowns), settings.matching),
            PolicyStage(hook),
        ]
        ingest.assemble(STAGES, extra)
        if settings.media.screenshot_on_alert:
            timeout = settings.media.screenshot_timeout_seconds
            shots = AlertScreenshots(Screenshots(store, settings, ledger), timeout=timeout)
            stack.push_async_callback(shots.aclose)
            stack.callback(on_alert_raised(shots.on_alert))  # unsubscribed first, then the last shots awaited
        yield ingest


@asynccontextmanager
async def policy_hook(
    store: Store, settings: Settings, ledger: Ledger | None = None, *, reporter: Reporter | None = None
) -> AsyncIterator[PolicyHook]:
    """The takedown policy hook (draft or send per the list) for new match alerts: the ingest door's
    stage and retroactive matching (``hashes import/enable/rematch``) both act through it."""
    takedowns = TakedownService(store, ledger or build_ledger(store, settings), settings.takedowns)
    hook = PolicyHook(takedowns, Dispatcher(takedowns, build_senders(settings, reporter=reporter)), settings.takedowns)
    try:
        yield hook
    finally:
        await hook.aclose()
