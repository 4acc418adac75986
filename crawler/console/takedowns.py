"""Console pages for takedown requests: the list with the removal figures, one request with its
report and history, create from an alert, mark sent.

Roles as the API's (``crawler.takedowns.api``): monitors create and send, investigators read,
auditors read and see the ledger history; admins do everything. Reads are audited (``via=console``).
A request naming a case is shown to an investigator only as a member of the case (``TakedownView``).
Reported links are shown as text, never as clickable links or embedded previews: these pages must
not load the reported content into a staff member's browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from crawler.console.pages import page
from crawler.console.render import render, request_language
from crawler.evidence.access import CaseAccess
from crawler.evidence.redaction import readership, without_watchlist_alerts
from crawler.investigate.access import audit
from crawler.investigate.pagination import BadQuery
from crawler.investigate.serialize import jsonable
from crawler.routes.context import SETTINGS, STORE
from crawler.routes.table import RouteTable
from crawler.takedowns.api import TakedownView, figures, latest_checks, parse_statuses, service
from crawler.takedowns.models import OPEN_STATUSES, ItemStatus, Reason, RequestStatus, TakedownItem, TakedownRequest
from crawler.takedowns.render import render_text, report_language
from crawler.takedowns.stats import WINDOWS, Durations, TakedownStats
from crawler.tokens import Principal, Role

READERS = frozenset({Role.MONITOR, Role.INVESTIGATOR, Role.AUDITOR, Role.ADMIN})
SENDERS = frozenset({Role.MONITOR, Role.ADMIN})
HISTORY_READERS = frozenset({Role.AUDITOR, Role.INVESTIGATOR, Role.ADMIN})
TABS = ("open", *(s.value for s in RequestStatus), "all")
LIST_LIMIT = 100
FIELD_MAX = 200
#: ledger payload members already shown in their own history columns
HISTORY_SHOWN = {"kind", "action", "actor", "at", "seq", "logged_at", "request", "platform", "reason", "case",
                 "cases", "subjects", "items"}  # fmt: skip


#: the units of a duration shown to people, per page language (``1d 2h``, ``1일 2시간``)
DURATION_UNITS = {
    "en": (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)),
    "ko": (("일", 86_400), ("시간", 3_600), ("분", 60), ("초", 1)),
}


def human_seconds(value: float | None, lang: str = "en") -> str:
    """``93784`` → ``1d 2h`` (``1일 2시간``): figures for people, two units at most."""
    if value is None:
        return "–"
    units = DURATION_UNITS.get(lang, DURATION_UNITS["en"])
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}{units[-1][0]}"
    parts: list[str] = []
    for unit, size in units:
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def figures_view(stats: TakedownStats, lang: str = "en") -> dict[str, Any]:
    """The figures as the list page shows them (strings ready to print, durations in ``lang``)."""

    def durations(d: Durations) -> dict[str, str]:
        return {"count": str(d.count), "median": human_seconds(d.median, lang), "p90": human_seconds(d.p90, lang)}

    shares = []
    for name, _ in WINDOWS:
        items, reqs = stats.removed_within_items[name], stats.removed_within_requests[name]
        shares.append(
            {
                "window": name,
                "item_share": percent(items.share),
                "item_of": f"{items.removed}/{items.eligible}",
                "request_share": percent(reqs.share),
                "request_of": f"{reqs.removed}/{reqs.eligible}",
            }
        )
    return {
        "request_count": sum(stats.requests.values()),
        "item_count": sum(stats.items.values()),
        "by_status": dict(sorted(stats.requests.items())),
        "items_by_status": dict(sorted(stats.items.items())),
        "detection_to_request": durations(stats.detection_to_request),
        "request_to_removal": durations(stats.request_to_removal),
        "shares": shares,
        "overdue": stats.overdue,
        "unsent": stats.unsent,
        "reopened": stats.reopened_total,
    }


def history_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        details = {k: v for k, v in e.items() if k not in HISTORY_SHOWN and v not in (None, "", [], {})}
        if isinstance(e.get("items"), list):
            details["items"] = len(e["items"])
        rows.append(
            {
                "seq": e.get("seq"),
                "at": e.get("at") or e.get("logged_at"),
                "action": e.get("action"),
                "actor": e.get("actor"),
                "details": ", ".join(f"{k}: {_short(v)}" for k, v in sorted(details.items())),
            }
        )
    return rows


def _short(value: Any) -> str:
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _field(form: Any, name: str, *, required: bool = False) -> str | None:
    value = str(form.get(name, "")).strip()
    if len(value) > FIELD_MAX:
        raise BadQuery(f"{name} is longer than {FIELD_MAX} characters", code="form.too_long",
                       params={"field": name, "max": FIELD_MAX})  # fmt: skip
    if required and not value:
        raise BadQuery(f"{name} is required", code="form.required", params={"field": name})
    return value or None


def _request_id(raw: str) -> str:
    value = raw.strip().upper()
    if not value or len(value) > 40 or not all(c.isalnum() or c == "-" for c in value):
        raise BadQuery("not a takedown request id", code="takedowns.bad_request_id")
    return value


#: what the alerts page's "Create takedown" form offers (value, label)
REASON_CHOICES = [(r.value, r.label) for r in Reason]
#: the reasons a form may name, as an error message lists them
REASON_VALUES = ", ".join(r.value for r in Reason)


def register(routes: RouteTable) -> None:
    @page(routes, "POST", "/console/takedowns/create", SENDERS, "create a takedown request from an alert")
    async def takedown_create(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        alert = _field(form, "alert", required=True)
        reason_raw = _field(form, "reason", required=True)
        try:
            reason = Reason(reason_raw or "")
        except ValueError:
            raise BadQuery(f"reason must be one of {REASON_VALUES}", code="query.bad_choice",
                           params={"field": "reason", "choices": REASON_VALUES}) from None  # fmt: skip
        case = _field(form, "case")
        cases = await CaseAccess(request.app[STORE]).cases_of(who)  # a watchlist match: its case only
        req = await service(request.app).create(reason=reason, actor=who.actor, alert=alert, case=case, cases=cases)
        raise web.HTTPSeeOther(f"/console/takedowns/{quote(req.id)}")

    @page(routes, "GET", "/console/takedowns", READERS, "takedown requests and removal figures")
    async def takedowns(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        tab = request.query.get("status", "open") or "open"
        if tab not in TABS:
            raise BadQuery(f"status must be one of {', '.join(TABS)}", code="query.bad_choice",
                           params={"field": "status", "choices": ", ".join(TABS)})  # fmt: skip
        statuses = [] if tab == "all" else parse_statuses(tab)
        svc = service(request.app)
        view = TakedownView(request, who, via="console")
        reqs, _ = await view.recent(svc, statuses=statuses or None, before_ts=None, limit=LIST_LIMIT)
        stats = await figures(svc, view)
        await audit(request, who, "takedowns.list", filter={"status": tab}, result_count=len(reqs), via="console")
        return render(
            request,
            "takedowns.html",
            **base,
            tab=tab,
            tabs=TABS,
            items=[_row(r) for r in reqs],
            figures=figures_view(stats, request_language(request)),
            limit=LIST_LIMIT,
        )

    @page(routes, "GET", "/console/takedowns/{id}", READERS, "one takedown request")
    async def takedown(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        svc = service(request.app)
        req = await TakedownView(request, who, via="console").get(svc, _request_id(request.match_info["id"]))
        last = latest_checks(await svc.repo.checks(req.id))
        await audit(request, who, "takedowns.get", target=req.id, result_count=len(req.items), via="console")
        history = None
        if who.role in HISTORY_READERS:
            entries = await svc.history(req.id, readers=await readership(request.app[STORE], who))
            await audit(request, who, "takedowns.history", target=req.id, result_count=len(entries), via="console")
            history = history_rows(entries)
        return render(
            request,
            "takedown.html",
            **base,
            req=req.model_copy(update={"alerts": without_watchlist_alerts(req.alerts)}),
            created_at=jsonable(req.created_at),
            removed_at=jsonable(req.removed_at) or "",
            open=req.status in OPEN_STATUSES,
            items=[_item_row(i, last.get(i.item_id)) for i in req.items],
            report=render_text(req, request.app[SETTINGS].takedowns),
            report_lang=report_language(request.app[SETTINGS].takedowns.language),
            can_send=who.role in SENDERS,
            history=history,
            sendings=[
                {"at": jsonable(s.at), "by": s.by, "via": s.via, "reference": s.reference or "", "item_count": s.items}
                for s in req.sendings
            ],
        )

    @page(routes, "POST", "/console/takedowns/{id}/sent", SENDERS, "record that a takedown request was sent")
    async def takedown_sent(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        request_id = _request_id(request.match_info["id"])
        via = _field(form, "via", required=True) or ""
        reference = _field(form, "reference")
        try:
            await service(request.app).mark_sent(request_id, via=via, actor=who.actor, reference=reference)
        except ValueError as exc:
            raise BadQuery(str(exc), code="takedowns.via_required") from None
        raise web.HTTPSeeOther(f"/console/takedowns/{quote(request_id)}")


def _row(req: TakedownRequest) -> dict[str, Any]:
    return {
        "id": req.id,
        "status": req.status.value,
        "reason": req.reason.value,
        "case": req.case or "",
        "item_count": len(req.items),
        "removed": sum(1 for i in req.items if i.status is ItemStatus.REMOVED),
        "created_at": jsonable(req.created_at),
        "created_by": req.created_by,
        "sent_at": jsonable(req.sent_at) or "",
        "removed_at": jsonable(req.removed_at) or "",
    }


def _item_row(item: TakedownItem, check: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": item.item_id,
        "link": item.link or "",
        "kind": item.kind.value,
        "status": item.status.value,
        "status_reason": item.status_reason or "",
        "added_because": item.added_because,
        "checked_at": jsonable(item.checked_at) or "",
        "removed_at": jsonable(item.removed_at) or "",
        "checks": item.checks,
        "last_check": check,
    }
