"""``/api/v1/takedowns``: list, figures, detail, reports and history of takedown requests; create
and mark sent.

Roles follow the issue: monitors create and send (they work the alert queue); investigators read
(a request names evidence); auditors read the history (the ledger entries that prove what was done
and when). A request that names a case is shown to an investigator only when they are a member of
that case (:class:`TakedownView`, DESIGN §9); lists leave the others out, a direct read answers 403.
Every read is audited like other evidence reads; creating and sending need no audit entry of their
own because the service writes each of them to the ledger before it answers.

The console (``crawler.console.takedowns``) reuses the helpers here, so both doors show the same
JSON-ready shapes and the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crawler.evidence.access import CaseAccess
from crawler.evidence.app_key import LEDGER
from crawler.evidence.redaction import readership, without_watchlist_alerts
from crawler.investigate.access import CSRF_HEADER, audit, require_csrf_for_cookie_auth
from crawler.investigate.pagination import BadQuery
from crawler.investigate.serialize import jsonable
from crawler.routes.context import SETTINGS, STORE, json_response, problem
from crawler.routes.table import RouteTable, json_body, principal
from crawler.takedowns.models import OPEN_STATUSES, ItemStatus, Reason, RequestStatus, TakedownRequest
from crawler.takedowns.render import render_json, render_text, tree_head
from crawler.takedowns.senders import build_senders
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from crawler.takedowns.stats import TakedownStats, compute_stats
from crawler.tokens import Principal, Role
from foundation.errors import NotAuthorized
from storage.client import Doc

READERS = {Role.MONITOR, Role.INVESTIGATOR, Role.AUDITOR}
HISTORY = {Role.AUDITOR, Role.INVESTIGATOR}
SENDERS = {Role.MONITOR}
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
#: check results shown with a request (newest first); every item's latest one is always among them
CHECKS_SHOWN = 200
#: ``?status=open`` is shorthand for every status that still needs work
OPEN = "open"
TAG = "takedowns"


class TakedownIn(BaseModel):
    """A new request: an alert, message references (``CHANNEL/ID`` or t.me links) and/or a channel."""

    model_config = ConfigDict(extra="forbid")

    alert: str | None = Field(None, min_length=1, max_length=300, description="alert key, e.g. match/<list>/<sha256>")
    messages: list[str] = Field(default_factory=list, max_length=500, description="CHANNEL/ID or t.me links")
    channel: str | None = Field(None, min_length=1, max_length=300, description="report the whole channel")
    reason: Reason
    case: str | None = Field(None, min_length=1, max_length=100)
    note: str | None = Field(None, max_length=4000)

    @model_validator(mode="after")
    def _something(self) -> TakedownIn:
        if self.alert is None and not self.messages and self.channel is None:
            raise ValueError("name an alert, messages or a channel")
        if any(not m.strip() or len(m) > 300 for m in self.messages):
            raise ValueError("each message reference must be 1-300 characters")
        return self


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="why the draft must not be sent")


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=4000, description="replace the note ('' removes it)")
    reason: Reason | None = None
    remove_items: list[str] = Field(default_factory=list, max_length=500, description="item ids to drop")


class SentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    via: str = Field(min_length=1, max_length=200, description="how it was sent, e.g. email:abuse@telegram.org")
    reference: str | None = Field(None, max_length=200, description="the platform's ticket number, if any")


# -- shared with the console ---------------------------------------------------------------------
class TakedownView:
    """Which takedown requests one principal may read.

    A request without a case is everyone's; monitors (who create and send requests), auditors
    (who audit them) and admins see every request; an investigator sees a case's requests only as
    a member of the case, decided by :meth:`CaseAccess.may_open_case` like every other case read.
    """

    def __init__(self, request: web.Request, who: Principal, *, via: str = "api") -> None:
        self._request = request
        self._who = who
        self._via = via
        self._access = CaseAccess(request.app[STORE])
        self._known: dict[str, bool] = {}

    async def may_see(self, req: TakedownRequest) -> bool:
        if req.case is None or self._who.role in {Role.MONITOR, Role.AUDITOR, Role.ADMIN}:
            return True
        if req.case not in self._known:
            self._known[req.case] = await self._access.may_open_case(self._who, req.case)
        return self._known[req.case]

    async def require(self, req: TakedownRequest) -> None:
        """A direct read of a hidden request: audited like ``require_case`` refusals, answered 403."""
        if await self.may_see(req):
            return
        await audit(self._request, self._who, "case.refused", target=req.case, via=self._via, result_count=0)
        raise NotAuthorized(
            f"you are not a member of case {req.case}", code="access.not_member", params={"case": req.case}
        )

    async def recent(
        self, svc: TakedownService, *, statuses: list[str] | None, before_ts: float | None, limit: int
    ) -> tuple[list[TakedownRequest], str | None]:
        """Up to ``limit`` visible requests, newest first, and the cursor of the next page (or None)."""
        shown: list[TakedownRequest] = []
        while True:
            batch = await svc.recent(statuses=statuses, before_ts=before_ts, limit=limit)
            for req in batch:
                if await self.may_see(req):
                    shown.append(req)
                    if len(shown) == limit:
                        return shown, repr(req.created_at.timestamp())
            if len(batch) < limit:
                return shown, None
            before_ts = batch[-1].created_at.timestamp()

    async def get(self, svc: TakedownService, request_id: str) -> TakedownRequest:
        req = await svc.get(request_id)
        await self.require(req)
        return req


def dispatcher(app: web.Application, svc: TakedownService) -> Dispatcher:
    """The configured e-mail and hotline senders. The in-app (MTProto) sender needs the account pool,
    which the API process does not open: approving here does not send in-app reports (the CLI does)."""
    return Dispatcher(svc, build_senders(app[SETTINGS]))


def service(app: web.Application) -> TakedownService:
    """Built per request (a few collection handles): an aiohttp app's state must not change once started."""
    return TakedownService(app[STORE], app[LEDGER], app[SETTINGS].takedowns)


