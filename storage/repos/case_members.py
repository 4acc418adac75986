"""Case membership: which token names belong to which case.

One document per (case, member), keyed ``<case>/<member>`` so adding twice is one document. Only
this class writes the ``case_members`` collection; the ledger entry of each change is written by
:class:`crawler.evidence.members.CaseMembers`.
"""

from __future__ import annotations

import contextlib

from pymongo.errors import DuplicateKeyError

from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors


class CaseMemberRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["case_members"]

    async def add(self, case_id: str, member: str, *, added_by: str, seq: int | None = None) -> bool:
        """True when the member was new to the case."""
        doc: Doc = {
            "_id": f"{case_id}/{member}",
            "case": case_id,
            "member": member,
            "added_by": added_by,
            "added_at": utcnow(),
            "seq": seq,
        }
        with translate_errors("add case member"), contextlib.suppress(DuplicateKeyError):
            await self._coll.insert_one(doc)
            return True
        return False

    async def remove(self, case_id: str, member: str) -> bool:
        with translate_errors("remove case member"):
            result = await self._coll.delete_one({"_id": f"{case_id}/{member}"})
        return bool(result.deleted_count)

    async def is_member(self, case_id: str, member: str) -> bool:
        with translate_errors("check case member"):
            return await self._coll.find_one({"_id": f"{case_id}/{member}"}, {"_id": 1}) is not None

    async def members(self, case_id: str) -> list[Doc]:
        with translate_errors("list case members"):
            return await self._coll.find({"case": case_id}).sort("member", 1).to_list(None)

    async def cases_of(self, member: str) -> list[str]:
        with translate_errors("list member cases"):
            return sorted({d["case"] async for d in self._coll.find({"member": member}, {"case": 1})})

    async def all(self) -> list[Doc]:
        with translate_errors("list case members"):
            return await self._coll.find().sort("_id", 1).to_list(None)
