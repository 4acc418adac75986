"""Channel identity and header snapshots.

A channel's key is chosen once, at first sighting, and never changes: usernames change and numeric
ids are only known over MTProto, so every name and id ever seen is kept as an alias of the key and
messages are never orphaned by a rename.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from foundation.models import Channel, ChannelRef
from storage.client import Doc, Store, translate_errors


def _alias_ids(ref: ChannelRef) -> list[str]:
    ids = []
    if ref.tg_id is not None:
        ids.append(f"id:{ref.tg_id}")
    if ref.username:
        ids.append(f"u:{ref.username}")
    return ids


def _linked(doc: Doc) -> int | None:
    """The chat a channel document's latest header links to (discussion group, or a group's channel)."""
    value = (doc.get("latest") or {}).get("linked_chat_id")
    return int(value) if value is not None else None


class ChannelRepo:
    def __init__(self, store: Store) -> None:
        self._channels = store["channels"]
        self._aliases = store["channel_aliases"]
        self._snapshots = store["channel_snapshots"]

    async def resolve(self, ref: ChannelRef) -> str | None:
        ids = _alias_ids(ref)
        with translate_errors("resolve channel"):
            found = {d["_id"]: d["key"] async for d in self._aliases.find({"_id": {"$in": ids}})}
        for alias in ids:  # numeric id wins over a username that may have moved to another channel
            if alias in found:
                return str(found[alias])
        return None

    async def ensure(self, ref: ChannelRef) -> str:
        """The channel's key, creating the channel and recording any new alias of it."""
        key = await self.resolve(ref)
        if key is None:
            key = ref.natural_key()
            # another process may create it first: same key, same channel
            with translate_errors("create channel"), contextlib.suppress(DuplicateKeyError):
                await self._channels.insert_one(
                    {"_id": key, "usernames": [ref.username] if ref.username else [], "tg_id": ref.tg_id}
                )
        await self._add_aliases(key, ref)
        return key

    async def _add_aliases(self, key: str, ref: ChannelRef) -> None:
        ops = [UpdateOne({"_id": alias}, {"$setOnInsert": {"key": key}}, upsert=True) for alias in _alias_ids(ref)]
        update: dict[str, Any] = {}
        if ref.username:
            update["$addToSet"] = {"usernames": ref.username}
            update["$set"] = {"username": ref.username}
        if ref.tg_id is not None:
            update.setdefault("$set", {})["tg_id"] = ref.tg_id
        with translate_errors("record channel aliases"):
            try:
                await self._aliases.bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
            if update:
                await self._channels.update_one({"_id": key}, update)

    async def record_snapshot(self, key: str, channel: Channel) -> None:
        """Keep the header as seen now, and the latest values on the channel document."""
        snap: Doc = channel.model_dump(mode="python", exclude={"raw", "ref"})
        snap["channel"] = key
        snap["_id"] = f"{key}/{channel.seen_at.isoformat()}"
        if channel.raw is not None:
            snap["raw_sha256"] = channel.raw.sha256
        latest = {k: v for k, v in snap.items() if k not in {"_id", "channel"}}
        with translate_errors("record channel snapshot"):
            await self._channels.update_one({"_id": key}, {"$set": {"latest": latest}})
            with contextlib.suppress(DuplicateKeyError):
                await self._snapshots.insert_one(snap)

    async def get(self, key: str) -> Doc | None:
        with translate_errors("get channel"):
            return await self._channels.find_one({"_id": key})

    async def list(self, limit: int = 1000) -> list[Doc]:
        with translate_errors("list channels"):
            return await self._channels.find().sort("_id", 1).limit(limit).to_list(None)

    async def add_risk(self, keys: Sequence[str], risk: float) -> None:
        """A positive detection in these channels: raise each one's ``risk_score`` by ``risk`` and
        count the positive (detection writes channel risk only through here)."""
        with translate_errors("raise channel risk"):
            for key in keys:
                await self._channels.update_one({"_id": key}, {"$inc": {"risk_score": risk, "positives": 1}})

    async def risky(self, keys: Sequence[str]) -> set[str]:
        """The channels among ``keys`` with a positive ``risk_score`` (media seen there is wanted first)."""
        with translate_errors("read channels"):
            docs = await self._channels.find({"_id": {"$in": list(keys)}}, {"risk_score": 1}).to_list(None)
        return {d["_id"] for d in docs if (d.get("risk_score") or 0) > 0}

    async def private_keys(self) -> builtins.list[str]:
        """Channels never seen with a public username: private chats (see ``CaseAccess``)."""
        with translate_errors("list private channels"):
            return sorted([d["_id"] async for d in self._channels.find({"username": None}, {"_id": 1})])

    async def public_discussions(self, keys: Sequence[str]) -> set[str]:
        """The chats among ``keys`` that are the discussion group (comments) of a public channel.

        Both records must name each other (``latest.linked_chat_id``): the broadcast channel, seen
        with a public username, names the group as its discussion (what Telegram shows its readers),
        and the group names the channel (the comments path records it when it reads the threads
        through that channel). A group linked to a private channel, or to none, is not among them.
        """
        # whole ``latest`` documents, compared here: the embedded store answers dotted projections
        # flat and matches a missing field with ``$ne: None``
        with translate_errors("list discussion groups"):
            groups = await self._channels.find({"_id": {"$in": list(keys)}}, {"tg_id": 1, "latest": 1}).to_list(None)
            linked = {int(g["tg_id"]): g for g in groups if g.get("tg_id") is not None and _linked(g) is not None}
            if not linked:
                return set()
            channels = await self._channels.find(
                {"tg_id": {"$in": sorted({_linked(g) for g in linked.values()})}},
                {"tg_id": 1, "username": 1, "latest": 1},
            ).to_list(None)
        out: set[str] = set()
        for ch in channels:
            group = linked.get(_linked(ch) or 0)
            is_public_channel = bool(ch.get("username")) and (ch.get("latest") or {}).get("kind") == "channel"
            if is_public_channel and group is not None and _linked(group) == ch.get("tg_id"):
                out.add(str(group["_id"]))
        return out

    # -- reads for the investigator API ----------------------------------------------------------
    async def page(self, *, skip: int = 0, limit: int, exclude: Sequence[str] = ()) -> builtins.list[Doc]:
        """Channels by key, without ``exclude`` (the private chats a reader may not see)."""
        flt: Doc = {"_id": {"$nin": sorted(exclude)}} if exclude else {}
        with translate_errors("list channels"):
            return await self._channels.find(flt).sort("_id", 1).skip(skip).limit(limit).to_list(None)

    async def exists(self, key: str) -> bool:
        with translate_errors("resolve channel"):
            return await self._channels.find_one({"_id": key}, {"_id": 1}) is not None

    async def alias_usernames(self, key: str) -> set[str]:
        """Every username recorded as an alias of the channel."""
        with translate_errors("list channel aliases"):
            aliases = [a["_id"] async for a in self._aliases.find({"key": key}, {"_id": 1})]
        return {a[2:] for a in aliases if a.startswith("u:")}

    async def snapshots(
        self, key: str, projection: Doc | None = None, *, skip: int = 0, limit: int | None = None
    ) -> builtins.list[Doc]:
        """Header snapshots of one channel, oldest first."""
        with translate_errors("list channel snapshots"):
            cursor = self._snapshots.find({"channel": key}, projection).sort("seen_at", 1)
            if skip:
                cursor = cursor.skip(skip)
            if limit is not None:
                cursor = cursor.limit(limit)
            return await cursor.to_list(None)
