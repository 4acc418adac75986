"""Alerts: raised once per natural key, then worked through by staff."""

from __future__ import annotations

import builtins

from crawler.models import Alert, utcnow
from storage.client import Doc, Store, translate_errors


class AlertRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["alerts"]

    async def raise_alert(self, alert: Alert) -> bool:
        """Insert the alert unless one with the same key exists (returns whether it is new)."""
        from pymongo.errors import DuplicateKeyError

        with translate_errors("raise alert"):
            try:
                await self._coll.insert_one(alert.to_doc())
            except DuplicateKeyError:
                return False
        return True

    async def get(self, key: str) -> Doc | None:
        with translate_errors("get alert"):
            return await self._coll.find_one({"_id": key})

    async def list(self, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Doc]:
        flt: Doc = {}
        if status:
            flt["status"] = status
        if kind:
            flt["kind"] = kind
        with translate_errors("list alerts"):
            return await self._coll.find(flt).sort("raised_at", -1).limit(limit).to_list(None)

    async def set_status(self, key: str, status: str, by: str) -> bool:
        with translate_errors("update alert"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                return False
            history = [*doc.get("history", []), {"status": status, "by": by, "at": utcnow()}]
            await self._coll.replace_one({"_id": key}, {**doc, "status": status, "history": history})
        return True

    # -- reads for the investigator API ----------------------------------------------------------
    async def page(
        self, *, status: str | None = None, kind: str | None = None, skip: int = 0, limit: int
    ) -> builtins.list[Doc]:
        """Newest first, ``_id`` breaking ties so pages are stable."""
        flt: Doc = {k: v for k, v in (("status", status), ("kind", kind)) if v}
        with translate_errors("list alerts"):
            cursor = self._coll.find(flt).sort([("raised_at", -1), ("_id", 1)]).skip(skip).limit(limit)
            return await cursor.to_list(None)

    async def for_media(self, sha256: str) -> builtins.list[Doc]:
        with translate_errors("read media"):
            return await self._coll.find({"sha256": sha256}).sort("raised_at", -1).to_list(None)

    async def digests_of_kind(self, kind: str) -> builtins.list[str]:
        with translate_errors("read hash matches"):
            found = await self._coll.distinct("sha256", {"kind": kind})
        return [s for s in found if isinstance(s, str)]
