"""Distinct media (``_id`` = SHA-256 of the bytes), each hashed once, and where each was seen.

Sightings are written by the ingest door's ``persist`` stage for every stored message's media
digests (``MessageRepo.add_sightings``); this repository reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    async def get(self, sha256: str) -> Doc | None:
        with translate_errors("get media"):
            return await self._media.find_one({"_id": sha256})

    async def sightings(self, sha256: str) -> list[Doc]:
        with translate_errors("list sightings"):
            return await self._sightings.find({"sha256": sha256}).to_list(None)

    # -- reads for the investigator API ----------------------------------------------------------
    async def sightings_of(self, sha256: str) -> list[Doc]:
        """Every sighting of one item, first seen first."""
        with translate_errors("read media"):
            return await self._sightings.find({"sha256": sha256}).sort("first_seen_at", 1).to_list(None)

    async def sighting_channels(self, sha256: str) -> list[str]:
        with translate_errors("read sightings"):
            found = await self._sightings.distinct("channel", {"sha256": sha256})
        return [c for c in found if isinstance(c, str)]

    async def with_md5(self, md5: str) -> list[str]:
        """Digests of the items with this MD5."""
        with translate_errors("read media"):
            return [d["_id"] async for d in self._media.find({"md5": md5}, {"_id": 1})]

    async def matched(self) -> list[str]:
        """Digests of the items marked ``matched`` (an imported hash list named them)."""
        with translate_errors("read hash matches"):
            found = await self._media.distinct("_id", {"matched": True})
        return [s for s in found if isinstance(s, str)]