def parse_statuses(raw: str | None) -> list[str]:
    """``?status=`` as stored status values: one status, several comma-separated, or ``open``."""
    if not raw:
        return []
    out: list[str] = []
    for part in (p.strip().lower() for p in raw.split(",")):
        if part == OPEN:
            out += [s.value for s in OPEN_STATUSES]
            continue
        try:
            out.append(RequestStatus(part).value)
        except ValueError:
            allowed = ", ".join([OPEN, *(s.value for s in RequestStatus)])
            raise BadQuery(f"status must be one of {allowed}; got {part!r}", code="query.bad_choice",
                           params={"field": "status", "choices": allowed}) from None  # fmt: skip
    return list(dict.fromkeys(out))


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery(f"limit must be an integer 1..{MAX_LIMIT}")
    return int(raw)


def parse_cursor(raw: str | None) -> float | None:
    """The cursor is the ``created_ts`` of the last request of the previous page (newest first)."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery("cursor is not one this server issued") from None
    if not 0 <= value < 1e11:  # also refuses nan and inf
        raise BadQuery("cursor is not one this server issued")
    return value


def summary_json(req: TakedownRequest) -> dict[str, Any]:
    """One line of a list: what a person scanning requests needs, without the items."""
    removed = sum(1 for i in req.items if i.status is ItemStatus.REMOVED)
    return jsonable(
        {
            "id": req.id,
            "status": req.status.value,
            "open": req.status in OPEN_STATUSES,
            "reason": req.reason.value,
            "reason_label": req.reason.label,
            "case": req.case,
            "items": len(req.items),
            "removed": removed,
            "created_at": req.created_at,
            "created_by": req.created_by,
            "detected_at": req.detected_at,
            "sent_at": req.sent_at,
            "removed_at": req.removed_at,
            "next_check_at": req.next_check_at(),
            "alerts": without_watchlist_alerts(req.alerts),
        }
    )


def check_json(doc: Doc) -> dict[str, Any]:
    return jsonable({k: v for k, v in doc.items() if k != "_id"})


def latest_checks(checks: Iterable[Doc]) -> dict[str, dict[str, Any]]:
    """The newest check of each item (``checks`` newest first, as the repository lists them)."""
    out: dict[str, dict[str, Any]] = {}
    for doc in checks:
        out.setdefault(str(doc.get("item")), check_json(doc))
    return out


async def detail_json(svc: TakedownService, req: TakedownRequest) -> dict[str, Any]:
    """The whole request, each item with its last check, and the newest check results."""
    checks = await svc.repo.checks(req.id, limit=CHECKS_SHOWN)
    last = latest_checks(checks)
    out: dict[str, Any] = jsonable(req.model_dump(mode="json"))
    out |= {
        "open": req.status in OPEN_STATUSES,
        "reason_label": req.reason.label,
        "sent_at": jsonable(req.sent_at),
        "next_check_at": jsonable(req.next_check_at()),
        "alerts": without_watchlist_alerts(req.alerts),
    }
    for item in out["items"]:
        item["last_check"] = last.get(item["item_id"])
    out["checks"] = [check_json(d) for d in checks]
    return out


async def figures(svc: TakedownService, view: TakedownView) -> TakedownStats:
    """Aggregate figures over every request; the overdue list names only requests ``view`` may see."""
    requests = await svc.all()
    stats = compute_stats(requests, svc.clock(), overdue_after=svc.settings.overdue_after)
    by_id = {r.id: r for r in requests}
    shown = [rid for rid in stats.overdue if await view.may_see(by_id[rid])]
    stats.overdue_hidden = len(stats.overdue) - len(shown)
    stats.overdue = shown
    return stats


# -- routes --------------------------------------------------------------------------------------
def register(routes: RouteTable) -> None:
    _reads(routes)
    _writes(routes)


def _reads(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        "/api/v1/takedowns",
        roles=READERS,
        summary="takedown requests, newest first",
        tag=TAG,
        query={
            "status": "open | draft | sent | partial | removed | reopened (comma-separated for several)",
            "limit": f"page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})",
            "cursor": "next_cursor of the previous page",
        },
    )
    async def list_takedowns(request: web.Request) -> web.StreamResponse:
        raw_status = request.query.get("status") or None
        statuses = parse_statuses(raw_status)
        limit = parse_limit(request.query.get("limit"))
        before = parse_cursor(request.query.get("cursor"))
        view = TakedownView(request, principal(request))
        reqs, cursor = await view.recent(service(request.app), statuses=statuses or None, before_ts=before, limit=limit)
        await audit(
            request, principal(request), "takedowns.list", filter={"status": raw_status}, result_count=len(reqs)
        )
        return json_response({"items": [summary_json(r) for r in reqs], "next_cursor": cursor})

    # declared before ``{id}`` so that "stats" is never taken for a request id
    @routes.add(
        "GET",
        "/api/v1/takedowns/stats",
        roles=READERS,
        summary="removal figures: detection→request, request→removal, share removed after 24h/7d/30d, overdue",
        tag=TAG,
    )
    async def takedown_stats(request: web.Request) -> web.StreamResponse:
        stats = await figures(service(request.app), TakedownView(request, principal(request)))
        await audit(request, principal(request), "takedowns.stats", result_count=sum(stats.requests.values()))
        return json_response(stats.as_dict())

    @routes.add(
        "GET", "/api/v1/takedowns/{id}", roles=READERS, summary="one request: items, statuses, latest checks", tag=TAG
    )
    async def takedown(request: web.Request) -> web.StreamResponse:
        svc = service(request.app)
        req = await TakedownView(request, principal(request)).get(svc, request.match_info["id"])
        out = await detail_json(svc, req)
        await audit(request, principal(request), "takedowns.get", target=req.id, result_count=len(req.items))
        return json_response(out)

    @routes.add(
        "GET",
        "/api/v1/takedowns/{id}/report",
        roles=READERS,
        summary="the report: plain text for Telegram's abuse channels, or JSON (tgwatch.takedown/1) for hotlines",
        tag=TAG,
        query={"format": "text (default) or json"},
    )
    async def report(request: web.Request) -> web.StreamResponse:
        fmt = request.query.get("format", "text")
        if fmt not in ("text", "json"):
            raise BadQuery(f"format must be text or json, got {fmt!r}")
        svc = service(request.app)
        req = await TakedownView(request, principal(request)).get(svc, request.match_info["id"])
        settings = request.app[SETTINGS].takedowns
        await audit(
            request, principal(request), "takedowns.report", target=req.id, filter={"format": fmt},
            result_count=len(req.items),
        )  # fmt: skip
        if fmt == "json":
            return json_response(render_json(req, settings, tree_head=await tree_head(request.app[LEDGER])))
        return web.Response(text=render_text(req, settings), content_type="text/plain", charset="utf-8")

    @routes.add(
        "GET",
        "/api/v1/takedowns/{id}/history",
        roles=HISTORY,
        summary="the request's ledger entries (create, sent, item status, re-open), oldest first",
        tag=TAG,
    )
    async def history(request: web.Request) -> web.StreamResponse:
        svc = service(request.app)
        request_id = request.match_info["id"]
        await TakedownView(request, principal(request)).get(svc, request_id)
        entries = await svc.history(request_id, readers=await readership(request.app[STORE], principal(request)))
        await audit(
            request, principal(request), "takedowns.history", target=request_id.strip().upper(),
            result_count=len(entries),
        )  # fmt: skip
        return json_response({"request": request_id.strip().upper(), "entries": entries})


def _writes(routes: RouteTable) -> None:
    @routes.add(
        "POST",
        "/api/v1/takedowns",
        roles=SENDERS,
        summary="create a request from an alert, messages and/or a channel",
        tag=TAG,
        body=TakedownIn,
    )
    async def create(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: TakedownIn = await json_body(request, TakedownIn)
        svc = service(request.app)
        cases = await CaseAccess(request.app[STORE]).cases_of(principal(request))
        req = await svc.create(
            reason=body.reason, actor=principal(request).actor, alert=body.alert, messages=body.messages,
            channel=body.channel, case=body.case, note=body.note, cases=cases,
        )  # fmt: skip
        return json_response(await detail_json(svc, req), status=201)

    @routes.add(
        "POST",
        "/api/v1/takedowns/{id}/sent",
        roles=SENDERS,
        summary="record that the request was sent: by whom (the caller), when (now) and how",
        tag=TAG,
        body=SentIn,
    )
    async def mark_sent(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: SentIn = await json_body(request, SentIn)
        svc = service(request.app)
        try:
            req = await svc.mark_sent(
                request.match_info["id"], via=body.via, actor=principal(request).actor, reference=body.reference
            )
        except ValueError as exc:
            return problem(400, str(exc))
        return json_response(await detail_json(svc, req))

    @routes.add(
        "POST",
        "/api/v1/takedowns/{id}/approve",
        roles=SENDERS,
        summary="approve a draft and send it at once through the configured senders (both ledger entries)",
        tag=TAG,
    )
    async def approve(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        svc = service(request.app)
        outcome = await dispatcher(request.app, svc).approve(request.match_info["id"], actor=principal(request).actor)
        out = await detail_json(svc, outcome.request)
        out["sending"] = {"sent": outcome.sent, "failed": outcome.failed}
        return json_response(out)

    @routes.add(
        "POST",
        "/api/v1/takedowns/{id}/reject",
        roles=SENDERS,
        summary="reject a draft with a reason (a ledger entry); it is never sent",
        tag=TAG,
        body=RejectIn,
    )
    async def reject(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: RejectIn = await json_body(request, RejectIn)
        svc = service(request.app)
        req = await svc.reject(request.match_info["id"], reason=body.reason, actor=principal(request).actor)
        return json_response(await detail_json(svc, req))

    @routes.add(
        "POST",
        "/api/v1/takedowns/{id}/edit",
        roles=SENDERS,
        summary="change an unsent request's note, reason or items (an `edited` ledger entry)",
        tag=TAG,
        body=EditIn,
    )
    async def edit(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: EditIn = await json_body(request, EditIn)
        svc = service(request.app)
        req = await svc.edit(
            request.match_info["id"], actor=principal(request).actor, note=body.note, reason=body.reason,
            remove_items=body.remove_items,
        )  # fmt: skip
        return json_response(await detail_json(svc, req))


__all__ = [
    "SentIn",
    "TakedownIn",
    "TakedownView",
    "check_json",
    "detail_json",
    "dispatcher",
    "figures",
    "latest_checks",
    "parse_statuses",
    "register",
    "service",
    "summary_json",
    "tree_head",
]
