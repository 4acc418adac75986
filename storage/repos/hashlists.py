"""Imported known-hash lists (StopNCII, NCMEC-style, ThreatExchange …) and their entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import InsertOne
from pymongo.errors import BulkWriteError

from foundation.models import utcnow
from storage.client import DUPLICATE_KEY, Doc, Store, translate_errors

#: longest label stored (the parsers reject longer ones with a row error)
MAX_LABEL_CHARS = 512


class HashListRepo:
    def __init__(self, store: Store) -> None:
        self._lists = store["hash_lists"]
        self._entries = store["hash_entries"]

    async def add_entries(self, name: str, fmt: str, rows: Iterable[tuple[str, str, str | None]]) -> dict[str, int]:
        """Store (signal_type, value, label) rows under list ``name``; return new entries per type.

        Entries are keyed ``<list>/<type>/<value>``, so importing the same file twice adds nothing.
        Each new entry carries its import ``batch`` (the list's counter, 1, 2, …) and ``added_at``: the
        retroactive matcher's watermark (``retro_batch``) says which batches it has already matched.
        """
        with translate_errors("read hash list"):
            before = await self._lists.find_one({"_id": name}, {"batch": 1})
        import_batch = int((before or {}).get("batch", 0)) + 1
        now = utcnow()
        added: dict[str, int] = {}
        batch: list[Doc] = []
        for signal_type, value, label in rows:
            if label is not None and len(label) > MAX_LABEL_CHARS:  # the parser rejects these; a last guard
                label = label[:MAX_LABEL_CHARS]
            batch.append(
                {"_id": f"{name}/{signal_type}/{value}", "list": name, "signal_type": signal_type, "value": value,
                 "label": label, "batch": import_batch, "added_at": now}
            )  # fmt: skip
            if len(batch) >= 1000:
                await self._insert(batch, added)
                batch = []
        await self._insert(batch, added)
        with translate_errors("record hash list"):
            doc = await self._lists.find_one({"_id": name}) or {
                "_id": name, "enabled": True, "created_at": utcnow(), "counts": {}, "version": 0
            }  # fmt: skip
            counts = dict(doc.get("counts", {}))
            for signal_type, n in added.items():
                counts[signal_type] = counts.get(signal_type, 0) + n
            doc.update(format=fmt, counts=counts, imported_at=utcnow(), version=int(doc.get("version", 0)) + 1)
            if added:
                doc["batch"] = max(import_batch, int(doc.get("batch", 0)))
            await self._lists.replace_one({"_id": name}, doc, upsert=True)
        return added

    async def _insert(self, docs: Sequence[Doc], added: dict[str, int]) -> None:
        if not docs:
            return
        with translate_errors("store hash entries"):
            try:
                await self._entries.bulk_write([InsertOne(d) for d in docs], ordered=False)
                inserted_ids = {d["_id"] for d in docs}
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                failed = {docs[e["index"]]["_id"] for e in errors}
                inserted_ids = {d["_id"] for d in docs} - failed
        for d in docs:
            if d["_id"] in inserted_ids:
                added[d["signal_type"]] = added.get(d["signal_type"], 0) + 1

    async def lists(self) -> list[Doc]:
        with translate_errors("list hash lists"):
            return await self._lists.find().sort("_id", 1).to_list(None)

    async def enabled_names(self) -> set[str]:
        return {d["_id"] for d in await self.lists() if d.get("enabled", True)}

    async def state(self) -> tuple[Any, ...]:
        """Changes whenever a list is imported, enabled, disabled or deleted (index refresh key)."""
        return tuple((d["_id"], d.get("enabled", True), d.get("version", 0)) for d in await self.lists())

    async def get(self, name: str) -> Doc | None:
        with translate_errors("read hash list"):
            return await self._lists.find_one({"_id": name})

    async def set_takedown(
        self, name: str, *, policy: str | None = None, trusted: bool | None = None, reason: str | None = None
    ) -> Doc | None:
        """Set a list's takedown policy, trust and report reason (the caller validated them together);
        the updated list, or None when there is no such list."""
        with translate_errors("update hash list"):
            doc = await self._lists.find_one({"_id": name})
            if doc is None:
                return None
            if policy is not None:
                doc["takedown_policy"] = policy
            if trusted is not None:
                doc["trusted"] = trusted
            if reason is not None:
                doc["takedown_reason"] = reason
            await self._lists.replace_one({"_id": name}, doc)
        return doc

    async def set_enabled(self, name: str, enabled: bool) -> bool:
        with translate_errors("update hash list"):
            doc = await self._lists.find_one({"_id": name})
            if doc is None:
                return False
            if not enabled and doc.get("enabled", True):
                doc["disabled_at"] = utcnow()  # media stored from now on are not matched against it
            doc.update(enabled=enabled, version=int(doc.get("version", 0)) + 1)
            await self._lists.replace_one({"_id": name}, doc)
        return True

    async def delete(self, name: str) -> int:
        with translate_errors("delete hash list"):
            result = await self._entries.delete_many({"list": name})
            await self._lists.delete_one({"_id": name})
        return int(result.deleted_count)

    async def entries(self, signal_type: str, lists: set[str]) -> list[Doc]:
        with translate_errors("read hash entries"):
            docs = await self._entries.find({"signal_type": signal_type}).to_list(None)
        return [d for d in docs if d["list"] in lists]

    async def exact(self, signal_type: str, values: Sequence[str], lists: set[str]) -> list[Doc]:
        if not values:
            return []
        with translate_errors("look up hashes"):
            docs = await self._entries.find({"signal_type": signal_type, "value": {"$in": list(values)}}).to_list(None)
        return [d for d in docs if d["list"] in lists]

    async def list_entries(
        self, name: str, *, after_batch: int | None = None, up_to_batch: int | None = None
    ) -> list[Doc]:
        """Entries of one list by import batch: ``after_batch < batch <= up_to_batch`` (``None``: open).

        Entries stored before batches existed count as batch 0.
        """
        with translate_errors("read hash entries"):
            docs = await self._entries.find({"list": name}).to_list(None)
        lo = -1 if after_batch is None else after_batch
        hi = None if up_to_batch is None else up_to_batch
        return [d for d in docs if lo < int(d.get("batch", 0)) and (hi is None or int(d.get("batch", 0)) <= hi)]

    async def mark_retro_matched(self, name: str, batch: int) -> None:
        """Every entry up to ``batch`` is matched against the stored media, and any disabled window is
        closed (the ``disabled_at`` mark goes)."""
        with translate_errors("update hash list"):
            doc = await self._lists.find_one({"_id": name})
            if doc is None:
                return
            doc["retro_batch"] = max(batch, int(doc.get("retro_batch", -1)))
            doc.pop("disabled_at", None)
            doc["retro_at"] = utcnow()
            await self._lists.replace_one({"_id": name}, doc)
