"""Alerts: raised once per natural key, then worked through by staff."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime

from foundation.models import Alert, utcnow
from storage import daily
from storage.client import Doc, Store, translate_errors

#: alert kinds shown only to the members of a case they name (``details.cases``) and to admins:
#: a watchlist match concerns one consenting person and belongs to her case (docs/watchlist.md)
CASE_SCOPED_KINDS: tuple[str, ...] = ("watchlist_match",)


def case_scope(cases: list[str] | None) -> Doc:
    """The filter that leaves out case-scoped alerts of other cases (``cases`` None: an admin, all)."""
    if cases is None:
        return {}
    return {"$or": [{"kind": {"$nin": list(CASE_SCOPED_KINDS)}}, {"details.cases": {"$in": list(cases)}}]}


def _scope(cases: Sequence[str] | None) -> Doc | None:
    return case_scope(None if cases is None else list(cases)) or None


#: called with the key of every alert newly raised in this process (the notifier's wake-up)
_RAISED_LISTENERS: list[Callable[[str], None]] = []


def on_alert_raised(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(key)`` after each new alert raised in this process; returns the unsubscribe.

    Why in storage: every feature that raises alerts goes through ``AlertRepo``, so a dispatcher
    learns of a same-process alert at once without those features knowing notifications exist.
    Alerts from other processes are found through the outbox (``AlertRepo.outbox``).
    """
    _RAISED_LISTENERS.append(listener)

    def unsubscribe() -> None:
        if listener in _RAISED_LISTENERS:
            _RAISED_LISTENERS.remove(listener)

    return unsubscribe


class AlertRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["alerts"]
        self._outbox = store["alert_outbox"]

    async def raise_alert(self, alert: Alert) -> bool:
        """Insert the alert unless one with the same key exists (returns whether it is new)."""
        from pymongo.errors import DuplicateKeyError

        with translate_errors("raise alert"):
            try:
                await self._coll.insert_one(alert.to_doc())
            except DuplicateKeyError:
                return False
        await self._to_outbox(alert)
        return True

    async def get(self, key: str) -> Doc | None:
        with translate_errors("get alert"):
            return await self._coll.find_one({"_id": key})

    async def list(self, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Doc]:
        flt: Doc = {}
        if status:
            flt["status"] = status
        if kind:
            flt["kind"] = kind
        with translate_errors("list alerts"):
            return await self._coll.find(flt).sort("raised_at", -1).limit(limit).to_list(None)

    async def set_status(self, key: str, status: str, by: str) -> bool:
        with translate_errors("update alert"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                return False
            history = [*doc.get("history", []), {"status": status, "by": by, "at": utcnow()}]
            await self._coll.replace_one({"_id": key}, {**doc, "status": status, "history": history})
        return True

    async def withdraw_person(self, person: str, by: str) -> int:
        """A consenting person withdrew (or her consent expired): her match records leave every
        case-scoped alert naming her, and an alert left with no match is closed. How many changed.

        Why: the review queue must stop showing her; the ledger keeps the record (evidence)."""
        changed = 0
        flt = {"kind": {"$in": list(CASE_SCOPED_KINDS)}, "details.persons": {"$in": [person]}}
        with translate_errors("update alert"):
            for doc in await self._coll.find(flt).to_list(None):
                details = dict(doc.get("details") or {})
                details["matches"] = [m for m in details.get("matches") or [] if m.get("person") != person]
                details["persons"] = [p for p in details.get("persons") or [] if p != person]
                details["withdrawn"] = sorted({*(details.get("withdrawn") or []), person})
                new = {**doc, "details": details}
                if not details["matches"] and doc.get("status") != "closed":
                    entry = {"status": "closed", "by": by, "at": utcnow(), "reason": "consent withdrawn"}
                    new.update(status="closed", history=[*doc.get("history", []), entry])
                await self._coll.replace_one({"_id": doc["_id"]}, new)
                changed += 1
        return changed

    # -- the notification outbox: new alerts not yet turned into deliveries -----------------------
    async def _to_outbox(self, alert: Alert) -> None:
        """Queue a new alert for the notifier (after the alert itself: a crash in between loses the
        notification, never invents one) and wake same-process listeners."""
        from pymongo.errors import DuplicateKeyError

        with translate_errors("queue alert for notification"), contextlib.suppress(DuplicateKeyError):
            await self._outbox.insert_one({"_id": alert.key, "kind": str(alert.kind), "at": utcnow()})
        for listener in list(_RAISED_LISTENERS):
            listener(alert.key)

    async def outbox(self, limit: int = 200) -> builtins.list[Doc]:
        """Alerts waiting for notification, oldest first (an outbox entry whose alert is gone is dropped)."""
        with translate_errors("read alert outbox"):
            keys = [d["_id"] async for d in self._outbox.find({}, {"_id": 1}).sort("at", 1).limit(limit)]
            if not keys:
                return []
            docs = {d["_id"]: d for d in await self._coll.find({"_id": {"$in": keys}}).to_list(None)}
        for key in keys:
            if key not in docs:
                await self.outbox_done(key)
        return [docs[k] for k in keys if k in docs]

    async def outbox_done(self, key: str) -> None:
        with translate_errors("settle alert outbox"):
            await self._outbox.delete_one({"_id": key})

    # -- reads for the investigator API ----------------------------------------------------------
    async def page(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        skip: int = 0,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        channel: str | None = None,
        cases: builtins.list[str] | None = None,
    ) -> builtins.list[Doc]:
        """Newest first, ``_id`` breaking ties so pages are stable; ``since``/``until`` bound ``raised_at``;
        ``cases`` scopes case-bound kinds."""
        flt: Doc = {k: v for k, v in (("status", status), ("kind", kind)) if v}
        if channel:
            flt["channels"] = {"$in": [channel]}
        raised = {op: v for op, v in (("$gte", since), ("$lt", until)) if v is not None}
        if raised:
            flt["raised_at"] = raised
        flt.update(case_scope(cases))
        with translate_errors("list alerts"):
            cursor = self._coll.find(flt).sort([("raised_at", -1), ("_id", 1)]).skip(skip).limit(limit)
            return await cursor.to_list(None)

    async def for_media(self, sha256: str) -> builtins.list[Doc]:
        with translate_errors("read media"):
            return await self._coll.find({"sha256": sha256}).sort("raised_at", -1).to_list(None)

    async def digests_of_kind(self, kind: str) -> builtins.list[str]:
        with translate_errors("read hash matches"):
            found = await self._coll.distinct("sha256", {"kind": kind})
        return [s for s in found if isinstance(s, str)]

    # -- dashboard figures (crawler/console/dashboard.py) -------------------------------------------
    # ``cases`` as in :meth:`page`: a count is information too (a monitor must not learn that a
    # channel or a day holds a watchlist match), so case-scoped kinds are counted for their cases only
    # (the default, no case, leaves every case-scoped alert out)
    async def per_day(self, since: datetime, until: datetime, *, cases: Sequence[str] | None = ()) -> dict[str, int]:
        """Alerts raised per UTC day in [since, until)."""
        return await daily.per_day(self._coll, "raised_at", since, until, _scope(cases))

    async def per_kind(self, since: datetime, until: datetime, *, cases: Sequence[str] | None = ()) -> dict[str, int]:
        """Alerts raised in [since, until), by kind."""
        return await daily.per_value(self._coll, "kind", "raised_at", since, until, _scope(cases))

    async def open_channels(
        self, limit: int = 20_000, *, cases: Sequence[str] | None = ()
    ) -> builtins.list[builtins.list[str]]:
        """The channel lists of open alerts (the channel list counts them per channel)."""
        with translate_errors("list alerts"):
            flt = {"status": "open", **(_scope(cases) or {})}
            docs = await self._coll.find(flt, {"channels": 1}).limit(limit).to_list(None)
        return [[str(c) for c in d.get("channels") or []] for d in docs]

    # -- reviewers' verdicts on hash matches (list precision, exchange feedback) ------------------
    async def set_review(self, key: str, verdict: str, by: str) -> bool:
        """A reviewer's verdict on a match (``confirmed`` or ``rejected``); the history keeps every one."""
        with translate_errors("review alert"):
            doc = await self._coll.find_one({"_id": key})
            if doc is None:
                return False
            history = [*doc.get("history", []), {"review": verdict, "by": by, "at": utcnow()}]
            await self._coll.replace_one({"_id": key}, {**doc, "review": verdict, "history": history})
        return True

    async def match_reviews(self) -> dict[str, dict[str, int]]:
        """Per list: hash-match alerts by review verdict (``unreviewed`` when none yet)."""
        with translate_errors("read hash matches"):
            docs = await self._coll.find({"kind": "hash_match"}, {"details": 1, "review": 1}).to_list(None)
        out: dict[str, dict[str, int]] = {}
        for doc in docs:
            name = str((doc.get("details") or {}).get("list") or "")
            verdict = str(doc.get("review") or "unreviewed")
            per = out.setdefault(name, {})
            per[verdict] = per.get(verdict, 0) + 1
        return out

    async def matches_of_list(self, name: str) -> builtins.list[Doc]:
        """Hash-match alerts raised on one list (the exchange feedback reads their reviews)."""
        with translate_errors("read hash matches"):
            docs = await self._coll.find({"kind": "hash_match"}).to_list(None)
        return [d for d in docs if (d.get("details") or {}).get("list") == name]

    async def mark_feedback(self, key: str, verdict: str, exchange_key: str | None = None) -> None:
        """The verdict last sent to the list's exchange for this match, and the exchange record key it
        went to (sent again when either changes: a ThreatExchange descriptor added later)."""
        with translate_errors("update alert"):
            doc = await self._coll.find_one({"_id": key})
            if doc is not None:
                sent = {"feedback_sent": verdict, "feedback_key": exchange_key}
                await self._coll.replace_one({"_id": key}, {**doc, **sent})
