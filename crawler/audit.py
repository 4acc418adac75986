"""Audit of every read of collected evidence: who, with which role, what filter, how many results.

Every CLI command and API endpoint that reads evidence calls ``record_access``. Entries go to the
``audit`` collection; the evidence ledger appends each one as a ``query`` entry as well, so an
auditor can prove the audit trail itself was not edited.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors

#: hooks run after an entry is stored (the ledger registers one); kept explicit, not global state
AuditHook = Callable[[Doc], Awaitable[None]]


class AuditLog:
    def __init__(self, store: Store, hooks: list[AuditHook] | None = None) -> None:
        self._coll = store["audit"]
        self._hooks = list(hooks or [])

    def add_hook(self, hook: AuditHook) -> None:
        self._hooks.append(hook)

    async def record_access(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        filter: dict[str, Any] | None = None,
        result_count: int | None = None,
        via: str = "api",
        target: str | None = None,
    ) -> Doc:
        doc: Doc = {
            "_id": uuid.uuid4().hex,
            "at": utcnow(),
            "actor": actor,
            "role": role,
            "action": action,
            "filter": {k: v for k, v in (filter or {}).items() if v is not None},
            "result_count": result_count,
            "via": via,
            "target": target,
        }
        with translate_errors("record audit entry"):
            await self._coll.insert_one(doc)
        for hook in self._hooks:
            await hook(doc)
        return doc

    async def list(self, *, actor: str | None = None, limit: int = 100) -> list[Doc]:
        flt: Doc = {"actor": actor} if actor else {}
        with translate_errors("list audit entries"):
            return await self._coll.find(flt).sort("at", -1).limit(limit).to_list(None)

    async def page(
        self, *, actor: str | None = None, action: str | None = None, skip: int = 0, limit: int
    ) -> builtins.list[Doc]:
        """Newest first: the auditor's trail."""
        flt: Doc = {k: v for k, v in (("actor", actor), ("action", action)) if v}
        with translate_errors("list audit entries"):
            return await self._coll.find(flt).sort("at", -1).skip(skip).limit(limit).to_list(None)
