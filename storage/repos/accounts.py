"""The Telegram account pool's documents.

Secrets arrive here already encrypted (``phone_enc``, ``session_enc``): this repository never sees a
plaintext phone number or session string, so nothing in storage can leak one. Timestamps compared in
queries (``flood_until``, ``lease_until``) are epoch seconds; datetimes are written by insert/replace only, because the
embedded server turns a ``$set`` datetime into a string.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

# The account states are shared with the Telegram sources, so they live in the foundation; re-exported here.
from foundation.contracts import ACTIVE as ACTIVE
from foundation.contracts import BANNED as BANNED
from foundation.contracts import DEAUTHORIZED as DEAUTHORIZED
from foundation.contracts import DISABLED as DISABLED
from foundation.contracts import FROZEN as FROZEN
from foundation.contracts import STATES as STATES
from foundation.errors import ConfigError, StoreError
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors

_LEASE_FIELDS = ("lease_holder", "lease_until")


class AccountRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["accounts"]

    async def add(
        self, name: str, *, session_enc: str, phone_enc: str | None, user_id: int | None, proxy: str | None
    ) -> Doc:
        now = utcnow()
        doc: Doc = {
            "_id": name,
            "session_enc": session_enc,
            "phone_enc": phone_enc,
            "user_id": user_id,
            "proxy": proxy,
            "state": ACTIVE,
            "state_reason": None,
            "flood_until": 0.0,
            "flood_waits": 0,
            "added_at": now,
            "updated_at": now,
        }
        with translate_errors("add account"):
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError as exc:
                raise ConfigError(f"an account named {name!r} already exists") from exc
        return doc

    async def get(self, name: str) -> Doc | None:
        with translate_errors("get account"):
            return await self._coll.find_one({"_id": name})

    async def list_all(self) -> list[Doc]:
        with translate_errors("list accounts"):
            return await self._coll.find().sort("_id", 1).to_list(None)

    async def usable(self) -> list[Doc]:
        """Accounts that may be used at all (flood-parked ones included: the pool waits them out)."""
        with translate_errors("list accounts"):
            return await self._coll.find({"state": ACTIVE}).sort("_id", 1).to_list(None)

    async def remove(self, name: str) -> bool:
        with translate_errors("remove account"):
            result = await self._coll.delete_one({"_id": name})
        return bool(result.deleted_count)

    async def _replace(self, name: str, **changes: Any) -> Doc | None:
        """Read-modify-replace, guarded by the lease fields read: a lease taken or renewed meanwhile
        (by ``take_lease``, a single atomic update) is never overwritten by a stale copy."""
        with translate_errors("update account"):
            for _ in range(20):
                doc = await self._coll.find_one({"_id": name})
                if doc is None:
                    return None
                guard = {"_id": name, **{f: doc.get(f) for f in _LEASE_FIELDS}}
                doc.update(changes, updated_at=utcnow())
                if (await self._coll.replace_one(guard, doc)).matched_count:
                    return doc
        raise StoreError(f"account {name!r} kept changing under an update")

    async def set_state(self, name: str, state: str, reason: str | None = None) -> Doc | None:
        if state not in STATES:
            raise ValueError(f"unknown account state {state!r}; states are {STATES}")
        return await self._replace(name, state=state, state_reason=reason)

    async def park(self, name: str, until_epoch: float) -> Doc | None:
        """Record a flood wait: the account is not used before ``until_epoch``; waits are counted."""
        doc = await self.get(name)
        if doc is None:
            return None
        return await self._replace(
            name,
            flood_until=max(float(doc.get("flood_until") or 0.0), until_epoch),
            flood_waits=int(doc.get("flood_waits") or 0) + 1,
        )

    async def update_session(self, name: str, session_enc: str) -> Doc | None:
        return await self._replace(name, session_enc=session_enc)

    # --- the session lease: one process per account at a time ---------------------------------------

    async def take_lease(self, name: str, holder: str, *, seconds: float, now: float) -> Doc | None:
        """Hold (or renew) the account's session lease until ``now + seconds``; None if another holds it.

        One atomic ``find_one_and_update`` by ``_id`` whose filter admits only a free, expired or own
        lease: two workers that race for one account cannot both win, so they never use the same
        session at once (which Telegram answers with ``AUTH_KEY_DUPLICATED`` for both)."""
        free = [{"lease_holder": None}, {"lease_holder": holder}, {"lease_until": {"$lt": now}}]
        with translate_errors("lease account"):
            return await self._coll.find_one_and_update(
                {"$and": [{"_id": name}, {"$or": free}]},  # not {"_id", "$or"}: the embedded server drops the _id
                {"$set": {"lease_holder": holder, "lease_until": now + seconds, "lease_heartbeat": now}},
                return_document=ReturnDocument.AFTER,
            )

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back at once (only when ``holder`` still holds it)."""
        with translate_errors("release account lease"):
            await self._coll.update_one(
                {"_id": name, "lease_holder": holder}, {"$set": {"lease_holder": None, "lease_until": 0.0}}
            )

    async def set_discovery_next(self, name: str, at_epoch: float) -> Doc | None:
        """The account's next discovery call (recommendations, global search) waits until then."""
        return await self._replace(name, discovery_next_at=at_epoch)
