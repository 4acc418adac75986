"""Retroactive matching: a hash list's new entries against every media item already stored.

A victim's hashes usually arrive *after* the images spread, so importing, enabling or syncing a
list must look back, not only forward. The crawl-time :class:`~crawler.media.matcher.Matcher`
covers media stored from then on; this covers what was stored before, and raises the same
``match/<list>/<sha256>`` alerts through the same :func:`~crawler.media.matcher.raise_match_alerts`,
with ``retroactive: true`` and the media's original sighting times in ``details``. Alert ids are
natural keys, so a pair matched both ways is one alert.

Incremental: every entry carries its import ``batch`` and the list its ``retro_batch`` watermark,
so a run matches only the entries after the watermark (re-importing the same file adds no entry,
hence matches nothing). A list disabled for a while also gets its older entries matched against the
media first seen since ``disabled_at`` (the crawl did not match those against it). A disabled list
is not matched at all; enabling it catches up.

Matching is generic over the signal registry: each type's index (``SignalType.build_index``) is
built over the new entries and each stored medium's queries come from ``SignalType.media_signals``
on the hashes rebuilt from the stored document — the same rules as crawl time (quality floor, vPDQ
percentages). Stored media are read in projected batches (:meth:`MediaRepo.stream_hashes`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config import Settings
from crawler.hashing import signals
from crawler.hashing.images import PdqHash
from crawler.hashing.pool import MediaHashes
from crawler.hashing.signals import SignalIndex, SignalType
from crawler.hashing.video import frames_from_json
from crawler.media.hygiene import ALLOW, RunawayGuard
from crawler.media.matcher import Matcher, MatchHit, apply_rules, raise_match_alerts
from crawler.media.stage import VISUAL
from foundation.logs import get_logger
from foundation.models import Alert
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo
from storage.repos.runs import RunRepo

log = get_logger(__name__)

#: what of a stored media document matching reads (the rest stays on disk)
STORED_FIELDS = ("md5", "kind", "media_kind", "mime", "size", "pdq", "pdq_quality", "frame_pdqs", "vpdq")
#: channels copied into one alert (a media item may have been seen in very many)
MAX_ALERT_CHANNELS = 50


class UnknownList(LookupError):
    """No hash list of that name."""


@dataclass
class RetroResult:
    """Figures of one run (also written to its run record)."""

    list: str
    run_id: str | None = None
    status: str = "ok"  # ok | disabled | error
    entries: int = 0  # list entries matched (new ones, plus older ones against a disabled window)
    media_scanned: int = 0
    media_matched: int = 0
    alerts_raised: int = 0  # new alerts (an alert that already existed is not raised again)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # read, match, alert, index (seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "run_id": self.run_id,
            "status": self.status,
            "entries": self.entries,
            "media_scanned": self.media_scanned,
            "media_matched": self.media_matched,
            "alerts_raised": self.alerts_raised,
            "seconds": round(self.seconds, 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
        }


def stored_hashes(doc: Doc) -> MediaHashes:
    """The hashes of a stored media document, as the hash pool gave them (dihedral PDQs are not
    stored, so a retroactive match never uses them)."""
    pdq = PdqHash(doc["pdq"], int(doc.get("pdq_quality") or 0)) if doc.get("pdq") else None
    frames = []
    for text in doc.get("frame_pdqs") or ():
        value, _, quality = str(text).partition(",")
        frames.append(PdqHash(value, int(quality or 0)))
    vpdq = doc.get("vpdq")
    return MediaHashes(
        sha256=doc["_id"],
        md5=doc.get("md5") or "",
        size=int(doc.get("size") or 0),
        mime=doc.get("mime"),
        kind=doc.get("kind") or "other",
        pdq=pdq,
        frames=tuple(frames),
        video_frames=tuple(frames_from_json(vpdq)) if vpdq else (),
    )


@dataclass(frozen=True)
class _Listed:
    kind: type[SignalType]
    index: SignalIndex
    entries: dict[Hashable, Doc]


#: called with each new retroactive alert (the takedown policy: draft or send per the list)
AlertHook = Callable[[Alert], Awaitable[object]]


class RetroMatcher:
    """``retro_match(list_name)``: what import, enable, a list sync and ``hashes rematch`` call."""

    def __init__(
        self, store: Store, settings: Settings, *, batch_size: int = 5000, on_alert: AlertHook | None = None
    ) -> None:
        self._on_alert = on_alert
        self._lists = HashListRepo(store)
        self._media = MediaRepo(store)
        self._alerts = AlertRepo(store)
        self._runs = RunRepo(store)
        self._messages = MessageRepo(store)
        self._rules = settings.matching
        self._batch_size = batch_size
        self._guard = RunawayGuard(store, settings.exchanges)
        self._allow = Matcher(store, settings.matching)  # allow-lists and list thresholds
        self._list_docs: dict[str, Doc] = {}

    async def retro_match(self, name: str, *, trigger: str = "manual") -> RetroResult:
        """Match the list's entries not yet matched retroactively; ``UnknownList`` if there is none."""
        doc = await self._lists.get(name)
        if doc is None:
            raise UnknownList(f"no hash list {name!r}")
        result = RetroResult(name)
        if not doc.get("enabled", True):
            result.status = "disabled"
            return result
        if doc.get("role") == ALLOW:  # an allow-list raises nothing: it only suppresses
            await self._lists.mark_retro_matched(name, int(doc.get("batch", 0)))
            result.status = "allow_list"
            return result
        self._list_docs = await self._allow.list_docs()
        started = time.perf_counter()
        async with self._runs.record(f"hashlist:{name}", "retro_match", trigger=trigger) as run:
            result.run_id = run.id
            run.failed_status = "error"
            try:
                watermark = doc.get("retro_batch")
                top = int(doc.get("batch", 0))
                t = time.perf_counter()
                fresh = await self._lists.list_entries(name, after_batch=watermark)
                result.phases["entries"] = time.perf_counter() - t
                await self._scan(fresh, None, result)
                disabled_at = doc.get("disabled_at")
                if watermark is not None and isinstance(disabled_at, datetime):
                    older = await self._lists.list_entries(name, up_to_batch=watermark)
                    await self._scan(older, disabled_at, result)
                await self._lists.mark_retro_matched(name, top)
            except Exception as exc:
                result.status = "error"
                result.seconds = time.perf_counter() - started
                run.extra = {"error": f"{type(exc).__name__}: {exc}", "retro": result.to_json()}
                raise
            result.seconds = time.perf_counter() - started
            await self._runs.add(
                run.id,
                entries=result.entries,
                media_scanned=result.media_scanned,
                media_matched=result.media_matched,
                alerts_raised=result.alerts_raised,
            )
            run.extra = {"retro": result.to_json()}
        log.info("retro_match", **result.to_json())
        return result

    async def _scan(self, entries: list[Doc], since: datetime | None, result: RetroResult) -> None:
        """``entries`` against every media item stored (first seen at or after ``since``)."""
        if not entries:
            return
        result.entries += len(entries)
        t = time.perf_counter()
        listed = self._indexes(entries)
        _add(result.phases, "index", time.perf_counter() - t)
        t = time.perf_counter()
        async for batch in self._media.stream_hashes(STORED_FIELDS, since=since, batch_size=self._batch_size):
            _add(result.phases, "read", time.perf_counter() - t)
            t = time.perf_counter()
            result.media_scanned += len(batch)
            media = [stored_hashes(d) for d in batch if _is_media(d)]
            found = self._match_batch(listed, media)
            _add(result.phases, "match", time.perf_counter() - t)
            t = time.perf_counter()
            by_sha = {m.sha256: m for m in media}
            for sha256, raw in found.items():
                hits = apply_rules(raw, self._list_docs)
                if not hits or await self._allow.allowed(by_sha[sha256]):
                    continue
                hits = await self._guard.admit(sha256, hits)
                if not hits:
                    continue
                result.media_matched += 1
                result.alerts_raised += len(await self._alert(sha256, hits))
            _add(result.phases, "alert", time.perf_counter() - t)
            t = time.perf_counter()
        _add(result.phases, "read", time.perf_counter() - t)

    def _indexes(self, entries: list[Doc]) -> list[_Listed]:
        """One index per registered signal type with entries here, in registry order (exact first)."""
        by_type: dict[str, list[Doc]] = {}
        for doc in entries:
            by_type.setdefault(doc["signal_type"], []).append(doc)
        listed = []
        for kind in signals.SIGNAL_TYPES.values():
            docs = by_type.get(kind.name)
            if docs:
                index = kind.build_index([d["_id"] for d in docs], [d["value"] for d in docs], self._rules)
                listed.append(_Listed(kind, index, {d["_id"]: d for d in docs}))
        return listed

    def _match_batch(self, listed: list[_Listed], media: list[MediaHashes]) -> dict[str, list[MatchHit]]:
        """Hits per media item: by type (registry order), then nearest first — as crawl time orders them."""
        found: dict[str, list[MatchHit]] = {}
        for one in listed:
            queries: list[str] = []
            owner: list[int] = []
            for i, hashes in enumerate(media):
                mine = one.kind.media_signals(hashes, self._rules)
                queries += mine
                owner += [i] * len(mine)
            if not queries:
                continue
            best: dict[tuple[int, Hashable], float] = {}
            for hit in one.index.query(queries):
                key = (owner[hit.query], hit.id)
                best[key] = min(best.get(key, float("inf")), float(hit.distance))
            for (i, entry_id), distance in sorted(best.items(), key=lambda kv: (kv[0][0], kv[1])):
                doc = one.entries[entry_id]
                match = MatchHit(doc["list"], one.kind.name, doc["value"], distance, doc.get("label"))
                found.setdefault(media[i].sha256, []).append(match)
        return found

    async def _alert(self, sha256: str, hits: list[MatchHit]) -> list[Alert]:
        span = await self._media.sighting_span(sha256)
        context: dict[str, Any] = {"retroactive": True}
        channels: list[str] = []
        if span is not None:
            channels = span["channels"][:MAX_ALERT_CHANNELS]
            message = await self._messages.get(span["first_message"]) if span["first_message"] else None
            context.update(
                message=span["first_message"],
                permalink=(message or {}).get("permalink"),
                first_seen_at=span["first_seen_at"],
                last_seen_at=span["last_seen_at"],
                first_posted_at=span["first_posted_at"],
                sightings=span["sightings"],
            )
        else:  # stored media never seen in a message (should not happen): the media's own time
            media = await self._media.get(sha256)
            first = (media or {}).get("first_seen_at")
            context.update(message=None, permalink=None, first_seen_at=first, last_seen_at=first, sightings=0)
        await self._media.add_matches(sha256, [{**h.to_json(), "retroactive": True} for h in hits])
        raised = await raise_match_alerts(self._alerts, sha256, hits, channels=channels, context=context)
        if self._on_alert is not None:  # the list's takedown policy, as for a crawl-time match
            for alert in raised:
                await self._on_alert(alert)
        return raised


def _is_media(doc: Doc) -> bool:
    """As at crawl time: a "photo" or "video" whose bytes were no image or video is not matched."""
    return doc.get("kind") != "other" or doc.get("media_kind") not in {k.value for k in VISUAL}


def _add(phases: dict[str, float], name: str, seconds: float) -> None:
    phases[name] = phases.get(name, 0.0) + seconds


async def retro_match(
    store: Store, settings: Settings, name: str, *, trigger: str = "manual", on_alert: AlertHook | None = None
) -> RetroResult:
    """Match list ``name``'s new entries against every stored media item (see the module doc);
    ``on_alert`` gets every new alert (the shell passes the takedown policy hook)."""
    return await RetroMatcher(store, settings, on_alert=on_alert).retro_match(name, trigger=trigger)
