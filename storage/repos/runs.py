"""Run history: one document per crawl/backfill/watch run, counters updated as it goes."""

from __future__ import annotations

import uuid
from typing import Any

from crawler.models import utcnow
from storage.client import Doc, Store, translate_errors


class RunRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["runs"]

    async def start(self, target: str, kind: str, **extra: Any) -> str:
        run_id = uuid.uuid4().hex
        doc: Doc = {
            "_id": run_id,
            "target": target,
            "kind": kind,
            "status": "running",
            "started_at": utcnow(),
            "finished_at": None,
            "counts": {},
            "errors": 0,
            **extra,
        }
        with translate_errors("start run"):
            await self._coll.insert_one(doc)
        return run_id

    async def add(self, run_id: str, **counts: int) -> None:
        inc = {f"counts.{k}": v for k, v in counts.items() if v}
        if inc:
            with translate_errors("update run"):
                await self._coll.update_one({"_id": run_id}, {"$inc": inc})

    async def error(self, run_id: str) -> None:
        with translate_errors("update run"):
            await self._coll.update_one({"_id": run_id}, {"$inc": {"errors": 1}})

    async def finish(self, run_id: str, status: str = "ok", **extra: Any) -> None:
        # read + replace rather than $set: datetimes stay datetimes on the embedded server
        with translate_errors("finish run"):
            doc = await self._coll.find_one({"_id": run_id})
            if doc is None:
                return
            doc.update(status=status, finished_at=utcnow(), **extra)
            await self._coll.replace_one({"_id": run_id}, doc)

    async def get(self, run_id: str) -> Doc | None:
        with translate_errors("get run"):
            return await self._coll.find_one({"_id": run_id})

    async def list(self, limit: int = 20) -> list[Doc]:
        with translate_errors("list runs"):
            return await self._coll.find().sort("started_at", -1).limit(limit).to_list(None)
