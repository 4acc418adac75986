"""Detector verdicts: one document per settled lease (``<job id>/<lease token>``), never overwritten.

A newer verdict of the same detector about the same media names the one it supersedes, so the
history of what each detector said stays whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.errors import DuplicateKeyError

from foundation.models import Verdict
from storage.client import Doc, Store, translate_errors


class VerdictRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["verdicts"]

    async def add(self, verdict_id: str, verdict: Verdict) -> Doc | None:
        """Store ``verdict`` under ``verdict_id``, linked to the latest verdict it supersedes.

        Returns the stored document, or None when ``verdict_id`` was stored before (a repeated ack).
        """
        doc: Doc = {"_id": verdict_id, **verdict.model_dump(mode="python")}
        with translate_errors("store verdict"):
            previous = await self._coll.find_one(
                {"sha256": verdict.sha256, "detector": verdict.detector}, sort=[("decided_at", -1)]
            )
            doc["supersedes"] = previous["_id"] if previous else None
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError:
                return None
        return doc

    async def get(self, verdict_id: str) -> Verdict | None:
        with translate_errors("read verdict"):
            doc = await self._coll.find_one({"_id": verdict_id})
        if doc is None:
            return None
        return Verdict.model_validate({k: v for k, v in doc.items() if k in Verdict.model_fields})

    async def of_media(self, sha256: str) -> list[Doc]:
        """Every verdict about one media item, newest first."""
        with translate_errors("read verdicts"):
            return await self._coll.find({"sha256": sha256}).sort("decided_at", -1).to_list(None)

    async def digests_with(self, decision: str, *, exclude_detectors: Sequence[str] = ()) -> list[str]:
        """The media digests some detector (not one of ``exclude_detectors``) decided ``decision``
        about, sorted."""
        flt: Doc = {"decision": decision}
        with translate_errors("read verdicts"):
            if exclude_detectors:
                # a find, not ``distinct``: the embedded server's distinct ignores a ``$nin`` filter
                flt["detector"] = {"$nin": list(exclude_detectors)}
                found = list({d.get("sha256") async for d in self._coll.find(flt, {"sha256": 1})})
            else:
                found = await self._coll.distinct("sha256", flt)
        return sorted(s for s in found if isinstance(s, str))

    async def withdraw_person(self, person: str) -> int:
        """Remove a withdrawn person's match records from every verdict (the ledger keeps its own
        copy as evidence); the verdict says how many were removed. How many verdicts changed."""
        changed = 0
        with translate_errors("update verdicts"):
            for doc in await self._coll.find({"matches": {"$elemMatch": {"person": person}}}).to_list(None):
                kept = [m for m in doc.get("matches") or [] if m.get("person") != person]
                withdrawn = int(doc.get("matches_withdrawn") or 0) + len(doc["matches"]) - len(kept)
                await self._coll.replace_one(
                    {"_id": doc["_id"]}, {**doc, "matches": kept, "matches_withdrawn": withdrawn}
                )
                changed += 1
        return changed
