"""Imported known-hash lists (StopNCII, NCMEC-style, ThreatExchange …) and their entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from foundation.models import utcnow
from storage.client import DUPLICATE_KEY, Doc, Store, translate_errors

#: longest label stored (the parsers reject longer ones with a row error)
MAX_LABEL_CHARS = 512


class HashListRepo:
    def __init__(self, store: Store) -> None:
        self._lists = store["hash_lists"]
        self._entries = store["hash_entries"]
        self._hits = store["hash_entry_hits"]

    async def add_entries(
        self,
        name: str,
        fmt: str,
        rows: Iterable[tuple[str, str, str | None]],
        *,
        exchange_keys: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, int]:
        """Store (signal_type, value, label) rows under list ``name``; return new entries per type.

        Entries are keyed ``<list>/<type>/<value>``, so importing the same file twice adds nothing.
        Each new entry carries its import ``batch`` (the list's counter, 1, 2, …) and ``added_at``: the
        retroactive matcher's watermark (``retro_batch``) says which batches it has already matched.
        ``exchange_keys`` names the exchange record each (signal type, value) came from, so a
        record the exchange later deletes (an NCMEC tombstone) removes exactly its entries. An entry
        already stored takes the newer key: the exchange's latest record is what feedback goes to
        (a ThreatExchange indicator's descriptors, including those added after the first sync).
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
            if exchange_keys is not None and (signal_type, value) in exchange_keys:
                batch[-1]["exchange_key"] = exchange_keys[(signal_type, value)]
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
        rekeyed = [
            UpdateOne({"_id": d["_id"], "exchange_key": {"$ne": d["exchange_key"]}},
                      {"$set": {"exchange_key": d["exchange_key"]}})
            for d in docs if d["_id"] not in inserted_ids and d.get("exchange_key") is not None
        ]  # fmt: skip
        if rekeyed:
            with translate_errors("update hash entries' exchange keys"):
                await self._entries.bulk_write(rekeyed, ordered=False)

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
            await self._hits.delete_many({"list": name})
            await self._lists.delete_one({"_id": name})
        return int(result.deleted_count)

    async def entries(self, signal_type: str, lists: set[str]) -> list[Doc]:
        with translate_errors("read hash entries"):
            docs = await self._entries.find({"signal_type": signal_type}).to_list(None)
        return [d for d in docs if d["list"] in lists and not d.get("quarantined")]

    async def exact(self, signal_type: str, values: Sequence[str], lists: set[str]) -> list[Doc]:
        if not values:
            return []
        with translate_errors("look up hashes"):
            docs = await self._entries.find({"signal_type": signal_type, "value": {"$in": list(values)}}).to_list(None)
        return [d for d in docs if d["list"] in lists and not d.get("quarantined")]

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
        return [
            d
            for d in docs
            if lo < int(d.get("batch", 0)) and (hi is None or int(d.get("batch", 0)) <= hi) and not d.get("quarantined")
        ]

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

    # -- exchange sync --------------------------------------------------------------------------
    async def remove_entries(
        self, name: str, *, values: Iterable[tuple[str, str]] = (), exchange_keys: Iterable[str] = ()
    ) -> int:
        """Delete entries the exchange withdrew, by (signal type, value) or by exchange record key;
        returns how many went. The list's counts go down and its ``withdrawn`` total up, and its
        version changes, so every matcher drops them at its next refresh."""
        ids = [f"{name}/{t}/{v}" for t, v in values]
        keys = list(exchange_keys)
        with translate_errors("remove hash entries"):
            flt: Doc = {"$or": [{"_id": {"$in": ids}}, {"list": name, "exchange_key": {"$in": keys}}]}
            docs = await self._entries.find(flt, {"signal_type": 1}).to_list(None)
            if not docs:
                return 0
            await self._entries.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            doc = await self._lists.find_one({"_id": name})
            if doc is not None:
                counts = dict(doc.get("counts", {}))
                for d in docs:
                    counts[d["signal_type"]] = max(0, counts.get(d["signal_type"], 0) - 1)
                doc.update(counts=counts, withdrawn=int(doc.get("withdrawn", 0)) + len(docs))
                doc["version"] = int(doc.get("version", 0)) + 1
                await self._lists.replace_one({"_id": name}, doc)
        return len(docs)

    async def save_sync(self, name: str, fmt: str, state: Doc) -> None:
        """The exchange's checkpoint and last-sync figures, on the list document (created if new)."""
        with translate_errors("record hash list sync"):
            doc = await self._lists.find_one({"_id": name}) or {
                "_id": name, "enabled": True, "created_at": utcnow(), "counts": {}, "version": 0, "format": fmt
            }  # fmt: skip
            doc["sync"] = {**doc.get("sync", {}), **state}
            doc["source"] = fmt
            await self._lists.replace_one({"_id": name}, doc, upsert=True)

    # -- hygiene --------------------------------------------------------------------------------
    async def set_hygiene(
        self, name: str, *, max_distance: int | None = None, clear_distance: bool = False, role: str | None = None
    ) -> Doc | None:
        """A list's own match threshold (``max_distance``, narrower than the global one) and role
        (``block``: matches alert; ``allow``: matches suppress every other list's match)."""
        with translate_errors("update hash list"):
            doc = await self._lists.find_one({"_id": name})
            if doc is None:
                return None
            if max_distance is not None:
                doc["max_distance"] = max_distance
            if clear_distance:
                doc.pop("max_distance", None)
            if role is not None:
                doc["role"] = role
            doc["version"] = int(doc.get("version", 0)) + 1
            await self._lists.replace_one({"_id": name}, doc)
        return doc

    async def record_hits(self, entry_ids: Iterable[str], sha256: str, at: float) -> None:
        """One ``(entry, media)`` pair per match (a media matched twice is one pair), with its time."""
        with translate_errors("record hash entry hits"):
            for entry_id in entry_ids:
                key = f"{entry_id}|{sha256}"
                name = entry_id.rsplit("/", 2)[0]  # ids are <list>/<type>/<value>
                doc = {"_id": key, "entry": entry_id, "list": name, "sha256": sha256, "at": at}
                await self._hits.replace_one({"_id": key}, doc, upsert=True)

    async def distinct_hits(self, entry_id: str, since: float) -> int:
        """Distinct media the entry matched at or after ``since`` (epoch seconds)."""
        with translate_errors("count hash entry hits"):
            return int(await self._hits.count_documents({"entry": entry_id, "at": {"$gte": since}}))

    async def quarantine(self, entry_id: str, reason: str, at: float) -> bool:
        """Stop matching one entry until a reviewer releases it; False when it is gone or already held."""
        with translate_errors("quarantine hash entry"):
            doc = await self._entries.find_one({"_id": entry_id})
            if doc is None or doc.get("quarantined"):
                return False
            doc.update(quarantined=True, quarantine_reason=reason, quarantined_ts=at)
            await self._entries.replace_one({"_id": entry_id}, doc)
            await self._bump(doc["list"], "quarantined", 1)
        return True

    async def release(self, entry_id: str) -> bool:
        """A reviewer found the entry sound: it matches again (its hit window starts afresh)."""
        with translate_errors("release hash entry"):
            doc = await self._entries.find_one({"_id": entry_id})
            if doc is None or not doc.get("quarantined"):
                return False
            for key in ("quarantined", "quarantine_reason", "quarantined_ts"):
                doc.pop(key, None)
            await self._entries.replace_one({"_id": entry_id}, doc)
            await self._hits.delete_many({"entry": entry_id})
            await self._bump(doc["list"], "quarantined", -1)
        return True

    async def quarantined(self, name: str | None = None) -> list[Doc]:
        with translate_errors("read hash entries"):
            flt: Doc = {"quarantined": True}
            if name is not None:
                flt["list"] = name
            return await self._entries.find(flt).sort("_id", 1).to_list(None)

    async def _bump(self, name: str, field: str, delta: int) -> None:
        doc = await self._lists.find_one({"_id": name})
        if doc is not None:
            doc[field] = max(0, int(doc.get(field, 0)) + delta)
            doc["version"] = int(doc.get("version", 0)) + 1
            await self._lists.replace_one({"_id": name}, doc)

    async def exchange_keys(self, name: str) -> dict[tuple[str, str], str]:
        """(signal type, value) → the exchange record key, for every entry of list ``name`` that has
        one (quarantined ones too: feedback on their matches still goes back)."""
        with translate_errors("read hash entries"):
            fields = {"signal_type": 1, "value": 1, "exchange_key": 1}
            docs = await self._entries.find({"list": name}, fields).to_list(None)
        return {(d["signal_type"], d["value"]): str(d["exchange_key"]) for d in docs if d.get("exchange_key")}
