"""A durable work queue in one MongoDB collection: leases, attempts, back-off, dead-letter.

Used by crawl tasks and detection jobs alike. Every transition is one atomic
``find_one_and_update``/``update_one`` guarded by the job's state and lease token, so two consumers
can never hold the same job, an expired lease is re-claimed by someone else, and a late ack from a
consumer whose lease expired is refused (``LeaseLost``) instead of overwriting newer work.

Times used in comparisons (``available_at``, ``lease_until``) are epoch seconds: portable, and
immune to the embedded server's habit of turning ``$set`` datetimes into strings.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from foundation.errors import TgwatchError
from storage.client import Doc, Store, translate_errors

READY, LEASED, DONE, DEAD = "ready", "leased", "done", "dead"
#: candidates read per job wanted, so concurrent consumers pick different jobs
CANDIDATE_SPREAD = 4


class LeaseLost(TgwatchError):
    """The job is no longer leased with this token (expired and re-claimed, or already settled)."""

    kind = "lease_lost"


class UnknownJob(TgwatchError):
    kind = "unknown_job"


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str
    until: float
    attempt: int
    payload: dict[str, Any]
    priority: int


def _lease(doc: Doc) -> Lease:
    return Lease(doc["_id"], doc["lease_token"], doc["lease_until"], doc["attempts"], doc["payload"], doc["priority"])


def _error_entry(attempt: int, error: str) -> str:
    """Error history entries are strings ("attempt N: message"): the embedded server stores a
    ``$push``-ed sub-document as a JSON string, so a string is what both servers agree on."""
    return f"attempt {attempt}: {error[:2000]}"


def default_backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based): 2, 4, 8 … capped at one hour."""
    return float(min(2**attempt, 3600))


