"""Messages and their versions.

``messages`` holds the current version of each message; ``message_versions`` holds every version
that was superseded, written *before* the current document is replaced so that a crash between the
two writes is repaired by simply ingesting the batch again (the version insert is keyed by
``<key>/v<n>`` and so idempotent). ``versions(key)`` returns both, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import ReplaceOne

from foundation.models import Message
from storage import daily
from storage.client import Doc, Store, insert_new, translate_errors
from storage.repos.media import MediaRepo


@dataclass
class MessageWrites:
    """What one ingest batch wants written.

    ``current`` holds the final current document per message id (a later copy of the same message
    in one batch replaces an earlier one); ``new_ids`` are the ids not stored before this batch.
    """

    versions: list[Doc] = field(default_factory=list)
    current: dict[str, Doc] = field(default_factory=dict)
    new_ids: set[str] = field(default_factory=set)
    raw: list[Doc] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.versions or self.current or self.raw)


class MessageRepo:
    CURRENT_FIELDS = {
        "_id": 1,
        "content_hash": 1,
        "media_digests": 1,
        "version": 1,
        "first_seen_at": 1,
        "deleted_at": 1,
        "raw_sha256": 1,
    }

    def __init__(self, store: Store) -> None:
        self._messages = store["messages"]
        self._versions = store["message_versions"]
        self._raw = store["raw_captures"]
        self._media = MediaRepo(store)

    async def current(self, keys: Iterable[str]) -> dict[str, Doc]:
        """The version bookkeeping of each already-stored message among ``keys``."""
        ids = list(dict.fromkeys(keys))
        if not ids:
            return {}
        with translate_errors("read messages"):
            cursor = self._messages.find({"_id": {"$in": ids}}, self.CURRENT_FIELDS)
            return {d["_id"]: d async for d in cursor}

    async def write(self, writes: MessageWrites) -> None:
        await insert_new(self._raw, writes.raw, "store raw captures")
        await insert_new(self._versions, writes.versions, "store message versions")
        # Messages not stored before are inserted (cheaper than upserts); one that another process
        # stored meanwhile fails with a duplicate key and is written as a replace instead.
        fresh = [doc for key, doc in writes.current.items() if key in writes.new_ids]
        replace = [doc for key, doc in writes.current.items() if key not in writes.new_ids]
        if fresh and await insert_new(self._messages, fresh, "store messages") < len(fresh):
            replace += fresh
        if replace:
            with translate_errors("store messages"):
                await self._messages.bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in replace], ordered=False
                )

    async def mark_deleted(self, keys: Sequence[str], at: datetime) -> int:
        """Set ``deleted_at`` once on each stored message; nothing is ever removed.

        Written as a replace guarded by the version read, not ``$set``: datetimes must be written by
        insert/replace to stay datetimes on the embedded server (see ``from_mongo_dt``).
        """
        if not keys:
            return 0
        with translate_errors("mark messages deleted"):
            docs = await self._messages.find({"_id": {"$in": list(keys)}}).to_list(None)
            ops = [
                ReplaceOne({"_id": d["_id"], "version": d.get("version")}, {**d, "deleted_at": at, "deleted": True})
                for d in docs
                if d.get("deleted_at") is None
            ]
            if not ops:
                return 0
            result = await self._messages.bulk_write(ops, ordered=False)
        return int(result.modified_count)

    async def add_sightings(self, messages: Sequence[Message], at: datetime) -> int:
        """Where each media digest was seen (kept by ``MediaRepo``, the owner of ``sightings``)."""
        return await self._media.add_sightings(messages, at)

    async def keys_with_media(self, digests: Sequence[str]) -> list[str]:
        """Every message key that ever held one of these media (through ``MediaRepo``'s sightings)."""
        return await self._media.message_keys_with(digests)

    async def full(self, keys: Sequence[str]) -> dict[str, Doc]:
        if not keys:
            return {}
        with translate_errors("read messages"):
            return {d["_id"]: d async for d in self._messages.find({"_id": {"$in": list(keys)}})}

    async def get(self, key: str) -> Doc | None:
        with translate_errors("get message"):
            return await self._messages.find_one({"_id": key})

    async def versions(self, key: str) -> list[Doc]:
        """Every stored version of one message, oldest first, the current one last."""
        with translate_errors("list versions"):
            docs = await self._versions.find({"message": key}).to_list(None)
            current = await self._messages.find_one({"_id": key})
        by_version = {d["version"]: d for d in docs}
        if current is not None:
            by_version[current["version"]] = current
        return [by_version[v] for v in sorted(by_version)]

    async def query(self, *, channel: str | None = None, limit: int = 50) -> list[Doc]:
        """Newest first, optionally for one channel key."""
        flt: Doc = {"channel": channel} if channel else {}
        sort = [("msg_id", -1)] if channel else [("date_ts", -1)]
        with translate_errors("query messages"):
            return await self._messages.find(flt).sort(sort).limit(limit).to_list(None)

    async def raw_capture(self, sha256: str) -> Doc | None:
        with translate_errors("get raw capture"):
            return await self._raw.find_one({"_id": sha256})

    # -- reads for the investigator API (crawler.investigate): the caller builds the filter ---------
    async def search(
        self,
        query: Doc,
        sort: Sequence[tuple[str, int]] | None = None,
        *,
        skip: int = 0,
        limit: int | None = None,
        what: str = "search messages",
    ) -> list[Doc]:
        """Messages matching a plain filter (``crawler.investigate.filters`` builds it), in ``sort`` order."""
        with translate_errors(what):
            cursor = self._messages.find(query)
            if sort:
                cursor = cursor.sort(list(sort))
            if skip:
                cursor = cursor.skip(skip)
            if limit is not None:
                cursor = cursor.limit(limit)
            return await cursor.to_list(None)

    async def channels_with_media(self, sha256: str) -> list[str]:
        """Channels of messages whose media list holds this digest (sightings may be missing)."""
        with translate_errors("read messages"):
            found = await self._messages.distinct("channel", {"media": {"$elemMatch": {"sha256": sha256}}})
        return [c for c in found if isinstance(c, str)]

    # -- dashboard figures (crawler/console/dashboard.py) -------------------------------------------
    async def collected_per_day(self, since: datetime, until: datetime) -> dict[str, int]:
        """Messages first stored per UTC day in [since, until) (the crawl volume)."""
        return await daily.per_day(self._messages, "first_seen_at", since, until)

    async def posted_per_day(self, since: datetime, until: datetime) -> dict[str, int]:
        """Messages dated (posted) per UTC day in [since, until): what a search by ``since``/``until`` lists."""
        return await daily.per_day(self._messages, "date_ts", since, until, epoch=True)

    async def id_states(self, channel: str) -> list[Doc]:
        """Every stored message id of one channel with its deletion mark, by id (the gap report)."""
        with translate_errors("read message ids"):
            cursor = self._messages.find({"channel": channel}, {"msg_id": 1, "deleted": 1, "deleted_at": 1})
            docs = await cursor.to_list(None)
        return sorted(docs, key=lambda d: int(d.get("msg_id") or 0))

    async def network_rows(self, channels: Sequence[str] | None = None) -> list[Doc]:
        """What a network graph reads of each message: who it forwards, mentions, links, via which
        bot, which media, and when (``channels`` None: every channel)."""
        flt: Doc = {"channel": {"$in": list(channels)}} if channels is not None else {}
        fields = {"channel": 1, "msg_id": 1, "date": 1, "forwarded_from": 1, "mentions": 1, "links": 1,
                  "via_bot": 1, "media_digests": 1, "media": 1}  # fmt: skip
        with translate_errors("read message network"):
            return await self._messages.find(flt, fields).to_list(None)

    async def network_rows_naming(self, usernames: Sequence[str], limit: int = 20_000) -> list[Doc]:
        """``network_rows`` of messages in other channels that forward or mention one of ``usernames``."""
        names = sorted({u.lower() for u in usernames})
        if not names:
            return []
        fields = {"channel": 1, "msg_id": 1, "date": 1, "forwarded_from": 1, "mentions": 1, "links": 1,
                  "via_bot": 1}  # fmt: skip
        flt: Doc = {"$or": [{"mentions": {"$in": names}}, {"forwarded_from.username": {"$in": names}}]}
        with translate_errors("read message network"):
            return await self._messages.find(flt, fields).limit(limit).to_list(None)

    async def raw_captures_for(self, channel: str | None = None) -> list[Doc]:
        """The raw HTML captures (with URL and fetch time) behind one channel's messages and their
        versions, or behind every message (``channel`` None), oldest fetch first."""
        with translate_errors("read raw captures"):
            if channel is None:
                docs = await self._raw.find({"kind": "html"}).to_list(None)
            else:
                shas = set(await self._messages.distinct("raw_sha256", {"channel": channel}))
                shas |= set(await self._versions.distinct("raw_sha256", {"channel": channel}))
                shas.discard(None)
                docs = await self._raw.find({"_id": {"$in": sorted(shas)}, "kind": "html"}).to_list(None)
        return sorted(docs, key=lambda d: (str(d.get("fetched_at")), d["_id"]))
