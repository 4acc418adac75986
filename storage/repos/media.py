"""Distinct media (``_id`` = SHA-256 of the bytes), each hashed once, and where each was seen.

Sightings are written by the ingest door's ``persist`` stage for every stored message's media
digests (``MessageRepo.add_sightings`` hands them here): this repository owns both collections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from foundation.models import Message
from storage import daily
from storage.client import Doc, Store, insert_new, translate_errors

#: the hash fields a media document carries (what matching and takedown items read)
HASH_FIELDS: Doc = {"md5": 1, "pdq": 1, "pdq_usable": 1, "media_kind": 1}


class MediaRepo:
    def __init__(self, store: Store) -> None:
        self._media = store["media"]
        self._sightings = store["sightings"]

    async def insert(self, doc: Doc) -> bool:
        """Store a newly hashed media document; False when its SHA-256 is already known (a
        concurrent worker hashed the same bytes first), which leaves the stored one as it is."""
        with translate_errors("store media"):
            try:
                await self._media.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def known(self, digests: Sequence[str]) -> set[str]:
        """Which of these digests are already hashed (so each media is hashed once)."""
        if not digests:
            return set()
        with translate_errors("read media"):
            return {d["_id"] async for d in self._media.find({"_id": {"$in": list(digests)}}, {"_id": 1})}

    async def stream_hashes(
        self, fields: Sequence[str], *, since: datetime | None = None, batch_size: int = 5000
    ) -> AsyncIterator[list[Doc]]:
        """Every stored media item in batches, only ``_id`` and ``fields`` (retroactive matching reads
        all of them: a projection keeps the read small). ``since``: first seen at or after it."""
        flt: Doc = {} if since is None else {"first_seen_at": {"$gte": since}}
        projection = {f: 1 for f in fields}
        batch: list[Doc] = []
        with translate_errors("read media"):
            async for doc in self._media.find(flt, projection, batch_size=batch_size):
                batch.append(doc)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def sighting_span(self, sha256: str) -> Doc | None:
        """When and where a media item was seen: first/last ``seen_at``, count, channels, first message."""
        with translate_errors("list sightings"):
            docs = await self._sightings.find({"sha256": sha256}).to_list(None)
        if not docs:
            return None
        docs.sort(key=lambda d: (d["seen_at"], d["_id"]))
        return {
            "first_seen_at": docs[0]["seen_at"],
            "last_seen_at": docs[-1]["seen_at"],
            "sightings": len(docs),
            "channels": sorted({d["channel"] for d in docs if d.get("channel")}),
            "first_message": docs[0].get("message"),
            "first_posted_at": min((d["message_date"] for d in docs if d.get("message_date")), default=None),
        }

    async def add_matches(self, sha256: str, matches: Sequence[Doc]) -> None:
        """Record list matches found after the media was stored (one per list, signal type and value)."""
        with translate_errors("update media"):
            doc = await self._media.find_one({"_id": sha256})
            if doc is None:
                return
            have = {(m.get("list"), m.get("signal_type"), m.get("value")) for m in doc.get("matches") or []}
            new = [m for m in matches if (m.get("list"), m.get("signal_type"), m.get("value")) not in have]
            if new:
                doc.update(matches=[*(doc.get("matches") or []), *new], matched=True)
                await self._media.replace_one({"_id": sha256}, doc)

    async def get(self, sha256: str) -> Doc | None:
        with translate_errors("get media"):
            return await self._media.find_one({"_id": sha256})

    async def sightings(self, sha256: str) -> list[Doc]:
        with translate_errors("list sightings"):
            return await self._sightings.find({"sha256": sha256}).to_list(None)

    async def hashes(self, digests: Sequence[str]) -> list[Doc]:
        """``_id``, ``md5``, ``pdq``, ``pdq_usable`` and ``media_kind`` of each stored digest."""
        if not digests:
            return []
        with translate_errors("read media"):
            return await self._media.find({"_id": {"$in": list(digests)}}, HASH_FIELDS).to_list(None)

    async def record_verdict(self, sha256: str, detector: str, verdict: Doc) -> None:
        """Keep the latest verdict of ``detector`` on the media document (when the media is stored)."""
        with translate_errors("store verdict"):
            current = await self._media.find_one({"_id": sha256})
            if current is not None:  # replace, not $set: the embedded server keeps datetimes that way
                latest = {**current.get("verdicts", {}), detector: verdict}
                await self._media.replace_one({"_id": sha256}, {**current, "verdicts": latest})

    async def hold(self, digests: Sequence[str]) -> int:
        """Put media under legal hold (reported content is evidence: its bytes are never purged);
        ``legal_hold`` is a plain bool, so ``$set`` is safe on every server. Returns how many are held."""
        if not digests:
            return 0
        with translate_errors("set legal hold"):
            res = await self._media.update_many({"_id": {"$in": list(digests)}}, {"$set": {"legal_hold": True}})
        return int(res.matched_count)

    async def held(self) -> set[str]:
        """Digests under legal hold (``legal_hold: true``): their quarantined bytes are never purged."""
        with translate_errors("read legal holds"):
            return {d["_id"] async for d in self._media.find({"legal_hold": True}, {"_id": 1})}

    async def add_sightings(self, messages: Sequence[Message], at: datetime) -> int:
        """Where each media digest was seen: ``<sha256>/<channel>/<msg_id>``, first sighting kept."""
        docs = {
            f"{ref.sha256}/{msg.channel_key}/{msg.msg_id}": {
                "_id": f"{ref.sha256}/{msg.channel_key}/{msg.msg_id}",
                "sha256": ref.sha256,
                "channel": msg.channel_key,
                "msg_id": msg.msg_id,
                "message": msg.key,
                "message_date": msg.date,
                "seen_at": at,
                "source": msg.source.value,
            }
            for msg in messages
            for ref in msg.media
            if ref.sha256 and msg.channel_key
        }
        return await insert_new(self._sightings, list(docs.values()), "store sightings")

    async def message_keys_with(self, digests: Sequence[str]) -> list[str]:
        """Every message key that ever held one of these media (through the sightings index)."""
        if not digests:
            return []
        with translate_errors("read sightings"):
            # equality for one digest: the embedded store answers it from the index, `$in` by a scan
            flt: Doc = {"sha256": digests[0]} if len(digests) == 1 else {"sha256": {"$in": list(digests)}}
            cursor = self._sightings.find(flt, {"channel": 1, "msg_id": 1})
            return sorted({f"{d['channel']}/{d['msg_id']}" async for d in cursor})

    async def sighting_channels(self, sha256: str) -> list[str]:
        """The channels a media item was seen in, sorted."""
        return sorted({s["channel"] for s in await self.sightings(sha256)})

    # -- reads for the investigator API ----------------------------------------------------------
    async def sightings_of(self, sha256: str) -> list[Doc]:
        """Every sighting of one item, first seen first."""
        with translate_errors("read media"):
            return await self._sightings.find({"sha256": sha256}).sort("seen_at", 1).to_list(None)

    async def with_md5(self, md5: str) -> list[str]:
        """Digests of the items with this MD5."""
        with translate_errors("read media"):
            return [d["_id"] async for d in self._media.find({"md5": md5}, {"_id": 1})]

    async def matched(self) -> list[str]:
        """Digests of the items marked ``matched`` (an imported hash list named them)."""
        with translate_errors("read hash matches"):
            found = await self._media.distinct("_id", {"matched": True})
        return [s for s in found if isinstance(s, str)]

    # -- dashboard figures (crawler/console/dashboard.py) -------------------------------------------
    async def new_per_day(self, since: datetime, until: datetime) -> dict[str, int]:
        """Distinct media first hashed per UTC day in [since, until)."""
        return await daily.per_day(self._media, "first_seen_at", since, until)

    async def set_ocr(self, sha256: str, fields: Doc) -> None:
        """The text read in this media item (``ocr_text``) and how (engine, error, time): flat
        strings and numbers, so ``$set`` keeps their types on every server."""
        allowed = {k: v for k, v in fields.items() if k.startswith("ocr_")}
        with translate_errors("store media text"):
            await self._media.update_one({"_id": sha256}, {"$set": allowed})

    async def with_text(self, pattern: str, limit: int = 10_000) -> list[str]:
        """Digests of media whose read text matches a regular expression (the message search's ``q``)."""
        with translate_errors("search media text"):
            cursor = self._media.find({"ocr_text": {"$regex": pattern}}, {"_id": 1}).limit(limit)
            return [d["_id"] async for d in cursor]

    async def texts(self, digests: Sequence[str]) -> dict[str, str]:
        """The read text of each of these media items that has any."""
        if not digests:
            return {}
        with translate_errors("read media text"):
            cursor = self._media.find({"_id": {"$in": list(digests)}}, {"ocr_text": 1})
            return {d["_id"]: str(d["ocr_text"]) async for d in cursor if d.get("ocr_text")}

    async def add_sighting(
        self, sha256: str, *, channel: str, msg_id: int, message: str, at: datetime, source: str
    ) -> None:
        """One sighting made by tgwatch itself (a screenshot of the post), in the shape of the others."""
        doc = {"_id": f"{sha256}/{channel}/{msg_id}", "sha256": sha256, "channel": channel, "msg_id": msg_id,
               "message": message, "message_date": None, "seen_at": at, "source": source}  # fmt: skip
        await insert_new(self._sightings, [doc], "store sightings")

    async def screenshots_of(self, message: str) -> list[str]:
        """Digests of the screenshots taken of one message."""
        with translate_errors("read screenshots"):
            cursor = self._media.find({"screenshot_of": message}, {"_id": 1})
            return [d["_id"] async for d in cursor]