class WorkQueue:
    def __init__(
        self,
        store: Store,
        collection: str,
        *,
        max_attempts: int = 5,
        backoff: Callable[[int], float] = default_backoff,
        clock: Callable[[], float] = time.time,
        reclaim_interval: float = 1.0,
    ) -> None:
        self._coll = store[collection]
        self.max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        #: seconds between looks for expired leases (always looked for when nothing is ready)
        self.reclaim_interval = reclaim_interval
        self._next_reclaim = 0.0

    async def enqueue(self, job_id: str, payload: dict[str, Any], *, priority: int = 0, delay: float = 0.0) -> bool:
        """Add a job once; enqueuing the same id again is a no-op (returns False)."""
        now = self._clock()
        doc: Doc = {
            "_id": job_id,
            "state": READY,
            "priority": priority,
            "available_at": now + delay,
            "enqueued_at": now,
            "attempts": 0,
            "lease_owner": None,
            "lease_token": None,
            "lease_until": None,
            "payload": payload,
            "errors": [],
        }
        with translate_errors("enqueue"):
            try:
                await self._coll.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def raise_priority(self, job_id: str, priority: int) -> None:
        with translate_errors("raise priority"):
            await self._coll.update_one(
                {"_id": job_id, "state": READY, "priority": {"$lt": priority}}, {"$set": {"priority": priority}}
            )

    async def claim(
        self,
        consumer: str,
        n: int = 1,
        lease_seconds: float = 60.0,
        *,
        where: Doc | None = None,
        holder: str | None = None,
    ) -> list[Lease]:
        """Lease up to ``n`` jobs: expired leases first (they are oldest), then ready jobs by priority.

        Ready jobs are picked in two steps: one sorted read of a few candidate ids, then one atomic
        ``find_one_and_update`` per candidate guarded by ``state == ready`` (a candidate another
        consumer took meanwhile is simply skipped). Looking a job up by ``_id`` is several times
        cheaper than a sorted ``find_one_and_update`` on the embedded server, and exclusivity is the
        same. Expired leases are looked for at most every ``reclaim_interval`` seconds, and always
        when nothing is ready. ``where`` narrows the jobs (e.g. ``{"payload.detector": "faces"}``).
        ``holder`` is who authenticated the claim (a token id; ``lease_holder``), not a name the
        consumer picked: a caller may check that the lease it settles is one it was given.
        """
        if where:
            return await self._claim_where(consumer, n, lease_seconds, where, holder)
        leases: list[Lease] = []
        if self._clock() >= self._next_reclaim:
            self._next_reclaim = self._clock() + self.reclaim_interval
            while len(leases) < n and (doc := await self._reclaim_one(consumer, lease_seconds, holder)) is not None:
                leases.append(_lease(doc))
        while len(leases) < n:
            got = await self._claim_ready(consumer, n - len(leases), lease_seconds, holder)
            if not got:
                break
            leases += got
        if not leases:
            while len(leases) < n and (doc := await self._reclaim_one(consumer, lease_seconds, holder)) is not None:
                leases.append(_lease(doc))
        return leases

    async def _claim_where(
        self, consumer: str, n: int, lease_seconds: float, where: Doc, holder: str | None = None
    ) -> list[Lease]:
        """Claim only jobs matching ``where``: expired leases first, then ready jobs by priority
        (one guarded ``find_one_and_update`` each; simpler than the unfiltered path, same exclusivity)."""
        leases: list[Lease] = []
        with translate_errors("claim"):
            for expired, query, sort in (
                (True, {**where, "state": LEASED, "lease_until": {"$lt": self._clock()}}, [("lease_until", ASCENDING)]),
                (
                    False,
                    {**where, "state": READY, "available_at": {"$lte": self._clock()}},
                    [("priority", DESCENDING), ("available_at", ASCENDING)],
                ),
            ):
                while len(leases) < n:
                    update = self._lease_update(consumer, lease_seconds, holder)
                    doc = await self._coll.find_one_and_update(
                        query, update, sort=sort, return_document=ReturnDocument.AFTER
                    )
                    if doc is None:
                        break
                    if expired and doc["attempts"] > self.max_attempts:
                        await self._bury(doc, "lease expired too many times")
                        continue
                    leases.append(_lease(doc))
        return leases

    def _lease_update(self, consumer: str, lease_seconds: float, holder: str | None = None) -> Doc:
        return {
            "$set": {
                "state": LEASED,
                "lease_owner": consumer,
                "lease_holder": holder,
                "lease_token": uuid.uuid4().hex,
                "lease_until": self._clock() + lease_seconds,
            },
            "$inc": {"attempts": 1},
        }

    async def _reclaim_one(self, consumer: str, lease_seconds: float, holder: str | None = None) -> Doc | None:
        while True:
            with translate_errors("claim"):
                expired = await self._coll.find_one_and_update(
                    {"state": LEASED, "lease_until": {"$lt": self._clock()}},
                    self._lease_update(consumer, lease_seconds, holder),
                    sort=[("lease_until", ASCENDING)],
                    return_document=ReturnDocument.AFTER,
                )
                if expired is None or expired["attempts"] <= self.max_attempts:
                    return expired
                await self._bury(expired, "lease expired too many times")  # it keeps killing its consumers

    async def _claim_ready(self, consumer: str, n: int, lease_seconds: float, holder: str | None = None) -> list[Lease]:
        for _ in range(5):  # candidates all taken by other consumers meanwhile: look again
            with translate_errors("claim"):
                cursor = (
                    self._coll.find({"state": READY, "available_at": {"$lte": self._clock()}}, {"priority": 1})
                    .sort([("priority", DESCENDING), ("available_at", ASCENDING)])
                    .limit(n * CANDIDATE_SPREAD)
                )
                window = [(d.get("priority", 0), random.random(), d["_id"]) async for d in cursor]
                # consumers racing for the same head of the queue would mostly collide; trying the
                # candidates of one priority in a random order spreads them, higher priorities first
                candidates = [job_id for _, _, job_id in sorted(window, key=lambda w: (-w[0], w[1]))]
                leases: list[Lease] = []
                for job_id in candidates:
                    if len(leases) == n:
                        break
                    doc = await self._coll.find_one_and_update(
                        {"_id": job_id, "state": READY},
                        self._lease_update(consumer, lease_seconds, holder),
                        return_document=ReturnDocument.AFTER,
                    )
                    if doc is not None:
                        leases.append(_lease(doc))
            if leases or not candidates:
                return leases
        return []

    async def extend(self, job_id: str, token: str, lease_seconds: float = 60.0) -> float:
        until = self._clock() + lease_seconds
        with translate_errors("extend lease"):
            result = await self._coll.update_one(
                {"_id": job_id, "state": LEASED, "lease_token": token}, {"$set": {"lease_until": until}}
            )
        if result.matched_count == 0:
            await self._explain_lost(job_id)
        return until

    async def ack(self, job_id: str, token: str, result: dict[str, Any] | None = None) -> bool:
        """Settle a job as done. Acking again with the same token is accepted and changes nothing
        (returns False); acking with a lost lease raises ``LeaseLost``."""
        now = self._clock()
        with translate_errors("ack"):
            res = await self._coll.update_one(
                {"_id": job_id, "state": LEASED, "lease_token": token},
                {"$set": {"state": DONE, "done_at": now, "result": result, "lease_until": None}},
            )
            if res.modified_count:
                return True
            doc = await self._coll.find_one({"_id": job_id}, {"state": 1, "lease_token": 1})
        if doc is not None and doc["state"] == DONE and doc.get("lease_token") == token:
            return False
        await self._explain_lost(job_id)
        return False

    async def nack(self, job_id: str, token: str, error: str) -> str:
        """Give a job back after a failure: retried after back-off, or dead after max attempts."""
        now = self._clock()
        with translate_errors("nack"):
            doc = await self._coll.find_one({"_id": job_id, "state": LEASED, "lease_token": token})
            if doc is None:
                await self._explain_lost(job_id)
                return ""
            entry = _error_entry(doc["attempts"], error)
            if doc["attempts"] >= self.max_attempts:
                await self._bury(doc, error, entry)
                return DEAD
            res = await self._coll.update_one(
                {"_id": job_id, "state": LEASED, "lease_token": token},
                {
                    "$set": {
                        "state": READY,
                        "available_at": now + self._backoff(doc["attempts"]),
                        "lease_until": None,
                        "lease_owner": None,
                    },
                    "$push": {"errors": entry},
                },
            )
        if res.modified_count == 0:
            await self._explain_lost(job_id)
        return READY

    async def release(self, job_id: str, token: str, delay: float) -> None:
        """Give a job back untried (not a failure: the attempt is not counted), ready after ``delay``.

        For consumers that claim work they may not do yet (a notification sink over its rate limit).
        """
        with translate_errors("release"):
            res = await self._coll.update_one(
                {"_id": job_id, "state": LEASED, "lease_token": token},
                {
                    "$set": {"state": READY, "available_at": self._clock() + delay, "lease_until": None,
                             "lease_owner": None},
                    "$inc": {"attempts": -1},
                },
            )  # fmt: skip
        if res.modified_count == 0:
            await self._explain_lost(job_id)

    async def _bury(self, doc: Doc, reason: str, entry: str | None = None) -> None:
        entry = entry or _error_entry(doc["attempts"], reason)
        await self._coll.update_one(
            {"_id": doc["_id"], "lease_token": doc["lease_token"]},
            {"$set": {"state": DEAD, "dead_at": self._clock(), "lease_until": None}, "$push": {"errors": entry}},
        )

    async def _explain_lost(self, job_id: str) -> None:
        with translate_errors("read job"):
            doc = await self._coll.find_one({"_id": job_id}, {"state": 1})
        if doc is None:
            raise UnknownJob(f"no job {job_id!r}")
        raise LeaseLost(f"job {job_id!r} is {doc['state']} and no longer leased with this token")

    async def requeue(self, job_id: str) -> bool:
        """Put a dead job back to ready with its attempts reset (its error history is kept)."""
        with translate_errors("requeue"):
            res = await self._coll.update_one(
                {"_id": job_id, "state": DEAD},
                {"$set": {"state": READY, "attempts": 0, "available_at": self._clock(), "lease_token": None}},
            )
        return bool(res.modified_count)

    async def prune(self, older_than: float) -> int:
        """Delete jobs settled as done more than ``older_than`` seconds ago; returns how many.

        For queues whose jobs are transient (crawl tasks: each run keeps its own record in ``runs``),
        so the collection does not grow with every due time forever. Dead jobs are kept for people.
        """
        with translate_errors("prune done jobs"):
            res = await self._coll.delete_many({"state": DONE, "done_at": {"$lt": self._clock() - older_than}})
        return int(res.deleted_count)

    async def get(self, job_id: str) -> Doc | None:
        with translate_errors("read job"):
            return await self._coll.find_one({"_id": job_id})

    async def payload_states(self, field: str) -> list[tuple[str, Any]]:
        """``(state, payload[field])`` of every job (detection asks which media still have open jobs)."""
        with translate_errors("read job states"):
            docs = await self._coll.find({}, {"state": 1, f"payload.{field}": 1}).to_list(None)
        return [(d["state"], d["payload"][field]) for d in docs]

    async def dead(self, limit: int = 100) -> list[Doc]:
        with translate_errors("list dead jobs"):
            return await self._coll.find({"state": DEAD}).sort("dead_at", DESCENDING).limit(limit).to_list(None)

    async def stats(self) -> dict[str, Any]:
        """Jobs per state and the age of the oldest ready job (seconds)."""
        now = self._clock()
        counts = {READY: 0, LEASED: 0, DONE: 0, DEAD: 0}
        with translate_errors("queue stats"):
            async for row in await self._coll.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}]):
                counts[row["_id"]] = row["n"]
            oldest = await self._coll.find_one({"state": READY}, {"enqueued_at": 1}, sort=[("enqueued_at", ASCENDING)])
            expired = await self._coll.find_one({"state": LEASED, "lease_until": {"$lt": now}}, {"_id": 1})
        return {
            **counts,
            "oldest_ready_age": round(now - oldest["enqueued_at"], 3) if oldest else None,
            "expired_leases": expired is not None,
        }

    async def open_with(self, payload_field: str, value: Any) -> Doc | None:
        """A ready or leased job whose ``payload.<field>`` equals ``value`` (``_id`` and ``state`` only)."""
        with translate_errors("find open job"):
            return await self._coll.find_one(
                {"state": {"$in": [READY, LEASED]}, f"payload.{payload_field}": value}, {"_id": 1, "state": 1}
            )

    async def recent(self, limit: int = 50, state: str | None = None) -> list[Doc]:
        """Newest enqueued first, optionally in one state."""
        query: Doc = {"state": state} if state else {}
        with translate_errors("list jobs"):
            return await self._coll.find(query).sort("enqueued_at", DESCENDING).limit(limit).to_list(None)
