"""Recorded errors: every failure a run meets is kept with enough context to act on it."""

from __future__ import annotations

import uuid
from typing import Any

from foundation.errors import TgwatchError
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors


class ErrorRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["errors"]

    async def record(
        self, error: TgwatchError | dict[str, Any], *, run_id: str | None = None, record: str | None = None
    ) -> str:
        doc: Doc = dict(error.to_doc() if isinstance(error, TgwatchError) else error)
        doc.update({"_id": uuid.uuid4().hex, "run_id": run_id, "record": record, "at": utcnow()})
        with translate_errors("record error"):
            await self._coll.insert_one(doc)
        return str(doc["_id"])

    async def recent(self, limit: int = 50, run_id: str | None = None) -> list[Doc]:
        query: Doc = {"run_id": run_id} if run_id else {}
        with translate_errors("list errors"):
            return await self._coll.find(query).sort("at", -1).limit(limit).to_list(None)
