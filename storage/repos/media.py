"""Distinct media (``_id`` = SHA-256 of the bytes) and every place each was seen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from storage.client import Doc, Store, translate_errors


class MediaRepo:
    def __init__(self, store: Store) -> None:
        self._media = store["media"]
        self._sightings = store["sightings"]

    async def known(self, digests: Sequence[str]) -> set[str]:
        """Which of these digests are already hashed (so each media is hashed once)."""
        if not digests:
            return set()
        with translate_errors("read media"):
            return {d["_id"] async for d in self._media.find({"_id": {"$in": list(digests)}}, {"_id": 1})}

    async def upsert(self, sha256: str, fields: dict[str, Any], at: datetime) -> None:
        with translate_errors("store media"):
            await self._media.update_one(
                {"_id": sha256},
                {"$setOnInsert": {"first_seen_at": at, **fields}, "$set": {"last_seen_at": at}},
                upsert=True,
            )

    async def add_sightings(self, sightings: Sequence[Doc]) -> None:
        """Sightings are keyed ``<sha256>/<channel>/<msg_id>``: seeing it again only moves ``last_seen_at``."""
        if not sightings:
            return
        ops = [
            UpdateOne(
                {"_id": f"{s['sha256']}/{s['channel']}/{s['msg_id']}"},
                {"$setOnInsert": {**s, "first_seen_at": s["at"]}, "$set": {"last_seen_at": s["at"]}},
                upsert=True,
            )
            for s in sightings
        ]
        with translate_errors("store sightings"):
            await self._sightings.bulk_write(ops, ordered=False)

    async def get(self, sha256: str) -> Doc | None:
        with translate_errors("get media"):
            return await self._media.find_one({"_id": sha256})

    async def sightings(self, sha256: str) -> list[Doc]:
        with translate_errors("list sightings"):
            return await self._sightings.find({"sha256": sha256}).to_list(None)
