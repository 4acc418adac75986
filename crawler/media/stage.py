"""The ingest stage that turns media references into hashed, matched, quarantined media.

Runs before ``version`` so digests take part in versioning. For every media reference without a
digest it fetches the bytes through the source's fetcher, hashes them in the process pool (each
distinct SHA-256 once: known media are not hashed again), keeps them encrypted in quarantine,
matches new media against the hash lists (alert +
higher detection priority on a match) and queues them for the detection service. A bad media item
gets a clear ``MediaError`` on its reference and in ``errors``; the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from config import Settings
from crawler.detection.service import DetectionService
from crawler.hashing.idle import MediaHasher
from crawler.hashing.ocr import ocr_bytes_kind, read_text, read_text_in_child
from crawler.hashing.pool import MediaHashes
from crawler.hashing.video import frames_to_json
from crawler.ingest import Batch
from crawler.media.fetchers import MediaFetcher
from crawler.media.hygiene import RunawayGuard
from crawler.media.matcher import Matcher, MatchHit, raise_match_alerts
from foundation import metrics
from foundation.errors import MediaError, SourceError, Undecodable
from foundation.logs import get_logger
from foundation.models import Alert, MediaKind, MediaRef, Message, Source, utcnow
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo

log = get_logger(__name__)


#: reference kinds whose bytes must decode as an image or a video
VISUAL = frozenset({MediaKind.PHOTO, MediaKind.VIDEO, MediaKind.ROUND_VIDEO, MediaKind.GIF})


@dataclass
class _Outcome:
    sha256: str | None = None
    error: dict[str, Any] | None = None
    new: bool = False
    matches: int = 0


class MediaStage:
    name = "media"
    essential = False

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        hasher: MediaHasher,
        fetchers: dict[Source, MediaFetcher],
        matcher: Matcher,
        detection: DetectionService | None,
    ) -> None:
        self._settings = settings
        self._hasher = hasher
        self._fetchers = fetchers
        self._matcher = matcher
        self._detection = detection
        self._messages = MessageRepo(store)
        self._media = MediaRepo(store)
        self._alerts = AlertRepo(store)
        self._channels = ChannelRepo(store)
        self._limit = asyncio.Semaphore(settings.media.concurrency)
        self._ocr_slot = asyncio.Semaphore(1)  # one OCR at a time: Tesseract is CPU-bound
        self._guard = RunawayGuard(store, settings.exchanges)

    async def __call__(self, batch: Batch) -> None:
        if not any(m.media for m in batch.messages):
            return
        current = await self._messages.current(m.key for m in batch.messages if m.media)
        flagged = await self._flagged_channels({m.channel_key for m in batch.messages if m.media})
        wanted: dict[str, list[tuple[int, int]]] = {}
        for mi, msg in enumerate(batch.messages):
            known = _known_digests(current.get(msg.key), msg)
            for di, ref in enumerate(msg.media):
                if ref.sha256 is None and known is not None:
                    batch.messages[mi] = msg = _with_media(msg, di, sha256=known[di])
                elif ref.sha256 is None:
                    wanted.setdefault(_fetch_key(msg, ref), []).append((mi, di))
        outcomes = await asyncio.gather(
            *(self._one(batch, batch.messages[slots[0][0]], slots[0][1], flagged) for slots in wanted.values())
        )
        for slots, outcome in zip(wanted.values(), outcomes, strict=True):
            for mi, di in slots:
                batch.messages[mi] = _with_media(batch.messages[mi], di, sha256=outcome.sha256, error=outcome.error)
            batch.result.media_hashed += int(outcome.new)
            batch.result.matches += outcome.matches

    async def _one(self, batch: Batch, msg: Message, di: int, flagged: set[str]) -> _Outcome:
        ref = msg.media[di]
        fetcher = self._fetchers.get(msg.source)
        if fetcher is None:
            return _Outcome(error={"kind": "no_fetcher", "message": f"no media fetcher for {msg.source} sources"})
        async with self._limit:
            try:
                data = await fetcher.fetch(ref)
                hashes = await self._hasher.hash_media(data)
            except (MediaError, SourceError) as exc:
                batch.record_error(exc, record=msg.key)
                batch.result.media_errors += 1
                return _Outcome(error=exc.to_doc())
        outcome = _Outcome(sha256=hashes.sha256)
        if hashes.error is None and hashes.kind == "other" and ref.kind in VISUAL:
            # content is sniffed, never trusted: a "photo" that is an HTML page is not media
            hashes = replace(hashes, error=Undecodable(f"{ref.kind} link served {hashes.mime or 'unrecognised bytes'}"))
        if hashes.error is not None:
            outcome.error = hashes.error.to_doc()
            batch.record_error(hashes.error, record=msg.key)
            batch.result.media_errors += 1
        if self._settings.media.quarantine and self._detection is not None:
            self._detection.quarantine.put(data)
        if await self._media.known([hashes.sha256]):
            return outcome  # hashed, matched and queued when first seen
        is_media = hashes.kind != "other" or ref.kind not in VISUAL
        matches = await self._matcher.match(hashes) if is_media else []
        if matches:  # a runaway list entry is quarantined here, its hit dropped
            matches = await self._guard.admit(hashes.sha256, matches)
        outcome.new = await self._insert_media(hashes, ref, matches)
        outcome.matches = len(matches) if outcome.new else 0
        if outcome.new and self._settings.media.ocr and ocr_bytes_kind(hashes.kind) and hashes.error is None:
            await self._read_text(batch, msg, hashes.sha256, hashes.kind, data)
        if outcome.new and is_media:
            channel = msg.channel_key or ""
            if matches:
                for hit in matches:
                    metrics.count_hash_match(hit.signal_type)
                batch.alerts += await self._alert(hashes.sha256, matches, channel, msg)
            if self._detection is not None:
                await self._detection.enqueue(
                    hashes.sha256,
                    matched=bool(matches),
                    flagged_channel=channel in flagged,
                    context={
                        "matched": bool(matches),
                        "lists": sorted({m.list for m in matches}),
                        "kind": ref.kind.value,
                        "mime": hashes.mime,
                        "first_seen": f"{channel}/{msg.msg_id}",
                    },
                )
        return outcome

    async def _insert_media(self, hashes: MediaHashes, ref: MediaRef, matches: list[MatchHit]) -> bool:
        doc: Doc = {
            "_id": hashes.sha256,
            "md5": hashes.md5,
            "size": hashes.size,
            "mime": hashes.mime,
            "kind": hashes.kind,
            "media_kind": ref.kind.value,
            "width": hashes.width,
            "height": hashes.height,
            "pdq": hashes.pdq.hash if hashes.pdq else None,
            "pdq_quality": hashes.pdq.quality if hashes.pdq else None,
            "pdq_usable": bool(hashes.pdq and hashes.pdq.quality >= self._settings.matching.pdq_quality_floor),
            "frame_pdqs": [f"{h.hash},{h.quality}" for h in hashes.frames],
            "vpdq": frames_to_json(list(hashes.video_frames)) if hashes.video_frames else None,
            "hash_error": hashes.error.to_doc() if hashes.error else None,
            "matches": [m.to_json() for m in matches],
            "matched": bool(matches),
            "first_seen_at": utcnow(),
        }
        return await self._media.insert(doc)

    async def _read_text(self, batch: Batch, msg: Message, sha256: str, kind: str, data: bytes) -> None:
        """OCR, one item at a time per process (Tesseract is CPU-bound), bounded by its timeout; the
        text or the failure is stored on the media document."""
        media = self._settings.media
        async with self._ocr_slot:
            if kind == "video":  # keyframes need PyAV, kept out of crawling processes
                result = await read_text_in_child(
                    data, kind, languages=media.ocr_languages, seconds=media.ocr_timeout_seconds
                )
            else:
                result = await asyncio.to_thread(
                    read_text, data, kind, languages=media.ocr_languages, timeout=media.ocr_timeout_seconds
                )
        error = result.error or {}
        await self._media.set_ocr(
            sha256,
            {
                "ocr_text": result.text,
                "ocr_languages": result.languages,
                "ocr_engine": result.engine,
                "ocr_frames": result.frames,
                "ocr_seconds": round(result.seconds, 3),
                "ocr_error": error.get("kind"),
                "ocr_error_message": error.get("message"),
                "ocr_at": utcnow().timestamp(),
            },
        )
        if error and error.get("kind") != "ocr_unavailable":
            batch.record_error({"kind": str(error["kind"]), "message": f"OCR of {sha256}: {error.get('message')}"},
                               record=msg.key)  # fmt: skip

    async def _alert(self, sha256: str, matches: list[MatchHit], channel: str, msg: Message) -> list[Alert]:
        """Raise one alert per matched list; the ones that are new (for the takedown policy stage)."""
        context = {"message": f"{channel}/{msg.msg_id}", "permalink": msg.permalink}
        return await raise_match_alerts(self._alerts, sha256, matches, channels=[channel], context=context)

    async def _flagged_channels(self, keys: set[str | None]) -> set[str]:
        return await self._channels.risky([k for k in keys if k])


def _fetch_key(msg: Message, ref: MediaRef) -> str:
    if ref.locator and "id" in ref.locator:
        return f"{msg.source}:{ref.kind}:{ref.locator['id']}"
    return f"{msg.source}:{ref.url or id(ref)}"


def _known_digests(existing: Doc | None, msg: Message) -> list[str] | None:
    """Digests an earlier crawl computed for the same unchanged message (so nothing is refetched)."""
    if existing is None or existing.get("content_hash") != msg.content_hash():
        return None
    digests = existing.get("media_digests")
    return list(digests) if digests and len(digests) == len(msg.media) else None


def _with_media(msg: Message, index: int, **update: Any) -> Message:
    media = list(msg.media)
    media[index] = media[index].model_copy(update=update)
    return msg.model_copy(update={"media": media})
