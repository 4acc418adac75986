"""Re-upload detection: a removed item's media turning up again re-opens its takedown request.

An ingest stage after the evidence capture (so the message it adds to a request is stored and
already has its capture entries), and not essential (a takedown hiccup must never fail a crawl).

Why an in-memory index: every stored message with media is compared with the media of every
*removed* item, so the comparison must cost nothing in the common case. The stage keeps the removed
items' SHA-256 digests and their usable PDQ hashes in the indexes of those signal types (from
``crawler.hashing.signals``: a dict for SHA-256, the ``PdqIndex`` for PDQ); it rebuilds both
only when ``TakedownRepo.state()`` (a counter the takedown service bumps whenever an item becomes
removed or stops being removed) changes, and reads that token at most every ``refresh_every``
seconds (``Matcher.refresh`` is the model). With nothing removed the stage makes no query at all.

Per batch: every stored, not deleted message holding media (new, changed *or* re-crawled unchanged,
since an item may be removed after its copies were first stored) is checked

- exactly: one of its digests is a removed item's digest;
- by PDQ: the stored PDQ of a digest that matched nothing exactly is within
  ``matching.pdq_max_distance`` of a removed item's PDQ. PDQs are read with one ``media`` query per
  batch and then cached (a digest's PDQ never changes). Only the stored PDQ is compared: the media
  documents keep no dihedral hashes, so rotated or mirrored re-uploads are not caught even when
  ``matching.dihedral`` is on (``Matcher`` can, because it sees fresh hashes).

A message already on the request is skipped without a query; every other hit becomes
``TakedownService.reopen_for_reupload`` (item, ledger ``reopen`` entry, ``reupload/...`` alert),
at most once per (request, message). Hits and failures are counted in ``ReuploadStage.stats``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from config import MatchingSettings
from crawler.hashing import signals
from crawler.hashing.signals import MatchRules
from crawler.ingest import Batch
from crawler.takedowns.models import ItemStatus
from crawler.takedowns.service import TakedownService
from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger
from storage.client import Doc
from storage.repos.media import MediaRepo

log = get_logger(__name__)

#: digests whose PDQ is remembered between batches (cleared whole when full: cheap and bounded)
PDQ_CACHE_SIZE = 200_000
_UNUSABLE = ""  # cached: the media has no usable PDQ


@dataclass(frozen=True)
class RemovedMedia:
    """One medium of one removed item: what a re-upload is compared with."""

    request: str
    item: str  # the removed item's id, e.g. "message:chan/12"
    sha256: str
    pdq: str | None


@dataclass
class ReuploadStats:
    batches: int = 0
    idle: int = 0  # batches skipped because nothing is removed (no query made)
    state_checks: int = 0
    rebuilds: int = 0
    messages: int = 0  # messages compared
    media_queries: int = 0
    exact_hits: int = 0
    pdq_hits: int = 0
    reopened: int = 0
    already: int = 0  # hits on a message the request already holds
    errors: int = 0


@dataclass
class _Hit:
    removed: RemovedMedia
    message: str
    match: dict[str, Any]


class RemovedIndex:
    """The media of removed items (``media``), indexed by SHA-256 and by PDQ, plus every request's item ids."""

    def __init__(self, requests: Iterable[Doc], rules: MatchRules) -> None:
        """``requests``: takedown documents, at least ``_id`` and ``items`` (``TakedownRepo.removed_media``)."""
        self.items: dict[str, set[str]] = {}
        self.media: list[RemovedMedia] = []
        for req in requests:
            items = [i for i in req.get("items") or [] if isinstance(i, dict)]
            self.items[str(req["_id"])] = {str(i.get("item_id")) for i in items}
            for item in items:
                self.media += _removed_media(str(req["_id"]), item)
        # ids are positions in ``media``; built once per state change
        self.exact = signals.get("sha256").build_index(range(len(self.media)), [m.sha256 for m in self.media], rules)
        with_pdq = [row for row, m in enumerate(self.media) if m.pdq]
        self.pdq = signals.get("pdq").build_index(with_pdq, [str(self.media[row].pdq) for row in with_pdq], rules)

    def __bool__(self) -> bool:
        return bool(self.media)

    def holds(self, request: str, message_key: str) -> bool:
        return f"message:{message_key}" in self.items.get(request, set())


def _removed_media(request: str, item: Doc) -> list[RemovedMedia]:
    """A removed item's media (``TakedownItem.media``: sha256, and pdq only when usable)."""
    if item.get("status") != ItemStatus.REMOVED.value:
        return []
    return [
        RemovedMedia(request, str(item["item_id"]), m["sha256"], m.get("pdq") or None)
        for m in item.get("media") or []
        if isinstance(m, dict) and isinstance(m.get("sha256"), str)
    ]


