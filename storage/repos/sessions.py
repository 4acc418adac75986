"""Console sign-in sessions, kept server-side so that signing out (or expiry) really ends them.

The browser holds only a random session id. The store keeps ``HMAC-SHA256(server secret, id)`` as the
``_id`` (a copy of the database cannot be replayed as cookies), the keyed digest of the token that
signed in (revoking the token ends its sessions at once), and epoch seconds of creation and of the
last request, against which idle and absolute expiry are checked on every use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from storage.client import Doc, Store, translate_errors

#: ``seen`` is rewritten at most this often: one write per request would be wasted work
SEEN_RESOLUTION = 30.0


class SessionRepo:
    def __init__(self, store: Store, secret: bytes) -> None:
        self._coll = store["sessions"]
        self._secret = secret

    def _key(self, session_id: str) -> str:
        return hmac.new(self._secret, f"session:{session_id}".encode(), hashlib.sha256).hexdigest()

    async def open(self, token_digest: str, *, now: float | None = None, lang: str | None = None) -> str:
        """Start a session for the token with this stored digest; returns the id for the cookie."""
        session_id = secrets.token_urlsafe(32)
        at = time.time() if now is None else now
        doc: Doc = {"_id": self._key(session_id), "token": token_digest, "created": at, "seen": at}
        if lang:
            doc["lang"] = lang
        with translate_errors("open session"):
            await self._coll.insert_one(doc)
        return session_id

    async def find(self, session_id: str, *, idle: float, longest: float, now: float | None = None) -> Doc | None:
        """The live session with this id, or None (unknown, idle too long, or too old: then removed)."""
        at = time.time() if now is None else now
        key = self._key(session_id)
        with translate_errors("find session"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                return None
            if at - float(doc["seen"]) > idle or at - float(doc["created"]) > longest:
                await self._coll.delete_one({"_id": key})
                return None
            if at - float(doc["seen"]) > SEEN_RESOLUTION:
                await self._coll.update_one({"_id": key}, {"$set": {"seen": at}})
        return doc

    async def set_lang(self, session_id: str, lang: str) -> bool:
        """Keep the console language a person chose with their session (a plain string: ``$set`` is safe)."""
        with translate_errors("set session language"):
            res = await self._coll.update_one({"_id": self._key(session_id)}, {"$set": {"lang": lang}})
        return bool(res.matched_count)

    async def end(self, session_id: str) -> None:
        with translate_errors("end session"):
            await self._coll.delete_one({"_id": self._key(session_id)})

    async def count(self) -> int:
        with translate_errors("count sessions"):
            return int(await self._coll.count_documents({}))
