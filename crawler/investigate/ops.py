"""Operational reads: alerts, runs and health, queue stats, the audit trail."""

from __future__ import annotations

from typing import Any

from crawler.errors import NotFound
from crawler.investigate.pagination import BadQuery, Page
from crawler.investigate.serialize import jsonable, with_key
from storage.client import Doc, Store, translate_errors
from storage.repos.alerts import AlertRepo
from storage.workqueue import WorkQueue

ALERT_STATUSES = ("open", "acknowledged", "closed")
ALERT_KINDS = ("hash_match", "detection", "reupload", "crawl_failure", "target_failure")
QUEUES = ("detection_jobs", "crawl_tasks")


class OpsService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.alert_repo = AlertRepo(store)

    async def alerts(self, page: Page, *, status: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in ALERT_STATUSES:
            raise BadQuery(f"status must be one of {', '.join(ALERT_STATUSES)}")
        if kind is not None and kind not in ALERT_KINDS:
            raise BadQuery(f"kind must be one of {', '.join(ALERT_KINDS)}")
        flt: Doc = {k: v for k, v in (("status", status), ("kind", kind)) if v}
        with translate_errors("list alerts"):
            docs = (
                await self._store["alerts"]
                .find(flt)
                .sort([("raised_at", -1), ("_id", 1)])
                .skip(page.offset)
                .limit(page.limit)
                .to_list(None)
            )
        return [with_key(d) for d in docs]

    async def set_alert_status(self, key: str, status: str, by: str) -> dict[str, Any]:
        if status not in ALERT_STATUSES:
            raise BadQuery(f"status must be one of {', '.join(ALERT_STATUSES)}")
        if not await self.alert_repo.set_status(key, status, by):
            raise NotFound(f"no alert {key!r}")
        doc = await self.alert_repo.get(key)
        return with_key(doc or {"_id": key})

    async def runs(self, page: Page) -> list[dict[str, Any]]:
        with translate_errors("list runs"):
            docs = (
                await self._store["runs"]
                .find()
                .sort("started_at", -1)
                .skip(page.offset)
                .limit(page.limit)
                .to_list(None)
            )
        return [with_key(d) for d in docs]

    async def run(self, run_id: str) -> dict[str, Any]:
        with translate_errors("get run"):
            doc = await self._store["runs"].find_one({"_id": run_id})
            errors = await self._store["errors"].find({"run_id": run_id}).sort("at", -1).limit(50).to_list(None)
        if doc is None:
            raise NotFound(f"no run {run_id!r}")
        return {**with_key(doc), "recent_errors": [with_key(e) for e in errors]}

    async def queues(self) -> dict[str, Any]:
        return {name: await WorkQueue(self._store, name).stats() for name in QUEUES}

    async def health(self) -> dict[str, Any]:
        """Store reachability, the latest runs, the newest errors, queue depths."""
        await self._store.ping()
        with translate_errors("read health"):
            running = (
                await self._store["runs"].find({"status": "running"}).sort("started_at", -1).limit(20).to_list(None)
            )
            latest = await self._store["runs"].find().sort("started_at", -1).limit(10).to_list(None)
            errors = await self._store["errors"].find().sort("at", -1).limit(10).to_list(None)
        failed = [r for r in latest if r.get("status") not in {"ok", "running"}]
        return {
            "store": "ok",
            "running": [with_key(r) for r in running],
            "latest_runs": [with_key(r) for r in latest],
            "latest_failed": [with_key(r) for r in failed],
            "recent_errors": [with_key(e) for e in errors],
            "queues": await self.queues(),
        }

    async def audit(self, page: Page, *, actor: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        flt: Doc = {k: v for k, v in (("actor", actor), ("action", action)) if v}
        with translate_errors("list audit entries"):
            docs = await self._store["audit"].find(flt).sort("at", -1).skip(page.offset).limit(page.limit).to_list(None)
        return [jsonable({**{k: v for k, v in d.items() if k != "_id"}, "id": d["_id"]}) for d in docs]
