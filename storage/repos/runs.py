"""Run history: one document per crawl/backfill/watch run, counters updated as it goes.

Every run carries its ``owner`` (host, pid, the pid's start time) and a ``heartbeat`` (epoch
seconds) that a task of the owning process refreshes while the run is open. A process killed with
``kill -9`` never finishes its run; :meth:`RunRepo.reap_dead` (called when the scheduler, a worker
or ``tgwatch runs`` starts) marks such runs ``abandoned`` instead of leaving them ``running`` forever.

:meth:`RunRepo.record` is the one lifecycle of a run a process holds open: start (owner and
heartbeat), then finish with the status the caller set (``ok`` by default), ``failed`` when the
body raised, ``abandoned`` when it was cancelled.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psutil

from foundation.models import utcnow
from storage import daily
from storage.client import Doc, Store, translate_errors

#: how often an open run's heartbeat is refreshed
HEARTBEAT_SECONDS = 30.0
#: a run on another host whose heartbeat is older than this is taken as dead
STALE_AFTER_SECONDS = 10 * HEARTBEAT_SECONDS

#: the heartbeat task of each run this process has open (whatever RunRepo instance finishes it)
_beats: dict[str, asyncio.Task[None]] = {}


def current_owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": psutil.Process().create_time()}


def owner_alive(owner: Any, heartbeat: Any, *, now: float, stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """Is the process that owns a run still there?

    On this host the process table answers (a reused pid has another start time); for another
    host only the heartbeat can. A run without an owner (recorded before owners existed) is left
    alone: nothing says whether it is dead.
    """
    if not isinstance(owner, dict):
        return True
    if owner.get("host") == socket.gethostname():
        try:
            proc = psutil.Process(int(owner.get("pid", -1)))
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            started = proc.create_time()
        except psutil.AccessDenied:
            return True  # there, but not ours to inspect: not provably dead
        except (psutil.Error, ValueError, TypeError):
            return False
        return abs(started - float(owner.get("pid_started") or 0.0)) < 1.0
    return isinstance(heartbeat, int | float) and now - float(heartbeat) < stale_after


@dataclass
class OpenRun:
    """A run inside ``RunRepo.record``: the body sets how it ends."""

    id: str
    status: str = "ok"  # the status of a body that returns
    failed_status: str = "failed"  # the status of a body that raises
    extra: dict[str, Any] = field(default_factory=dict)  # fields written on the run when it finishes


class RunRepo:
    def __init__(self, store: Store, *, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self._coll = store["runs"]
        self.heartbeat_seconds = heartbeat_seconds

    async def start(self, target: str, kind: str, **extra: Any) -> str:
        run_id = uuid.uuid4().hex
        doc: Doc = {
            "_id": run_id,
            "target": target,
            "kind": kind,
            "status": "running",
            "started_at": utcnow(),
            "finished_at": None,
            "counts": {},
            "errors": 0,
            "owner": current_owner(),
            "heartbeat": time.time(),
            **extra,
        }
        with translate_errors("start run"):
            await self._coll.insert_one(doc)
        _beats[run_id] = asyncio.create_task(self._beat(run_id), name=f"run heartbeat {run_id}")
        return run_id

    @asynccontextmanager
    async def record(self, target: str, kind: str, **extra: Any) -> AsyncIterator[OpenRun]:
        """Start a run, yield it, finish it: ``run.status`` on return, ``run.failed_status`` when the
        body raised, ``abandoned`` when it was cancelled (shielded: the caller is being cancelled)."""
        run = OpenRun(await self.start(target, kind, **extra))
        try:
            yield run
        except asyncio.CancelledError:
            with suppress(Exception):
                await asyncio.shield(self.finish(run.id, "abandoned"))
            raise
        except BaseException:
            with suppress(Exception):
                await self.finish(run.id, run.failed_status, **run.extra)
            raise
        await self.finish(run.id, run.status, **run.extra)

    async def _beat(self, run_id: str) -> None:
        """Refresh the heartbeat until the run is finished (by anyone) or this task is cancelled."""
        try:
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                try:
                    res = await self._coll.update_one(
                        {"_id": run_id, "status": "running"}, {"$set": {"heartbeat": time.time()}}
                    )
                except Exception:  # store outage or closed client: the next beat may get through
                    continue
                if res.matched_count == 0:
                    return
        finally:
            if _beats.get(run_id) is asyncio.current_task():
                del _beats[run_id]

    async def reap_dead(self, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
        """Mark ``abandoned`` every running run whose owner process is gone; returns their ids."""
        with translate_errors("find running runs"):
            docs = await self._coll.find({"status": "running"}, {"owner": 1, "heartbeat": 1}).to_list(None)
        now = time.time()
        reaped = []
        for doc in docs:
            if doc["_id"] in _beats or owner_alive(
                doc.get("owner"), doc.get("heartbeat"), now=now, stale_after=stale_after
            ):
                continue
            await self.finish(doc["_id"], "abandoned", only_if_running=True, abandoned_by="owner process gone")
            reaped.append(doc["_id"])
        return reaped

    async def add(self, run_id: str, **counts: int) -> None:
        inc = {f"counts.{k}": v for k, v in counts.items() if v}
        if inc:
            with translate_errors("update run"):
                await self._coll.update_one({"_id": run_id}, {"$inc": inc})

    async def error(self, run_id: str) -> None:
        with translate_errors("update run"):
            await self._coll.update_one({"_id": run_id}, {"$inc": {"errors": 1}})

    async def finish(self, run_id: str, status: str = "ok", *, only_if_running: bool = False, **extra: Any) -> None:
        beat = _beats.pop(run_id, None)
        if beat is not None and beat.get_loop() is asyncio.get_running_loop():
            beat.cancel()  # not awaited: a cancellation of this caller must not be swallowed with it
        # read + replace rather than $set: datetimes stay datetimes on the embedded server
        with translate_errors("finish run"):
            doc = await self._coll.find_one({"_id": run_id})
            if doc is None or (only_if_running and doc.get("status") != "running"):
                return
            doc.update(status=status, finished_at=utcnow(), **extra)
            await self._coll.replace_one({"_id": run_id, **({"status": "running"} if only_if_running else {})}, doc)

    async def get(self, run_id: str) -> Doc | None:
        with translate_errors("get run"):
            return await self._coll.find_one({"_id": run_id})

    async def list(self, limit: int = 20) -> list[Doc]:
        with translate_errors("list runs"):
            return await self._coll.find().sort("started_at", -1).limit(limit).to_list(None)

    async def page(self, *, skip: int = 0, limit: int) -> builtins.list[Doc]:
        """Newest first."""
        with translate_errors("list runs"):
            return await self._coll.find().sort("started_at", -1).skip(skip).limit(limit).to_list(None)

    async def running(self, limit: int = 20) -> builtins.list[Doc]:
        with translate_errors("read health"):
            return await self._coll.find({"status": "running"}).sort("started_at", -1).limit(limit).to_list(None)

    async def of_target(self, target: str, limit: int = 20) -> builtins.list[Doc]:
        """Newest first, for one target key."""
        with translate_errors("list runs"):
            return await self._coll.find({"target": target}).sort("started_at", -1).limit(limit).to_list(None)

    async def running_for_task(self, task_id: str) -> builtins.list[str]:
        """Ids of the runs of a crawl task still marked running."""
        with translate_errors("find orphan runs"):
            docs = await self._coll.find({"task": task_id, "status": "running"}, {"_id": 1}).to_list(None)
        return [str(d["_id"]) for d in docs]

    async def annotate(self, run_id: str, **fields: Any) -> None:
        """Add fields to a finished run (what its outcome led to, e.g. a target's method switch).
        Read + replace, so datetimes in ``fields`` stay datetimes on the embedded server."""
        with translate_errors("update run"):
            doc = await self._coll.find_one({"_id": run_id})
            if doc is None:
                return
            doc.update(fields)
            await self._coll.replace_one({"_id": run_id}, doc)

    # -- dashboard figures (crawler/console/dashboard.py) -------------------------------------------
    async def per_day(self, since: datetime, until: datetime) -> dict[str, int]:
        """Runs started per UTC day in [since, until)."""
        return await daily.per_day(self._coll, "started_at", since, until)

    async def latest_per_target(self, limit: int = 5000) -> dict[str, Doc]:
        """The newest run of each target (among the newest ``limit`` runs)."""
        with translate_errors("list runs"):
            docs = await self._coll.find({}, {"owner": 0}).sort("started_at", -1).limit(limit).to_list(None)
        latest: dict[str, Doc] = {}
        for doc in docs:
            latest.setdefault(str(doc.get("target")), doc)
        return latest
