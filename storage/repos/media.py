"""Distinct media (``_id`` = SHA-256 of the bytes), each hashed once, and where each was seen.

Sightings are written by the ingest door's ``persist`` stage for every stored message's media
digests (``MessageRepo.add_sightings``); this repository reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from storage.client import Doc, Store, translate_errors


class MediaRepo:
    def __init__(self, store: Store) -> None:
        self._media = store["media"]
        self._sightings = store["sightings"]

    async def insert(self, doc: Doc) -> bool:
        """Store a newly hashed media document; False when its SHA-256 is already known (a
        concurrent worker hashed the same bytes first), which leaves the stored one as it is."""
        with translate_errors("store media"):
            try:
                await self._media.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def known(self, digests: Sequence[str]) -> set[str]:
        """Which of these digests are already hashed (so each media is hashed once)."""
        if not digests:
            return set()
        with translate_errors("read media"):
            return {d["_id"] async for d in self._media.find({"_id": {"$in": list(digests)}}, {"_id": 1})}

    async def stream_hashes(
        self, fields: Sequence[str], *, since: datetime | None = None, batch_size: int = 5000
    ) -> AsyncIterator[list[Doc]]:
        """Every stored media item in batches, only ``_id`` and ``fields`` (retroactive matching reads
        all of them: a projection keeps the read small). ``since``: first seen at or after it."""
        flt: Doc = {} if since is None else {"first_seen_at": {"$gte": since}}
        projection = {f: 1 for f in fields}
        batch: list[Doc] = []
        with translate_errors("read media"):
            async for doc in self._media.find(flt, projection, batch_size=batch_size):
                batch.append(doc)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def sighting_span(self, sha256: str) -> Doc | None:
        """When and where a media item was seen: first/last ``seen_at``, count, channels, first message."""
        with translate_errors("list sightings"):
            docs = await self._sightings.find({"sha256": sha256}).to_list(None)
        if not docs:
            return None
        docs.sort(key=lambda d: (d["seen_at"], d["_id"]))
        return {
            "first_seen_at": docs[0]["seen_at"],
            "last_seen_at": docs[-1]["seen_at"],
            "sightings": len(docs),
            "channels": sorted({d["channel"] for d in docs if d.get("channel")}),
            "first_message": docs[0].get("message"),
            "first_posted_at": min((d["message_date"] for d in docs if d.get("message_date")), default=None),
        }

    async def add_matches(self, sha256: str, matches: Sequence[Doc]) -> None:
        """Record list matches found after the media was stored (one per list, signal type and value)."""
        with translate_errors("update media"):
            doc = await self._media.find_one({"_id": sha256})
            if doc is None:
                return
            have = {(m.get("list"), m.get("signal_type"), m.get("value")) for m in doc.get("matches") or []}
            new = [m for m in matches if (m.get("list"), m.get("signal_type"), m.get("value")) not in have]
            if new:
                doc.update(matches=[*(doc.get("matches") or []), *new], matched=True)
                await self._media.replace_one({"_id": sha256}, doc)

    async def get(self, sha256: str) -> Doc | None:
        with translate_errors("get media"):
            return await self._media.find_one({"_id": sha256})

    async def sightings(self, sha256: str) -> list[Doc]:
        with translate_errors("list sightings"):
            return await self._sightings.find({"sha256": sha256}).to_list(None)
