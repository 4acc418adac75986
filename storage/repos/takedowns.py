"""Takedown requests and their re-check log.

A request document is written whole (insert, then replace): it holds datetimes, which the embedded
server would turn into strings under ``$set``. Changes are serialised by a short lock on the
document (``lock``/``lock_until``, taken with ``find_one_and_update``; the replace that ends a
change writes the document without them, which releases it). Re-check results go to
``takedown_checks``, insert-only and keyed by the item's check number, so a replayed run writes
nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument

from foundation.errors import StoreError
from storage.client import Doc, Store, insert_new, translate_errors

COUNTER = "takedowns"


class TakedownRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["takedowns"]
        self._checks = store["takedown_checks"]
        self._counters = store["counters"]

    async def next_number(self) -> int:
        with translate_errors("number a takedown request"):
            doc = await self._counters.find_one_and_update(
                {"_id": COUNTER}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
        if doc is None:  # upsert with ReturnDocument.AFTER always returns the document
            raise StoreError("counter update returned nothing")
        return int(doc["n"])

    async def insert(self, doc: Doc) -> None:
        with translate_errors("store takedown request"):
            await self._coll.insert_one(doc)

    async def lock(self, request_id: str, token: str, now_ts: float, seconds: float) -> bool:
        """Take the request's change lock unless someone holds an unexpired one (False then, or
        when the request does not exist). Epoch seconds and a string: safe under ``$set``."""
        with translate_errors("lock takedown request"):
            doc = await self._coll.find_one_and_update(
                # not {"_id", "$or"}: the embedded server drops the _id from such an update filter
                {"$and": [{"_id": request_id}, {"$or": [{"lock_until": None}, {"lock_until": {"$lt": now_ts}}]}]},
                {"$set": {"lock": token, "lock_until": now_ts + seconds}},
                {"_id": 1},
            )
        return doc is not None

    async def replace_locked(self, doc: Doc, token: str) -> bool:
        """Write ``doc`` (which carries no lock: writing it releases the lock) if we still hold the lock."""
        with translate_errors("update takedown request"):
            result = await self._coll.replace_one({"_id": doc["_id"], "lock": token}, doc)
        return bool(result.matched_count)

    async def unlock(self, request_id: str, token: str) -> None:
        with translate_errors("unlock takedown request"):
            await self._coll.update_one(
                {"_id": request_id, "lock": token}, {"$set": {"lock": None, "lock_until": None}}
            )

    async def get(self, request_id: str) -> Doc | None:
        with translate_errors("get takedown request"):
            return await self._coll.find_one({"_id": request_id})

    async def recent(
        self, *, statuses: Sequence[str] | None = None, before_ts: float | None = None, limit: int = 50
    ) -> list[Doc]:
        """Newest first; ``before_ts`` pages on ``created_ts``."""
        flt: Doc = {}
        if statuses:
            flt["status"] = {"$in": list(statuses)}
        if before_ts is not None:
            flt["created_ts"] = {"$lt": before_ts}
        with translate_errors("list takedown requests"):
            return await self._coll.find(flt).sort("created_ts", -1).limit(limit).to_list(None)

    async def all(self, projection: Doc | None = None) -> list[Doc]:
        """Every request (figures are computed over all of them)."""
        with translate_errors("read takedown requests"):
            return await self._coll.find({}, projection).to_list(None)

    async def due(self, now_ts: float, limit: int) -> list[Doc]:
        """Open requests with an item due a re-check at ``now_ts``, most overdue first."""
        with translate_errors("find takedown re-checks"):
            cursor = self._coll.find({"open": True, "next_check_ts": {"$lte": now_ts}}).sort("next_check_ts", 1)
            return await cursor.limit(limit).to_list(None)

    async def with_item(self, item_id: str) -> list[Doc]:
        with translate_errors("find takedown requests of an item"):
            return await self._coll.find({"item_ids": {"$in": [item_id]}}).to_list(None)

    async def open_with_digest(self, sha256: str) -> list[Doc]:
        """Open requests naming media ``sha256`` (a policy draft is not made twice for the same media)."""
        with translate_errors("find takedown requests by media"):
            docs = await self._coll.find({"digests": {"$in": [sha256]}}).to_list(None)
        return [d for d in docs if d.get("open")]

    async def removed_media(self) -> list[Doc]:
        """Requests holding a removed item with media (what re-upload matching watches for)."""
        with translate_errors("read removed takedown media"):
            cursor = self._coll.find({"items.status": "removed"}, {"items": 1, "status": 1})
            return await cursor.to_list(None)

    async def add_checks(self, docs: Sequence[Doc]) -> int:
        return await insert_new(self._checks, list(docs), "store takedown checks")

    async def checks(self, request_id: str, limit: int = 500) -> list[Doc]:
        with translate_errors("list takedown checks"):
            cursor = self._checks.find({"request": request_id}).sort("checked_at", -1)
            return await cursor.limit(limit).to_list(None)

    async def state(self) -> Any:
        """A cheap token that changes when any request changes (for caches of removed media)."""
        with translate_errors("read takedown state"):
            doc = await self._counters.find_one({"_id": "takedowns_removed"})
        return None if doc is None else doc.get("n")

    async def bump_state(self) -> None:
        with translate_errors("bump takedown state"):
            await self._counters.update_one({"_id": "takedowns_removed"}, {"$inc": {"n": 1}}, upsert=True)
