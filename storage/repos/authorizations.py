"""Authorizations: the legal basis that must cover any private join (``ImportChatInvite``).

One document per authorization: case id, warrant reference, approver, scope (invite hashes and/or
channel keys, stored as ``invite:<hash>`` / ``channel:<key>`` strings), the accounts allowed to act,
``valid_until`` (epoch seconds, compared in queries) and ``revoked``. A join is allowed only when an
unrevoked, unexpired authorization lists both the invite (or its channel) and the acting account.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

# The scope names are shared with the Telegram join path, so they live in the foundation; re-exported here.
from foundation.contracts import channel_scope as channel_scope
from foundation.contracts import invite_scope as invite_scope
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors


class AuthorizationRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["authorizations"]

    async def add(
        self,
        *,
        case_id: str,
        warrant_ref: str,
        approver: str,
        scope: Sequence[str],
        accounts: Sequence[str],
        valid_until: float,
        note: str | None = None,
    ) -> str:
        doc: Doc = {
            "_id": uuid.uuid4().hex,
            "case_id": case_id,
            "warrant_ref": warrant_ref,
            "approver": approver,
            "scope": list(scope),
            "accounts": list(accounts),
            "valid_until": float(valid_until),
            "revoked": False,
            "revoked_at": None,
            "created_at": utcnow(),
            "note": note,
        }
        with translate_errors("add authorization"):
            await self._coll.insert_one(doc)
        return str(doc["_id"])

    async def revoke(self, auth_id: str) -> bool:
        with translate_errors("revoke authorization"):
            doc = await self._coll.find_one({"_id": auth_id})
            if doc is None:
                return False
            doc.update(revoked=True, revoked_at=utcnow())
            await self._coll.replace_one({"_id": auth_id}, doc)
        return True

    async def covering(self, scopes: Sequence[str], account: str, *, now: float | None = None) -> Doc | None:
        """An active authorization covering any of ``scopes`` for ``account``, or None."""
        query: dict[str, Any] = {
            "scope": {"$in": list(scopes)},
            "accounts": account,
            "revoked": False,
            "valid_until": {"$gt": time.time() if now is None else now},
        }
        with translate_errors("check authorization"):
            return await self._coll.find_one(query)

    async def covering_all(self, scopes: Sequence[str], account: str, *, now: float | None = None) -> list[Doc]:
        """Every active authorization covering any of ``scopes`` for ``account``, oldest first."""
        query: dict[str, Any] = {
            "scope": {"$in": list(scopes)},
            "accounts": account,
            "revoked": False,
            "valid_until": {"$gt": time.time() if now is None else now},
        }
        with translate_errors("check authorization"):
            return await self._coll.find(query).sort("created_at", 1).to_list(None)

    async def get(self, auth_id: str) -> Doc | None:
        with translate_errors("get authorization"):
            return await self._coll.find_one({"_id": auth_id})

    async def active_for_scopes(self, scopes: Sequence[str], *, now: float | None = None) -> list[Doc]:
        """Every active authorization whose scope names any of ``scopes``, by id (any account)."""
        query: dict[str, Any] = {
            "scope": {"$in": list(scopes)},
            "revoked": False,
            "valid_until": {"$gt": time.time() if now is None else now},
        }
        with translate_errors("read authorizations"):
            return await self._coll.find(query).sort("_id", 1).to_list(None)

    async def list(self, *, case_id: str | None = None, active_only: bool = False) -> list[Doc]:
        """Authorizations in grant order, optionally of one case and only those in force now."""
        flt: dict[str, Any] = {}
        if case_id:
            flt["case_id"] = case_id
        if active_only:
            flt.update(revoked=False, valid_until={"$gt": time.time()})
        with translate_errors("list authorizations"):
            return await self._coll.find(flt).sort("created_at", 1).to_list(None)

    async def cases_naming_channels(self, channel_keys: Sequence[str]) -> dict[str, set[str]]:
        """channel key → the cases of every authorization (in any state) whose scope names it."""
        wanted = {channel_scope(k): k for k in channel_keys}
        out: dict[str, set[str]] = {}
        with translate_errors("read authorizations"):
            async for grant in self._coll.find({"scope": {"$in": list(wanted)}}, {"scope": 1, "case_id": 1}):
                for scope in grant.get("scope") or []:
                    if scope in wanted and grant.get("case_id"):
                        out.setdefault(wanted[scope], set()).add(str(grant["case_id"]))
        return out
