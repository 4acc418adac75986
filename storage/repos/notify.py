"""Notification rules, the delivery log and each sink's rate window.

Documents here are plain data (the feature, ``crawler.notify``, owns their meaning). A rule holds
the *name* of the environment variable with a webhook's secret, never the secret.
"""

from __future__ import annotations

import uuid
from typing import Any

from storage.client import Doc, Store, translate_errors


class NotifyRuleRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["notify_rules"]

    async def add(self, doc: Doc) -> bool:
        """Insert a rule named ``doc['_id']``; False when that name is taken."""
        from pymongo.errors import DuplicateKeyError

        with translate_errors("add notification rule"):
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def get(self, name: str) -> Doc | None:
        with translate_errors("read notification rule"):
            return await self._coll.find_one({"_id": name})

    async def list(self) -> list[Doc]:
        with translate_errors("list notification rules"):
            return await self._coll.find({}).sort("_id", 1).to_list(None)

    async def remove(self, name: str) -> bool:
        with translate_errors("remove notification rule"):
            res = await self._coll.delete_one({"_id": name})
        return bool(res.deleted_count)


class NotifyLogRepo:
    """Every attempt to send and what became of it; insert-only."""

    def __init__(self, store: Store) -> None:
        self._coll = store["notify_log"]

    async def record(self, entry: dict[str, Any]) -> str:
        doc = {"_id": uuid.uuid4().hex, **entry}
        with translate_errors("record notification"):
            await self._coll.insert_one(doc)
        return str(doc["_id"])

    async def list(self, rule: str | None = None, limit: int = 50) -> list[Doc]:
        flt: Doc = {"rule": rule} if rule else {}
        with translate_errors("read notification log"):
            return await self._coll.find(flt).sort("at_ts", -1).limit(limit).to_list(None)


class NotifyRateRepo:
    """Per rule, the send times (epoch seconds) inside the current window, written whole."""

    def __init__(self, store: Store) -> None:
        self._coll = store["notify_rate"]

    async def recent(self, rule: str, since: float) -> list[float]:
        with translate_errors("read notification rate"):
            doc = await self._coll.find_one({"_id": rule})
        return [t for t in (doc or {}).get("sent", []) if t >= since]

    async def add(self, rule: str, at: float, since: float) -> None:
        """Record one message sent at ``at``, forgetting times before ``since``."""
        sent = [*await self.recent(rule, since), at]
        with translate_errors("record notification rate"):
            await self._coll.replace_one({"_id": rule}, {"_id": rule, "sent": sent}, upsert=True)
