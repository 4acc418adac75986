"""Console review queue of drafted takedown requests, and the notification rules with their log.

Why a module of its own: the takedown pages (``crawler.console.takedowns``) show requests one at a
time; the review queue shows every draft beside the match that drafted it (list, signal, distance,
the sighting) so one person can approve-and-send, edit or reject each in one step. Monitors and
admins act; investigators and auditors may look (case rules as everywhere: ``TakedownView``).
Media are shown by digest only: this page never loads an image. Each action is CSRF-checked by
``page``, audited (``via=console``) and written to the ledger by the takedown service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from crawler.console.pages import page
from crawler.console.render import render
from crawler.console.takedowns import FIELD_MAX, READERS, REASON_CHOICES, REASON_VALUES, SENDERS, _field, _request_id
from crawler.investigate.access import audit
from crawler.investigate.pagination import BadQuery
from crawler.investigate.serialize import jsonable
from crawler.notify.service import NotifyService
from crawler.routes.context import SETTINGS, STORE
from crawler.routes.table import RouteTable
from crawler.takedowns.api import TakedownView, dispatcher, service
from crawler.takedowns.models import Reason, RequestStatus, TakedownRequest
from crawler.takedowns.render import render_text, report_language
from crawler.tokens import Principal, Role
from storage.client import Doc
from storage.repos.alerts import AlertRepo

QUEUE_LIMIT = 100
LOG_LIMIT = 50
REJECT_MAX = 1000
NOTE_MAX = 4000
NOTIFY_ROLES = frozenset({Role.MONITOR, Role.ADMIN})


def register(routes: RouteTable) -> None:
    @page(routes, "GET", "/console/review", READERS, "drafted takedown requests waiting for review")
    async def review(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        svc = service(request.app)
        view = TakedownView(request, who, via="console")
        drafts, _ = await view.recent(svc, statuses=[RequestStatus.DRAFT.value], before_ts=None, limit=QUEUE_LIMIT)
        drafts.reverse()  # oldest first: the one waiting longest is reviewed first
        alerts = AlertRepo(request.app[STORE])
        settings = request.app[SETTINGS].takedowns
        rows = [await _draft_row(req, alerts, render_text(req, settings)) for req in drafts]
        await audit(request, who, "takedowns.review", result_count=len(rows), via="console")
        return render(
            request, "review.html", **base, drafts=rows, can_act=who.role in SENDERS,
            reasons=REASON_CHOICES, limit=QUEUE_LIMIT, report_lang=report_language(settings.language),
        )  # fmt: skip

    @page(routes, "POST", "/console/takedowns/{id}/approve", SENDERS, "approve a draft and send it")
    async def approve(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        request_id = _request_id(request.match_info["id"])
        svc = service(request.app)
        outcome = await dispatcher(request.app, svc).approve(request_id, actor=who.actor)
        await audit(request, who, "takedowns.approve", target=request_id, result_count=len(outcome.sent),
                    via="console")  # fmt: skip
        raise web.HTTPSeeOther(f"/console/takedowns/{quote(request_id)}")

    @page(routes, "POST", "/console/takedowns/{id}/reject", SENDERS, "reject a draft with a reason")
    async def reject(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        request_id = _request_id(request.match_info["id"])
        why = str(form.get("why", "")).strip()
        if not why:
            raise BadQuery("say why the draft is rejected", code="takedowns.reject_reason_required")
        if len(why) > REJECT_MAX:
            raise BadQuery(f"the reason is longer than {REJECT_MAX} characters", code="form.too_long",
                           params={"field": "reason", "max": REJECT_MAX})  # fmt: skip
        await service(request.app).reject(request_id, reason=why, actor=who.actor)
        await audit(request, who, "takedowns.reject", target=request_id, via="console")
        raise web.HTTPSeeOther("/console/review")

    @page(routes, "POST", "/console/takedowns/{id}/edit", SENDERS, "edit a draft: note, reason, items")
    async def edit(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        request_id = _request_id(request.match_info["id"])
        note = str(form.get("note", "")).strip() if "note" in form else None
        if note is not None and len(note) > NOTE_MAX:
            raise BadQuery(f"note is longer than {NOTE_MAX} characters", code="form.too_long",
                           params={"field": "note", "max": NOTE_MAX})  # fmt: skip
        reason_raw = _field(form, "reason")
        try:
            reason = Reason(reason_raw) if reason_raw else None
        except ValueError:
            raise BadQuery(f"reason must be one of {REASON_VALUES}", code="query.bad_choice",
                           params={"field": "reason", "choices": REASON_VALUES}) from None  # fmt: skip
        remove = [str(v) for v in form.getall("remove_item", [])]
        if any(len(v) > FIELD_MAX for v in remove):
            raise BadQuery("not an item id", code="takedowns.bad_item_id")
        await service(request.app).edit(request_id, actor=who.actor, note=note, reason=reason, remove_items=remove)
        await audit(request, who, "takedowns.edit", target=request_id, result_count=len(remove), via="console")
        raise web.HTTPSeeOther("/console/review")

    @page(routes, "GET", "/console/notify", NOTIFY_ROLES, "notification rules and their delivery log")
    async def notify(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        svc = NotifyService(request.app[STORE], request.app[SETTINGS])
        try:
            rules = await svc.all_rules()
            log = await svc.log(limit=LOG_LIMIT)
            dead = await svc.dead(limit=LOG_LIMIT)
        finally:
            await svc.aclose()
        await audit(request, who, "notify.list", result_count=len(log), via="console")
        return render(
            request, "notify.html", **base,
            rules=[_rule_row(r.model_dump(mode="json")) for r in rules], log=[_log_row(d) for d in log],
            dead=[_dead_row(d) for d in dead], limit=LOG_LIMIT,
        )  # fmt: skip

    @page(routes, "POST", "/console/notify/requeue", NOTIFY_ROLES, "put a dead-lettered delivery back in the queue")
    async def requeue(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        delivery = _field(form, "delivery", required=True) or ""
        svc = NotifyService(request.app[STORE], request.app[SETTINGS])
        try:
            count = await svc.requeue([delivery])
        finally:
            await svc.aclose()
        await audit(request, who, "notify.requeue", target=delivery, result_count=count, via="console")
        raise web.HTTPSeeOther("/console/notify")


async def _draft_row(req: TakedownRequest, alerts: AlertRepo, report: str) -> dict[str, Any]:
    matches = []
    for key in req.alerts:
        doc: Doc | None = await alerts.get(key)
        details = (doc or {}).get("details") or {}
        matches.append(
            {
                "alert": key,
                "list": details.get("list", ""),
                "signal": details.get("signal_type", ""),
                "distance": details.get("distance", ""),
                "retroactive": bool(details.get("retroactive")),
                "doc": doc,  # its summary is worded per kind in the reader's language (``summary(doc)``)
            }
        )
    return {
        "id": req.id,
        "reason": req.reason.value,
        "reason_label": req.reason.label,
        "note": req.note or "",
        "case": req.case or "",
        "policy": req.policy or "",
        "created_at": jsonable(req.created_at),
        "approved_by": req.approved_by or "",
        "failures": [{"channel": f.channel, "at": f.at, "error": f.error} for f in req.failures],
        "matches": matches,
        "items": [
            {
                "id": i.item_id,
                "channel": i.username or i.channel,
                "link": i.link or "",
                "posted_at": jsonable(i.posted_at) or "",
                "first_seen_at": jsonable(i.first_seen_at) or "",
                "digests": [m.sha256 for m in i.media],
            }
            for i in req.items
        ],
        "report": report,
    }


def _rule_row(rule: dict[str, Any]) -> dict[str, Any]:
    """Staff configuration, shown as is, except that a secret appears only as its variable's name."""
    return {
        "name": rule["name"],
        "sink": rule["sink"],
        "target": rule["target"],
        "secret_env": rule.get("secret_env") or "",
        "kinds": ", ".join(rule.get("kinds") or []),
        "channels": ", ".join([*(rule.get("channels") or []), *(f"group:{g}" for g in rule.get("groups") or [])]),
        "min_severity": rule.get("min_severity", ""),
        "lang": rule.get("lang", ""),
    }


def _log_row(doc: Doc) -> dict[str, Any]:
    return {
        "at": jsonable(doc.get("at")) or "",
        "rule": doc.get("rule", ""),
        "kind": doc.get("kind", ""),
        "alerts": ", ".join(str(a) for a in doc.get("alerts") or []),
        "outcome": doc.get("outcome", ""),
        "attempt": doc.get("attempt", ""),
        "error": doc.get("error") or "",
    }


def _dead_row(doc: Doc) -> dict[str, Any]:
    payload = doc.get("payload") or {}
    errors = doc.get("errors") or []
    return {
        "id": str(doc["_id"]),
        "rule": payload.get("rule", ""),
        "alert": payload.get("alert", ""),
        "attempts": doc.get("attempts", ""),
        "error": str(errors[-1]) if errors else "",
    }
