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
