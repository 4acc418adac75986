"""The investigator's queries over collected evidence: channels, messages in context, media.

No HTTP here: the API and the console both call this class and each writes its own audit entry,
because only they know who asked and through which door.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from crawler.evidence.access import EVERYTHING, ChannelView
from crawler.evidence.redaction import NO_CASE, Readership
from crawler.investigate.filters import MessageSearch, merge, resolve_channel, to_mongo
from crawler.investigate.pagination import Page
from crawler.investigate.proofs import subject_proofs
from crawler.investigate.serialize import jsonable, message_json, with_key
from foundation.errors import NotAuthorized, NotFound
from foundation.models import WATCHLIST_DETECTOR
from storage.client import Doc, Store
from storage.repos import MessageRepo
from storage.repos.alerts import CASE_SCOPED_KINDS, AlertRepo
from storage.repos.channels import ChannelRepo
from storage.repos.media import MediaRepo
from storage.repos.verdicts import VerdictRepo

#: search order: newest first; ``_id`` breaks ties so pages are stable
ORDER = [("date_ts", -1), ("_id", -1)]
REPLY_DEPTH = 20
NEIGHBOURS = 5
EXPORT_BATCH = 500
#: a search narrowed to at most this many message ids (media searches go through the sightings
#: index) is read by id and ordered here: a sorted scan would make the embedded store's planner walk
#: the date index over every message to find a handful
KNOWN_IDS_MAX = 5000


def _known_ids(query: Doc) -> list[str] | None:
    ids = query.get("_id")
    if isinstance(ids, dict) and isinstance(ids.get("$in"), list) and len(ids["$in"]) <= KNOWN_IDS_MAX:
        return list(ids["$in"])
    return None


def _ordered(docs: list[Doc]) -> list[Doc]:
    """``ORDER`` (date, then _id, both descending; undated last), done in Python."""
    dated = sorted((d for d in docs if d.get("date") is not None), key=lambda d: (d["date"], d["_id"]), reverse=True)
    undated = sorted((d for d in docs if d.get("date") is None), key=lambda d: d["_id"], reverse=True)
    return dated + undated


def readable_only(query: Doc, view: ChannelView) -> Doc:
    """``query`` narrowed to the channels ``view`` may read (unchanged when nothing is hidden).

    Keeps the shapes the embedded store plans well: an id list is filtered here, a single channel
    either stays or matches nothing, a channel list loses the hidden ones; only an open search gets
    a ``$nin`` over the hidden channels.
    """
    if not view.hidden:
        return query
    known = _known_ids(query)
    if known is not None:
        return {**query, "_id": {"$in": view.readable_messages(known)}}
    channel = query.get("channel")
    if isinstance(channel, str):
        return query if view.may_read(channel) else {"_id": {"$in": []}}
    if isinstance(channel, dict) and isinstance(channel.get("$in"), list) and len(channel) == 1:
        return {**query, "channel": {"$in": view.readable(channel["$in"])}}
    return merge([query, {"channel": {"$nin": sorted(view.hidden)}}])


#: called with the refused channel key before ``NotAuthorized`` is raised (the caller audits it)
Refused = Callable[[str], Awaitable[None]]


class InvestigateService:
    """Queries as seen by one reader: ``view`` hides the case-restricted channels they may not read
    (``CaseAccess.visible_channels``); lists leave them out, direct reads refuse them."""

    def __init__(
        self,
        store: Store,
        view: ChannelView = EVERYTHING,
        refused: Refused | None = None,
        *,
        readers: Readership = NO_CASE,
    ) -> None:
        self._store = store
        #: whose watchlist ledger entries this reader may read (none unless the door says)
        self.readers = readers
        self._messages = MessageRepo(store)
        self._channels = ChannelRepo(store)
        self.view = view
        self._refused = refused

    async def require_readable(self, channel: str) -> None:
        """``NotAuthorized`` (after the caller's audit hook) when ``channel`` is hidden from this reader."""
        if self.view.may_read(channel):
            return
        if self._refused is not None:
            await self._refused(channel)
        raise NotAuthorized(
            "this channel is a private chat of a case you are not a member of", code="access.private_chat"
        )

    # -- channels ----------------------------------------------------------------------------
    async def channels(self, page: Page) -> list[dict[str, Any]]:
        docs = await self._channels.page(skip=page.offset, limit=page.limit, exclude=sorted(self.view.hidden))
        return [_channel_summary(d) for d in docs]

    async def channel(self, name: str) -> dict[str, Any]:
        key = await resolve_channel(self._store, name)
        await self.require_readable(key)
        doc = await self._channels.get(key)
        if doc is None:
            raise NotFound(f"no channel {name!r}", code="channels.unknown", params={"name": name[:100]})
        out = with_key(doc)
        out["usernames"] = await self._usernames(key, doc)
        return out

    async def usernames(self, name: str) -> dict[str, Any]:
        detail = await self.channel(name)
        key = detail["key"]
        snaps = await self._channels.snapshots(key)
        # the snapshots carry no username, so the history is the alias set plus the current name
        return {
            "key": key,
            "current": detail.get("username"),
            "usernames": detail["usernames"],
            "first_seen_at": jsonable(snaps[0]["seen_at"]) if snaps else None,
        }

    async def _usernames(self, key: str, doc: Doc) -> list[str]:
        names = await self._channels.alias_usernames(key) | set(doc.get("usernames") or [])
        return sorted(names)

    async def members(self, name: str, page: Page) -> tuple[str, list[dict[str, Any]]]:
        """Member/subscriber counts over time, oldest first, from the header snapshots."""
        key = await resolve_channel(self._store, name)
        await self.require_readable(key)
        projection = {"seen_at": 1, "counters": 1, "title": 1}
        docs = await self._channels.snapshots(key, projection, skip=page.offset, limit=page.limit)
        points = [
            {
                "seen_at": jsonable(d.get("seen_at")),
                **{k: (d.get("counters") or {}).get(k) for k in ("subscribers", "members", "online")},
            }
            for d in docs
        ]
        return key, points

    # -- messages ----------------------------------------------------------------------------
    async def search(self, search: MessageSearch, page: Page) -> list[dict[str, Any]]:
        query = readable_only(await to_mongo(self._store, search), self.view)
        known = _known_ids(query)
        if known is not None:
            # an empty id list is answered here: the embedded store scans everything for `$in: []`
            found = await self._messages.search(query) if known else []
            docs = _ordered(found)[page.offset : page.offset + page.limit]
        else:
            docs = await self._messages.search(query, ORDER, skip=page.offset, limit=page.limit)
        return [message_json(d) for d in docs]

    async def stream(self, search: MessageSearch) -> AsyncIterator[Doc]:
        """Every matching message, newest first, read in batches (for exports)."""
        query = readable_only(await to_mongo(self._store, search), self.view)
        if _known_ids(query) == []:
            return  # nothing can match (and `$in: []` would be a full scan on the embedded store)
        offset = 0
        while True:
            docs = await self._messages.search(query, ORDER, skip=offset, limit=EXPORT_BATCH, what="export messages")
            for doc in docs:
                yield doc
            if len(docs) < EXPORT_BATCH:
                return
            offset += len(docs)

    async def message(self, key: str) -> Doc:
        doc = await self._messages.get(key)
        if doc is None:
            raise NotFound(f"no message {key!r}", code="messages.unknown", params={"key": key[:100]})
        await self.require_readable(str(doc["channel"]))
        return doc

    async def context(self, key: str, neighbours: int = NEIGHBOURS) -> dict[str, Any]:
        """A message with what surrounds it: neighbours, album, reply chain, replies, versions."""
        doc = await self.message(key)
        channel, msg_id = doc["channel"], doc["msg_id"]
        what = "read message context"
        find = self._messages.search
        before = await find(
            {"channel": channel, "msg_id": {"$lt": msg_id}}, [("msg_id", -1)], limit=neighbours, what=what
        )
        after = await find(
            {"channel": channel, "msg_id": {"$gt": msg_id}}, [("msg_id", 1)], limit=neighbours, what=what
        )
        album: list[Doc] = []
        if doc.get("grouped_id"):
            album = await find({"channel": channel, "grouped_id": doc["grouped_id"]}, [("msg_id", 1)], what=what)
        replies = await find({"channel": channel, "reply_to": msg_id}, [("msg_id", 1)], limit=50, what=what)
        chain = await self._reply_chain(doc)
        versions = await self._messages.versions(key)
        ledger = await subject_proofs(self._store, f"message:{key}", self.readers)
        return {
            "message": message_json(doc),
            "before": [message_json(d) for d in reversed(before)],
            "after": [message_json(d) for d in after],
            "album": [message_json(d) for d in album],
            "reply_chain": [message_json(d) for d in chain],
            "replies": [message_json(d) for d in replies],
            "versions": [message_json({**v, "_id": v.get("message", v["_id"])}) for v in versions],
            "ledger": ledger,
        }

    async def _reply_chain(self, doc: Doc) -> list[Doc]:
        """The messages this one answers, nearest first (bounded: chains can be long or cyclic)."""
        chain: list[Doc] = []
        seen = {doc["msg_id"]}
        current = doc
        while current.get("reply_to") and len(chain) < REPLY_DEPTH:
            parent_id = int(current["reply_to"])
            if parent_id in seen:
                break
            seen.add(parent_id)
            parent = await self._messages.get(f"{doc['channel']}/{parent_id}")
            if parent is None:
                break
            chain.append(parent)
            current = parent
        return chain

    # -- media -------------------------------------------------------------------------------
    async def media(self, sha256: str) -> dict[str, Any]:
        """One media item: hashes, every sighting across channels, matches and verdicts."""
        doc = await MediaRepo(self._store).get(sha256)
        sightings = await MediaRepo(self._store).sightings_of(sha256)
        # a watchlist match belongs to its case's review queue (/alerts, case-scoped), never to the
        # media view every reader of the channel sees: its alert and its verdict are left out (even
        # the bare decision would tell a monitor that an enrolled person is in this media)
        alerts = [a for a in await AlertRepo(self._store).for_media(sha256) if a.get("kind") not in CASE_SCOPED_KINDS]
        verdicts = [v for v in await VerdictRepo(self._store).of_media(sha256) if not _review_only(v)]
        by_media = {"media": {"$elemMatch": {"sha256": sha256}}}
        messages = await self._messages.search(by_media, ORDER, limit=500, what="read media")
        if doc is None and not sightings and not messages:
            raise NotFound(f"no media {sha256}", code="media.unknown", params={"sha": sha256[:12]})
        if self.view.hidden:
            seen_anywhere = {s["channel"] for s in sightings} | {m["channel"] for m in messages}
            sightings = [s for s in sightings if self.view.may_read(s["channel"])]
            messages = [m for m in messages if self.view.may_read(m["channel"])]
            if seen_anywhere and not sightings and not messages:
                # seen only in private chats this reader may not read: refuse the item itself
                await self.require_readable(sorted(seen_anywhere & self.view.hidden)[0])
        seen_in = {(s["channel"], s["msg_id"]) for s in sightings}
        for m in messages:  # messages carry digests even where no sighting was recorded
            if (m["channel"], m["msg_id"]) not in seen_in:
                sightings.append(
                    {"sha256": sha256, "channel": m["channel"], "msg_id": m["msg_id"], "message": m["_id"]}
                )
        # a sighting records when the item was first seen in a message (``seen_at``); the message
        # itself knows when it was last seen by a crawl: both are shown, never an empty cell
        by_key = {m["_id"]: m for m in messages}
        for s in sightings:
            msg = by_key.get(f"{s['channel']}/{s['msg_id']}") or {}
            s["first_seen_at"] = s.get("seen_at") or msg.get("first_seen_at")
            s["last_seen_at"] = msg.get("last_seen_at") or s["first_seen_at"]
        return {
            "sha256": sha256,
            "hashes": jsonable(
                {k: v for k, v in (doc or {}).items() if k in {"md5", "pdq", "pdq_quality", "size", "mime"}}
            ),
            "media": with_key(_without_review_only(doc)) if doc else None,
            "sightings": [
                jsonable({**{k: v for k, v in s.items() if k != "_id"}, "message": f"{s['channel']}/{s['msg_id']}"})
                for s in sightings
            ],
            "channels": sorted({s["channel"] for s in sightings}),
            "matches": [with_key(a) for a in alerts if a.get("kind") == "hash_match"],
            "alerts": [with_key(a) for a in alerts],
            "verdicts": [with_key(v) for v in verdicts],
            "messages": [message_json(m) for m in messages],
        }

    async def media_channels(self, sha256: str) -> list[str]:
        """Channels a media item was seen in (what a case authorization must cover)."""
        from crawler.evidence.access import CaseAccess

        return await CaseAccess(self._store).media_channels(sha256)


def _channel_summary(doc: Doc) -> dict[str, Any]:
    latest = doc.get("latest") or {}
    return jsonable(
        {
            "key": doc["_id"],
            "username": doc.get("username"),
            "usernames": doc.get("usernames") or [],
            "tg_id": doc.get("tg_id"),
            "title": latest.get("title"),
            "state": latest.get("state"),
            "subscribers": (latest.get("counters") or {}).get("subscribers"),
            "seen_at": latest.get("seen_at"),
            "risk_score": doc.get("risk_score", 0),
        }
    )


#: verdict decisions seen only in the case-scoped review queue, never in the media view
REVIEW_ONLY_DECISIONS = frozenset({"watchlist_match"})


def _review_only(verdict: Any) -> bool:
    if not isinstance(verdict, dict):
        return False
    return (
        verdict.get("decision") in REVIEW_ONLY_DECISIONS
        or verdict.get("detector") == WATCHLIST_DETECTOR
        or bool(verdict.get("matches"))
    )


def _without_review_only(doc: Doc) -> Doc:
    """The media document without review-only verdicts in its ``verdicts`` map."""
    verdicts = doc.get("verdicts")
    if not isinstance(verdicts, dict):
        return doc
    kept = {k: v for k, v in verdicts.items() if k != WATCHLIST_DETECTOR and not _review_only(v)}
    return {**doc, "verdicts": kept}