class ReuploadStage:
    name = "reupload"
    essential = False

    def __init__(
        self,
        service: TakedownService,
        matching: MatchingSettings,
        *,
        refresh_every: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._media = MediaRepo(service.store)
        self.matching = matching
        self.refresh_every = refresh_every
        self.stats = ReuploadStats()
        self._monotonic = monotonic
        self._index = RemovedIndex((), matching)
        self._loaded = False
        self._state: Any = None
        self._checked_at: float | None = None
        self._pdq_cache: dict[str, str] = {}

    @property
    def index(self) -> RemovedIndex:
        return self._index

    async def refresh(self, *, force: bool = False) -> None:
        """Rebuild the index when the takedown state token moved (read at most every ``refresh_every`` s)."""
        now = self._monotonic()
        if not force and self._checked_at is not None and now - self._checked_at < self.refresh_every:
            return
        self._checked_at = now
        self.stats.state_checks += 1
        state = await self.service.repo.state()  # read first: a change after it only causes one more rebuild
        if self._loaded and state == self._state:
            return
        requests = await self.service.repo.removed_media()
        self._index = RemovedIndex(requests, self.matching)
        self._state, self._loaded = state, True
        self.stats.rebuilds += 1
        log.info(
            "re-upload index rebuilt", requests=len(requests), digests=len(self._index.exact),
            pdq=len(self._index.pdq),
        )  # fmt: skip

    async def __call__(self, batch: Batch) -> None:
        self.stats.batches += 1
        await self.refresh()
        index = self._index
        if not index:
            self.stats.idle += 1
            return
        deleted = set(batch.deleted_keys)
        messages: dict[str, list[str]] = {}
        for key, doc in batch.writes.current.items():
            if doc.get("deleted") or key in deleted:
                continue
            digests = _digests(doc)
            if digests:
                messages[key] = digests
        if not messages:
            return
        self.stats.messages += len(messages)
        hits: dict[tuple[str, str], _Hit] = {}
        queried = [(key, digest) for key, digests in messages.items() for digest in digests]
        matched: set[str] = set()
        for found in index.exact.query([digest for _key, digest in queried]):
            key, digest = queried[found.query]
            removed = index.media[int(found.id)]  # type: ignore[call-overload]
            matched.add(digest)
            hits.setdefault(
                (removed.request, key),
                _Hit(removed, key, {"signal": "sha256", "sha256": digest, "distance": 0}),
            )
        unmatched = {digest for _key, digest in queried} - matched
        if unmatched and len(index.pdq):
            for (request, key), hit in (await self._pdq_hits(index, messages, unmatched)).items():
                hits.setdefault((request, key), hit)
        for hit in hits.values():
            await self._reopen(batch, index, hit)

    async def _pdq_hits(
        self, index: RemovedIndex, messages: dict[str, list[str]], unmatched: set[str]
    ) -> dict[tuple[str, str], _Hit]:
        pdqs = await self._pdqs(unmatched)
        queried = sorted(d for d, p in pdqs.items() if p)
        if not queried:
            return {}
        nearest: dict[str, dict[str, tuple[int, RemovedMedia]]] = {}  # digest → request → nearest removed
        for match in index.pdq.query([pdqs[d] for d in queried]):
            removed = index.media[int(match.id)]  # type: ignore[call-overload]
            distance = int(match.distance)
            per_request = nearest.setdefault(queried[match.query], {})
            if removed.request not in per_request or distance < per_request[removed.request][0]:
                per_request[removed.request] = (distance, removed)
        out: dict[tuple[str, str], _Hit] = {}
        for key, digests in messages.items():
            for digest in digests:
                for request, (distance, removed) in nearest.get(digest, {}).items():
                    current = out.get((request, key))
                    if current is not None and current.match["distance"] <= distance:
                        continue
                    out[(request, key)] = _Hit(
                        removed,
                        key,
                        {
                            "signal": "pdq", "sha256": digest, "pdq_distance": distance, "distance": distance,
                            "original_sha256": removed.sha256,
                        },
                    )  # fmt: skip
        return out

    async def _pdqs(self, digests: set[str]) -> dict[str, str]:
        """digest → usable PDQ ("" when none), from the cache or one ``media`` query."""
        missing = sorted(d for d in digests if d not in self._pdq_cache)
        if missing:
            self.stats.media_queries += 1
            docs = await self._media.hashes(missing)
            if len(self._pdq_cache) + len(docs) > PDQ_CACHE_SIZE:
                self._pdq_cache.clear()
            for doc in docs:
                pdq = doc.get("pdq")
                self._pdq_cache[doc["_id"]] = pdq if doc.get("pdq_usable") and isinstance(pdq, str) else _UNUSABLE
        return {d: self._pdq_cache[d] for d in digests if d in self._pdq_cache}

    async def _reopen(self, batch: Batch, index: RemovedIndex, hit: _Hit) -> None:
        request = hit.removed.request
        if index.holds(request, hit.message):
            self.stats.already += 1
            return
        if hit.match["signal"] == "pdq":
            self.stats.pdq_hits += 1
        else:
            self.stats.exact_hits += 1
        try:
            reopened = await self.service.reopen_for_reupload(
                request, original=hit.removed.item, message_key=hit.message, match=hit.match
            )
        except StoreError:
            raise
        except TgwatchError as exc:  # e.g. the request was deleted or kept changing: keep the batch going
            self.stats.errors += 1
            batch.record_error(exc, record=hit.message)
            log.error("re-upload re-open failed", request=request, message=hit.message, error=exc.message)
            return
        index.items.setdefault(request, set()).add(f"message:{hit.message}")
        if reopened:
            self.stats.reopened += 1
        else:
            self.stats.already += 1


def _digests(doc: Doc) -> list[str]:
    """A stored message's known media digests (some may be missing while media failed)."""
    digests = doc.get("media_digests")
    if not digests:
        digests = [m.get("sha256") for m in doc.get("media") or [] if isinstance(m, dict)]
    return list(dict.fromkeys(d for d in digests if isinstance(d, str) and d))


__all__ = ["RemovedIndex", "RemovedMedia", "ReuploadStage", "ReuploadStats"]
