"""The ``candidates`` collection: one document per canonical room link.

Documents are written whole (insert / replace guarded by a ``rev`` counter) rather than with
``$push``/``$set``: provenance entries are sub-documents, and concurrent sources (an aggregator
crawl and the snowball stage) may merge sightings into the same candidate at once, so a merge is
read → merge → replace-if-unchanged, retried on a lost race. Times compared in queries are epoch
seconds (``first_seen_ts``); datetimes are kept for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crawler.discovery.models import CandidateStatus, Sighting
from foundation.errors import StoreError
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors
from storage.owners import insert_once

_RACE_RETRIES = 8


@dataclass
class RecordResult:
    new: int = 0
    merged: int = 0  # sightings of candidates that already existed
    links: tuple[str, ...] = ()  # canonical links touched, in order
    capped: tuple[str, ...] = ()  # new links left out by a volume cap (not stored)


def _merge(doc: Doc, sightings: Sequence[Sighting], max_provenance: int) -> Doc:
    """Fold sightings into a candidate document (pure: returns a new document)."""
    merged = dict(doc)
    provenance = list(merged.get("provenance") or [])
    known = {
        (p.get("source_kind", ""), p.get("source", ""), p.get("page_url", ""), p.get("message_key", ""))
        for p in provenance
    }
    for sighting in sightings:
        merged["sightings"] = int(merged.get("sightings", 0)) + 1
        merged["depth"] = min(int(merged.get("depth", sighting.depth)), sighting.depth)
        merged["priority"] = max(int(merged.get("priority", 0)), sighting.priority)
        if sighting.identity() in known:
            continue
        known.add(sighting.identity())
        if len(provenance) < max_provenance:
            provenance.append(sighting.provenance())
    merged["provenance"] = provenance
    merged["sources"] = sorted({f"{p['source_kind']}:{p['source']}" for p in provenance})
    merged["updated_ts"] = utcnow().timestamp()
    return merged


def _new_doc(sighting: Sighting) -> Doc:
    now = utcnow()
    return {
        "_id": sighting.link,
        "link": sighting.link,
        "kind": sighting.kind.value,
        "status": CandidateStatus.NEW.value,
        "priority": sighting.priority,
        "depth": sighting.depth,
        "sightings": 0,
        "provenance": [],
        "first_seen_at": now,
        "first_seen_ts": now.timestamp(),
        "rev": 0,
        "type": None,
        "title": None,
        "members": None,
        "state": None,
        "score": None,
        "matched_terms": [],
        "triage": None,
        "review": None,
    }


class CandidateRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["candidates"]

    async def get(self, link: str) -> Doc | None:
        with translate_errors("get candidate"):
            return await self._coll.find_one({"_id": link})

    async def existing(self, links: Iterable[str]) -> dict[str, Doc]:
        ids = list(dict.fromkeys(links))
        if not ids:
            return {}
        with translate_errors("read candidates"):
            return {d["_id"]: d async for d in self._coll.find({"_id": {"$in": ids}})}

    async def record(self, sightings: Sequence[Sighting], *, max_provenance: int = 50) -> RecordResult:
        """Merge sightings into candidates, creating the missing ones (status ``new``)."""
        by_link: dict[str, list[Sighting]] = {}
        for sighting in sightings:
            by_link.setdefault(sighting.link, []).append(sighting)
        result = RecordResult(links=tuple(by_link))
        current = await self.existing(by_link)
        for link, group in by_link.items():
            created = await self._upsert(link, group, current.get(link), max_provenance)
            if created:
                result.new += 1
            else:
                result.merged += len(group)
        return result

    async def _upsert(self, link: str, group: Sequence[Sighting], doc: Doc | None, max_provenance: int) -> bool:
        for _ in range(_RACE_RETRIES):
            if doc is None:
                fresh = _merge(_new_doc(group[0]), group, max_provenance)
                if await insert_once(self._coll, fresh, "create candidate"):
                    return True
                with translate_errors("create candidate"):
                    doc = await self._coll.find_one({"_id": link})
                continue
            if await self.replace(_merge(doc, group, max_provenance)):
                return False
            doc = await self.get(link)
        raise StoreError(f"candidate {link}: lost {_RACE_RETRIES} concurrent updates in a row")

    async def replace(self, doc: Doc) -> bool:
        """Write ``doc`` if nobody changed the stored one since it was read (``rev`` check)."""
        rev = int(doc.get("rev", 0))
        new = {**doc, "rev": rev + 1, "updated_ts": utcnow().timestamp()}
        with translate_errors("update candidate"):
            result = await self._coll.replace_one({"_id": doc["_id"], "rev": rev}, new)
        if result.matched_count == 1:
            doc["rev"] = rev + 1
            return True
        return False

    async def list(
        self,
        *,
        statuses: Sequence[CandidateStatus] | None = None,
        limit: int = 1000,
        order: str = "priority",
    ) -> list[Doc]:
        query: dict[str, Any] = {}
        if statuses:
            query["status"] = {"$in": [s.value for s in statuses]}
        if order == "score":
            sort = [("score", -1), ("priority", -1), ("first_seen_ts", 1)]
        else:
            sort = [("priority", -1), ("first_seen_ts", 1)]
        with translate_errors("list candidates"):
            return await self._coll.find(query).sort(sort).limit(limit).to_list(None)
