"""Enrolled persons of the consent-based watchlist: one document per person reference.

The document holds the consent record (reference to the signed consent, case, who enrolled, when,
expiry, its ledger seq) and, while the enrollment is active, the *sealed* embeddings (AES-GCM,
base64; ``crawler.watchlist.sealing``). A withdrawal replaces the document with one that has no
``sealed`` field at all: the embeddings are erased, the consent history stays.
"""

from __future__ import annotations

import builtins

from pymongo.errors import DuplicateKeyError

from storage.client import Doc, Store, translate_errors

#: never returned by listings: only the detector's gallery read and the owner's erasure see it
SEALED = "sealed"


class WatchlistRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["watchlist"]

    async def insert(self, doc: Doc) -> bool:
        """Store a new enrollment; False when the reference is taken (withdrawn ones included:
        a reference names one consent, and a new consent gets a new reference)."""
        with translate_errors("enroll"):
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def get(self, ref: str) -> Doc | None:
        with translate_errors("read watchlist"):
            return await self._coll.find_one({"_id": ref}, {SEALED: 0})

    async def list(self, *, state: str | None = None) -> builtins.list[Doc]:
        flt: Doc = {"state": state} if state else {}
        with translate_errors("list watchlist"):
            return await self._coll.find(flt, {SEALED: 0}).sort("_id", 1).to_list(None)

    async def sealed_active(self) -> builtins.list[Doc]:
        """Active enrollments with their sealed embeddings (``_id``, ``sealed``, ``expires_ts`` only)."""
        with translate_errors("read watchlist gallery"):
            cursor = self._coll.find({"state": "active"}, {"_id": 1, SEALED: 1, "expires_ts": 1})
            return await cursor.to_list(None)

    async def raw(self, ref: str) -> Doc | None:
        """The whole stored document (tests and the erasure check read it to prove nothing is left)."""
        with translate_errors("read watchlist"):
            return await self._coll.find_one({"_id": ref})

    async def replace(self, doc: Doc) -> None:
        """Write ``doc`` whole (datetimes stay datetimes on the embedded server; a field left out is gone)."""
        with translate_errors("update watchlist"):
            await self._coll.replace_one({"_id": doc["_id"]}, doc)

    async def expired_refs(self, now_ts: float) -> builtins.list[str]:
        with translate_errors("read watchlist"):
            docs = await self._coll.find({"state": "active", "expires_ts": {"$lte": now_ts}}, {"_id": 1}).to_list(None)
        return [str(d["_id"]) for d in docs]
