"""Operational reads: alerts, runs and health, queue stats, the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crawler.audit import AuditLog
from crawler.evidence.redaction import Readership, redact_audit
from crawler.investigate.pagination import BadQuery, Page
from crawler.investigate.serialize import jsonable, with_key
from foundation.errors import NotFound
from storage.client import Store
from storage.repos.alerts import CASE_SCOPED_KINDS, AlertRepo
from storage.repos.errors import ErrorRepo
from storage.repos.runs import RunRepo
from storage.workqueue import WorkQueue

ALERT_STATUSES = ("open", "acknowledged", "closed")
ALERT_KINDS = (
    "hash_match",
    "detection",
    "reupload",
    "crawl_failure",
    "target_failure",
    "watchlist_match",
    "hash_list_quarantine",
)
QUEUES = ("detection_jobs", "crawl_tasks")


class OpsService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.alert_repo = AlertRepo(store)
        self._runs = RunRepo(store)
        self._errors = ErrorRepo(store)
        self._audit = AuditLog(store)

    async def alerts(
        self,
        page: Page,
        *,
        status: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        channel: str | None = None,
        cases: list[str] | None,
    ) -> list[dict[str, Any]]:
        """A page of alerts; ``cases`` are the caller's (``CaseAccess.cases_of``: None for an admin):
        a watchlist match is listed only for its own case."""
        if status is not None and status not in ALERT_STATUSES:
            raise BadQuery(f"status must be one of {', '.join(ALERT_STATUSES)}", code="query.bad_choice",
                           params={"field": "status", "choices": ", ".join(ALERT_STATUSES)})  # fmt: skip
        if kind is not None and kind not in ALERT_KINDS:
            raise BadQuery(f"kind must be one of {', '.join(ALERT_KINDS)}", code="query.bad_choice",
                           params={"field": "kind", "choices": ", ".join(ALERT_KINDS)})  # fmt: skip
        docs = await self.alert_repo.page(
            status=status,
            kind=kind,
            skip=page.offset,
            limit=page.limit,
            since=since,
            until=until,
            channel=channel,
            cases=cases,
        )
        return [with_key(d) for d in docs]

    async def set_alert_status(self, key: str, status: str, by: str, *, cases: list[str] | None) -> dict[str, Any]:
        """Change an alert's status; a case-scoped alert only by its case's members (or an admin,
        ``cases`` None): for anyone else it does not exist."""
        if status not in ALERT_STATUSES:
            raise BadQuery(f"status must be one of {', '.join(ALERT_STATUSES)}", code="query.bad_choice",
                           params={"field": "status", "choices": ", ".join(ALERT_STATUSES)})  # fmt: skip
        current = await self.alert_repo.get(key)
        if current is not None and cases is not None and current.get("kind") in CASE_SCOPED_KINDS:
            named = set((current.get("details") or {}).get("cases") or [])
            if not named & set(cases):
                raise NotFound(f"no alert {key!r}", code="alerts.unknown", params={"key": key})
        if not await self.alert_repo.set_status(key, status, by):
            raise NotFound(f"no alert {key!r}", code="alerts.unknown", params={"key": key})
        doc = await self.alert_repo.get(key)
        return with_key(doc or {"_id": key})

    async def runs(self, page: Page) -> list[dict[str, Any]]:
        docs = await self._runs.page(skip=page.offset, limit=page.limit)
        return [with_key(d) for d in docs]

    async def run(self, run_id: str) -> dict[str, Any]:
        doc = await self._runs.get(run_id)
        errors = await self._errors.recent(50, run_id=run_id)
        if doc is None:
            raise NotFound(f"no run {run_id!r}", code="runs.unknown", params={"id": run_id})
        return {**with_key(doc), "recent_errors": [with_key(e) for e in errors]}

    async def queues(self) -> dict[str, Any]:
        return {name: await WorkQueue(self._store, name).stats() for name in QUEUES}

    async def health(self) -> dict[str, Any]:
        """Store reachability, the latest runs, the newest errors, queue depths."""
        await self._store.ping()
        running = await self._runs.running(20)
        latest = await self._runs.list(10)
        errors = await self._errors.recent(10)
        failed = [r for r in latest if r.get("status") not in {"ok", "running"}]
        return {
            "store": "ok",
            "running": [with_key(r) for r in running],
            "latest_runs": [with_key(r) for r in latest],
            "latest_failed": [with_key(r) for r in failed],
            "recent_errors": [with_key(e) for e in errors],
            "queues": await self.queues(),
        }

    async def audit(
        self, page: Page, *, readers: Readership, actor: str | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        """A page of the audit trail; which watchlist item a record names is withheld but from admins."""
        docs = await self._audit.page(actor=actor, action=action, skip=page.offset, limit=page.limit)
        shown = redact_audit(docs, readers)
        return [jsonable({**{k: v for k, v in d.items() if k != "_id"}, "id": d["_id"]}) for d in shown]
