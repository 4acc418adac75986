"""API tokens and roles.

A token is shown once, at creation; only its SHA-256 is stored (as the document ``_id``, so a
lookup is one read by key). Roles are fixed: what each may do is decided where each endpoint is
declared, never by string matching elsewhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from crawler.models import utcnow
from storage.client import Doc, Store, translate_errors

TOKEN_PREFIX = "tgw_"


class Role(StrEnum):
    ADMIN = "admin"
    MONITOR = "monitor"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    DETECTOR = "detector"


@dataclass(frozen=True)
class Principal:
    """Who is calling: recorded on every audit entry."""

    token_id: str
    name: str
    role: Role


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["tokens"]

    async def create(self, name: str, role: Role) -> tuple[str, Doc]:
        """Return the plaintext token (to print once) and the stored document (without it)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        doc: Doc = {
            "_id": token_digest(token),
            "token_id": secrets.token_hex(6),
            "name": name,
            "role": role.value,
            "created_at": utcnow(),
            "revoked_at": None,
        }
        with translate_errors("create token"):
            await self._coll.insert_one(doc)
        return token, doc

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with translate_errors("authenticate"):
            doc = await self._coll.find_one({"_id": token_digest(token)})
        if doc is None or doc.get("revoked_at") is not None:
            return None
        return Principal(token_id=doc["token_id"], name=doc["name"], role=Role(doc["role"]))

    async def list(self) -> list[Doc]:
        with translate_errors("list tokens"):
            docs = await self._coll.find().sort("created_at", 1).to_list(None)
        return [{k: v for k, v in d.items() if k != "_id"} for d in docs]

    async def revoke(self, token_id_or_name: str) -> int:
        """Revoke by token id or by name; returns how many tokens were revoked."""
        with translate_errors("revoke token"):
            found = await self._coll.find({"token_id": token_id_or_name}).to_list(None)
            found += await self._coll.find({"name": token_id_or_name}).to_list(None)
            docs = list({d["_id"]: d for d in found if d.get("revoked_at") is None}.values())
            for doc in docs:  # replace, not $set: datetimes stay datetimes on the embedded server
                await self._coll.replace_one({"_id": doc["_id"]}, {**doc, "revoked_at": utcnow()})
        return len(docs)
