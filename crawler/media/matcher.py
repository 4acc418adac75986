"""Matching media hashes against the enabled hash lists.

Exact signal types (sha256, md5) are looked up in the store by index. PDQ goes through an in-memory
``PdqIndex`` (exact up to the configured distance) that is rebuilt only when a list is imported,
enabled, disabled or deleted. A PDQ below the quality floor is kept on the media but never matched:
low-quality hashes (flat or tiny images) collide with everything. Video uses Meta's vPDQ rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import MatchingSettings
from crawler.hashing.index import PdqIndex
from crawler.hashing.pool import MediaHashes
from crawler.hashing.video import FrameHash, compare, frames_from_json
from storage.client import Store
from storage.repos.hashlists import HashListRepo


@dataclass(frozen=True)
class MatchHit:
    list: str
    signal_type: str
    value: str
    distance: float
    label: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "signal_type": self.signal_type,
            "value": self.value,
            "distance": self.distance,
            "label": self.label,
        }


class Matcher:
    def __init__(self, store: Store, settings: MatchingSettings) -> None:
        self._repo = HashListRepo(store)
        self._settings = settings
        self._state: tuple[Any, ...] | None = None
        self._enabled: set[str] = set()
        self._pdq = PdqIndex(max_distance=settings.pdq_max_distance)
        self._pdq_entries: dict[str, dict[str, Any]] = {}
        self._vpdq: list[tuple[dict[str, Any], list[FrameHash]]] = []

    async def refresh(self) -> None:
        state = await self._repo.state()
        if state == self._state:
            return
        self._enabled = await self._repo.enabled_names()
        pdq_docs = await self._repo.entries("pdq", self._enabled)
        index = PdqIndex(max_distance=self._settings.pdq_max_distance)
        if pdq_docs:
            index.add([d["_id"] for d in pdq_docs], [d["value"] for d in pdq_docs])
        self._pdq, self._pdq_entries = index, {d["_id"]: d for d in pdq_docs}
        self._vpdq = [(d, frames_from_json(d["value"])) for d in await self._repo.entries("vpdq", self._enabled)]
        self._state = state

    async def match(self, hashes: MediaHashes) -> list[MatchHit]:
        await self.refresh()
        if not self._enabled:
            return []
        hits: list[MatchHit] = []
        for signal_type, value in (("sha256", hashes.sha256), ("md5", hashes.md5)):
            for doc in await self._repo.exact(signal_type, [value], self._enabled):
                hits.append(MatchHit(doc["list"], signal_type, doc["value"], 0, doc.get("label")))
        hits += self._match_pdq(hashes)
        hits += self._match_vpdq(hashes)
        return hits

    def _match_pdq(self, hashes: MediaHashes) -> list[MatchHit]:
        if not self._pdq_entries:
            return []
        usable = [h.hash for h in (hashes.pdq, *hashes.frames) if h and h.quality >= self._settings.pdq_quality_floor]
        if self._settings.dihedral and hashes.pdq and hashes.pdq.quality >= self._settings.pdq_quality_floor:
            usable += list(hashes.dihedral)
        if not usable:
            return []
        best: dict[str, float] = {}
        for match in self._pdq.query(usable, self._settings.pdq_max_distance):
            entry_id = str(match.id)
            best[entry_id] = min(best.get(entry_id, 999.0), float(match.distance))
        return [
            MatchHit(
                self._pdq_entries[e]["list"], "pdq", self._pdq_entries[e]["value"], d, self._pdq_entries[e].get("label")
            )
            for e, d in sorted(best.items(), key=lambda kv: kv[1])
        ]

    def _match_vpdq(self, hashes: MediaHashes) -> list[MatchHit]:
        if not self._vpdq or not hashes.video_frames:
            return []
        floor = self._settings.pdq_quality_floor
        query = [f for f in hashes.video_frames if f.quality >= floor]
        hits = []
        for doc, target in self._vpdq:
            result = compare(query, target, distance=self._settings.pdq_max_distance, quality=floor)
            if (
                result.query_match_percent >= self._settings.vpdq_query_percent
                and result.target_match_percent >= self._settings.vpdq_target_percent
            ):
                hits.append(
                    MatchHit(
                        doc["list"], "vpdq", doc["value"], round(100 - result.query_match_percent, 2), doc.get("label")
                    )
                )
        return hits
