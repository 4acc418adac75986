"""Matching media hashes against the enabled hash lists, for every registered signal type.

Each type picks its query signals from the hashed media (``SignalType.media_signals``: the digests,
usable PDQs, the video's frames). Exact types (sha256, md5) are looked up in the store by its
``(signal_type, value)`` index: their lists can be huge and equality needs nothing in memory. Every
other type matches through its own in-memory index (``SignalType.index_cls``: PDQ's ``PdqIndex``,
vPDQ's frame index with Meta's rule), rebuilt only when a list is imported, enabled, disabled or
deleted, or a signal type is registered.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from config import MatchingSettings
from crawler.hashing import signals
from crawler.hashing.pool import MediaHashes
from crawler.hashing.signals import SignalIndex, SignalType
from foundation.models import Alert, AlertKind, utcnow
from storage.client import Doc, Store
from storage.repos.alerts import AlertRepo
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


@dataclass(frozen=True)
class _Listed:
    """One near-match type's enabled entries: the index and the entry documents by ``_id``."""

    index: SignalIndex
    entries: dict[Hashable, Doc]


ALLOW = "allow"
BLOCK = "block"
ROLES = (BLOCK, ALLOW)


def apply_rules(hits: list[MatchHit], lists: dict[str, Doc]) -> list[MatchHit]:
    """Hits within their list's own threshold; none at all when one of them is on an allow-list
    (list hygiene: ``crawler.media.hygiene``)."""
    kept = [h for h in hits if _within(h, lists.get(h.list) or {})]
    if any((lists.get(h.list) or {}).get("role") == ALLOW for h in kept):
        return []
    return kept


def allow_hits(hits: list[MatchHit], lists: dict[str, Doc]) -> list[MatchHit]:
    """The hits on allow-lists (within their thresholds)."""
    return [h for h in hits if _within(h, lists.get(h.list) or {}) and (lists.get(h.list) or {}).get("role") == ALLOW]


def _within(hit: MatchHit, doc: Doc) -> bool:
    """A list's own ``max_distance`` is a PDQ bit distance: it narrows PDQ hits (vPDQ's distance is
    a share of frames, exact types have none)."""
    limit = doc.get("max_distance")
    return limit is None or hit.signal_type != "pdq" or hit.distance <= float(limit)


class Matcher:
    def __init__(self, store: Store, settings: MatchingSettings) -> None:
        self._repo = HashListRepo(store)
        self._settings = settings
        self._state: tuple[Any, ...] | None = None
        self._enabled: set[str] = set()
        self._listed: dict[str, _Listed] = {}
        self._docs: dict[str, Doc] = {}

    async def refresh(self) -> None:
        state = (await self._repo.state(), tuple(signals.SIGNAL_TYPES))
        if state == self._state:
            return
        self._docs = {d["_id"]: d for d in await self._repo.lists()}
        self._enabled = {name for name, d in self._docs.items() if d.get("enabled", True)}
        listed: dict[str, _Listed] = {}
        for kind in signals.SIGNAL_TYPES.values():
            if kind.exact:
                continue
            docs = await self._repo.entries(kind.name, self._enabled)
            if docs:
                index = kind.build_index([d["_id"] for d in docs], [d["value"] for d in docs], self._settings)
                listed[kind.name] = _Listed(index, {d["_id"]: d for d in docs})
        self._listed = listed
        self._state = state

    async def match(self, hashes: MediaHashes) -> list[MatchHit]:
        """Hits on the enabled lists after list hygiene: each list's own threshold, and nothing at
        all for media on an allow-list."""
        return apply_rules(await self.match_raw(hashes), self._docs)

    async def allowed(self, hashes: MediaHashes) -> bool:
        """Whether the media matches an allow-list (known benign: no list match counts)."""
        return bool(allow_hits(await self.match_raw(hashes), self._docs))

    async def list_docs(self) -> dict[str, Doc]:
        await self.refresh()
        return dict(self._docs)

    async def match_raw(self, hashes: MediaHashes) -> list[MatchHit]:
        """Every hit on every enabled list (allow-lists included), before list hygiene."""
        await self.refresh()
        if not self._enabled:
            return []
        hits: list[MatchHit] = []
        for kind in signals.SIGNAL_TYPES.values():
            if kind.exact:
                hits += await self._match_exact(kind, hashes)
            elif kind.name in self._listed:
                hits += self._match_near(kind, self._listed[kind.name], hashes)
        return hits

    async def _match_exact(self, kind: type[SignalType], hashes: MediaHashes) -> list[MatchHit]:
        values = kind.media_signals(hashes, self._settings)
        return [
            MatchHit(doc["list"], kind.name, doc["value"], 0, doc.get("label"))
            for doc in await self._repo.exact(kind.name, values, self._enabled)
        ]

    def _match_near(self, kind: type[SignalType], listed: _Listed, hashes: MediaHashes) -> list[MatchHit]:
        """Each matched entry once, at its best distance over the queries; nearest first."""
        queries = kind.media_signals(hashes, self._settings)
        if not queries:
            return []
        best: dict[Hashable, float] = {}
        for hit in listed.index.query(queries):
            best[hit.id] = min(best.get(hit.id, float("inf")), float(hit.distance))
        out = []
        for entry_id, distance in sorted(best.items(), key=lambda kv: kv[1]):
            doc = listed.entries[entry_id]
            out.append(MatchHit(doc["list"], kind.name, doc["value"], distance, doc.get("label")))
        return out


async def raise_match_alerts(
    alerts: AlertRepo, sha256: str, matches: list[MatchHit], *, channels: list[str], context: dict[str, Any]
) -> list[Alert]:
    """The one way list matches become alerts, at crawl time and retroactively: one
    ``match/<list>/<sha256>`` alert per list (its best hit: ``matches`` come best first), so the same
    match raised twice is the same alert. ``context`` joins the hit in ``details`` (where the media
    was seen; ``retroactive`` and the sighting times for a late match). Returns the new ones (the
    takedown policy acts on them)."""
    raised: list[Alert] = []
    late = " (retroactive)" if context.get("retroactive") else ""
    for hit in {m.list: m for m in reversed(matches)}.values():  # best hit per list
        alert = Alert(
            key=f"match/{hit.list}/{sha256}",
            kind=AlertKind.HASH_MATCH,
            sha256=sha256,
            summary=f"media {sha256[:12]} matches list {hit.list!r} "
            f"({hit.signal_type}, distance {hit.distance:g}){late}",
            details={**hit.to_json(), **context},
            channels=channels,
            raised_at=utcnow(),
        )
        if await alerts.raise_alert(alert):
            raised.append(alert)
    return raised
