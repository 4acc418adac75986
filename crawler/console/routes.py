"""Console pages, declared through the shared ``RouteTable``.

Every console route is declared ``public=True`` and checks the session here, on purpose: the core
auth middleware answers a missing token with a 401 JSON problem, which is right for API clients but
wrong for a person with a browser, who should land on the sign-in page. ``page`` below does the
same checks the middleware does (valid token from the session cookie, role) and renders HTML
(``page`` lives in ``crawler.console.pages``, which the takedown pages share)
answers (a redirect to sign in, a 403 page) instead. State-changing forms also need the session's
CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from crawler.api.auth import AUTH, SESSION_COOKIE, client_address
from crawler.captures.graph import channel_neighbours
from crawler.console import dashboard, media_review, review, takedowns
from crawler.console.pages import error_page, page, safe_next
from crawler.console.render import LANG_CHOICE, render, request_language, translator
from crawler.console.session import (
    end_session,
    login_csrf_valid,
    login_nonce,
    set_login_nonce,
    start_session,
)
from crawler.console.takedowns import REASON_CHOICES
from crawler.discovery.models import CandidateStatus
from crawler.discovery.service import DiscoveryService, summary_line
from crawler.evidence.access import CaseAccess
from crawler.evidence.redaction import readership
from crawler.growth import growth_of
from crawler.investigate.access import (
    CSRF_FIELD,
    audit,
    investigate,
    media_authorization,
    ops,
    require_case,
)
from crawler.investigate.filters import SEARCH_PARAMS, MessageSearch
from crawler.investigate.ops import ALERT_KINDS, ALERT_STATUSES
from crawler.investigate.pagination import BadQuery, page_of
from crawler.media.hygiene import list_row
from crawler.routes.context import STORE
from crawler.routes.table import RouteTable
from crawler.tokens import Principal, Role
from foundation.case_ids import CASE_ID_RULE, is_case_id
from foundation.i18n import LANGUAGES, gettext
from storage.repos.alerts import AlertRepo
from storage.repos.audience import AudienceRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.media import MediaRepo

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "application/javascript"}
EVIDENCE = frozenset({Role.INVESTIGATOR, Role.ADMIN})
OPERATIONS = frozenset({Role.MONITOR, Role.INVESTIGATOR, Role.ADMIN})
AUDITORS = frozenset({Role.AUDITOR, Role.ADMIN})
REVIEWERS = frozenset({Role.MONITOR, Role.ADMIN})  # as /api/v1/candidates: approving creates crawl targets
VIDEO_KINDS = {"video", "round_video", "gif"}
TOKEN_MAX = 200


def register(routes: RouteTable) -> None:
    _session_pages(routes)
    _evidence_pages(routes)
    _operation_pages(routes)
    review.register(routes)
    takedowns.register(routes)
    dashboard.register(routes)
    media_review.register(routes)


def _session_pages(routes: RouteTable) -> None:
    @routes.add("GET", "/", public=True, summary="console: go to the console", tag="console")
    async def root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/console/")

    @routes.add("GET", "/console/static/{name}", public=True, summary="console: stylesheet and script", tag="console")
    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=path.read_bytes(),
            content_type=STATIC_TYPES[path.suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @routes.add("GET", "/console/login", public=True, summary="console: sign-in form", tag="console")
    async def login_form(request: web.Request) -> web.StreamResponse:
        if request.query.get("lang") in LANGUAGES:  # the language links of the sign-in page
            request[LANG_CHOICE] = request.query["lang"]
        return _login_page(request, None, 200)

    @routes.add("POST", "/console/login", public=True, summary="console: sign in with a token", tag="console")
    async def login(request: web.Request) -> web.StreamResponse:
        # the same failure count as bad bearer tokens: guessing through the form gains nothing, but a
        # valid token always signs in, so a blocked address (everyone behind one proxy) is not locked out
        ctx = request.app[AUTH]
        client = client_address(request)
        form = await request.post()
        token = str(form.get("token", "")).strip()
        chosen = str(form.get("lang", ""))
        if chosen in LANGUAGES:
            request[LANG_CHOICE] = chosen
        lang = request_language(request)
        problem: tuple[str, int] | None = None
        if not login_csrf_valid(request, str(form.get(CSRF_FIELD, ""))):
            problem = (gettext(lang, "console.login.expired"), 400)
        elif not token or len(token) > TOKEN_MAX:
            problem = (gettext(lang, "console.login.empty"), 400)
        elif await ctx.tokens.authenticate(token) is None:
            problem = (gettext(lang, "console.login.invalid"), 401)
        if problem is not None:
            wait = ctx.limiter.blocked(client)
            ctx.limiter.fail(client)
            if wait:
                response = _login_page(request, gettext(lang, "console.login.too_many", seconds=int(wait) + 1), 429)
                response.headers["Retry-After"] = str(int(wait) + 1)
                return response
            return _login_page(request, *problem)
        response = web.HTTPSeeOther(safe_next(str(form.get("next", ""))))
        await start_session(request, response, token, lang=chosen if chosen in LANGUAGES else None)
        response.del_cookie("tgwatch_login", path="/console")
        raise response

    @page(routes, "POST", "/console/logout", frozenset(Role), "sign out")
    async def logout(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        response = web.HTTPSeeOther("/console/login")
        await end_session(request, response)
        raise response

    @page(routes, "POST", "/console/language", frozenset(Role), "choose the console's language")
    async def language(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        lang = str(form.get("lang", ""))
        if lang not in LANGUAGES:
            raise BadQuery(f"language must be one of {', '.join(LANGUAGES)}", code="query.bad_choice",
                           params={"field": "lang", "choices": ", ".join(LANGUAGES)})  # fmt: skip
        await request.app[AUTH].sessions.set_lang(request.cookies.get(SESSION_COOKIE, ""), lang)
        raise web.HTTPSeeOther(safe_next(str(form.get("next", ""))))

    @page(routes, "GET", "/console/", frozenset(Role), "home")
    async def home(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        if who.role in OPERATIONS:  # monitors, investigators, admins: the dashboard (issue 20)
            return await dashboard.home(request, who, base)
        if who.role in AUDITORS:
            raise web.HTTPSeeOther("/console/audit")
        return error_page(request, 403, gettext(request_language(request), "console.error.detector"), base)


def _login_page(request: web.Request, error: str | None, status: int) -> web.Response:
    nonce, form_token = login_nonce(request)
    next_path = safe_next(request.query.get("next"))
    response = render(request, "login.html", status, who=None, csrf=form_token, error=error, next=next_path)
    set_login_nonce(request, response, nonce)
    return response


async def screenshots_of(request: web.Request, key: str) -> list[str]:
    return await MediaRepo(request.app[STORE]).screenshots_of(key)


async def _media_view(request: web.Request, who: Principal, docs: list[dict[str, Any]]) -> dict[str, bool]:
    """Which media digests on a page this investigator may see (an active case authorization)."""
    allowed: dict[str, bool] = {}
    service = await investigate(request, who, via="console")
    for doc in docs:
        for media in doc.get("media") or []:
            sha = media.get("sha256")
            if sha and sha not in allowed:
                channels = await service.media_channels(sha)
                allowed[sha] = await media_authorization(request.app[STORE], who, sha, channels) is not None
    return allowed


async def _cases_view(request: web.Request, who: Principal) -> dict[str, Any]:
    """An investigator's own cases; for an admin (``my_cases`` None) every membership."""
    access = CaseAccess(request.app[STORE])
    mine = await access.cases_of(who)
    memberships = await access.members.all() if mine is None else []
    return {"my_cases": mine, "memberships": memberships}


def _evidence_pages(routes: RouteTable) -> None:
    @page(routes, "GET", "/console/case-bundle", EVIDENCE, "download a case evidence bundle")
    async def case_bundle(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        case = request.query.get("case", "").strip()
        if not is_case_id(case):
            message = gettext(request_language(request), "console.error.case_id", rule=CASE_ID_RULE)
            return error_page(request, 400, message, base)
        # the API route builds, audits and streams the bundle; the session cookie authenticates it
        raise web.HTTPSeeOther(f"/api/v1/cases/{quote(case, safe='')}/bundle")

    @page(routes, "GET", "/console/search", EVIDENCE, "search messages")
    async def search(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        query = {k: v for k, v in request.query.items() if k in SEARCH_PARAMS and v != ""}
        found = MessageSearch.from_query(query)
        await require_case(request, who, found.case, via="console")
        items: list[dict[str, Any]] = []
        next_cursor = None
        if not found.is_empty():
            pg = page_of(query, found.params())
            items = await (await investigate(request, who, via="console")).search(found, pg)
            next_cursor = pg.next_cursor(len(items))
            await audit(request, who, "messages.search", filter=found.params(), result_count=len(items), via="console")
        filters = {k: v for k, v in query.items() if k not in {"cursor", "limit"}}
        return render(
            request,
            "search.html",
            **base,
            q=filters,
            searched=not found.is_empty(),
            items=items,
            next_cursor=next_cursor,
            allowed=await _media_view(request, who, items),
            **await _cases_view(request, who),
        )

    @page(routes, "GET", "/console/channels/{channel}", EVIDENCE, "a channel")
    async def channel(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        service = await investigate(request, who, via="console")
        detail = await service.channel(request.match_info["channel"].lower())
        _, members = await service.members(detail["key"], page_of({}, {}, default_limit=500))
        found = MessageSearch(channel=detail["key"])
        pg = page_of(request.query, found.params())
        items = await service.search(found, pg)
        await audit(request, who, "channels.get", target=detail["key"], result_count=len(items), via="console")
        points = await AudienceRepo(request.app[STORE]).series(detail["key"])
        near = await channel_neighbours(request.app[STORE], detail["key"])
        near = [n for n in near if n["channel"] not in service.view.hidden]  # a hidden chat stays unnamed
        return render(
            request,
            "channel.html",
            **base,
            channel=detail,
            neighbours=near[:50],
            members=members,
            growth_chart=dashboard.growth_chart(translator(request)["t"], detail["key"], points),
            growth=growth_of(detail["key"], points),
            items=items,
            next_cursor=pg.next_cursor(len(items)),
            allowed=await _media_view(request, who, items),
        )

    @page(routes, "GET", "/console/messages/{channel}/{msg_id}", EVIDENCE, "a message in context")
    async def message(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        msg_id = request.match_info["msg_id"]
        if not msg_id.isdigit():
            raise BadQuery(f"message id must be a positive integer, got {msg_id!r}", code="query.bad_message_id",
                           params={"value": msg_id[:40]})  # fmt: skip
        key = f"{request.match_info['channel'].lower()}/{int(msg_id)}"
        ctx = await (await investigate(request, who, via="console")).context(key)
        count = 1 + sum(len(ctx[k]) for k in ("before", "after", "album", "reply_chain", "replies"))
        await audit(request, who, "messages.context", target=key, result_count=count, via="console")
        # screenshots of the post: media items of their own, shown under the same media rules
        shots = {"key": key, "media": [{"sha256": s, "kind": "screenshot"} for s in await screenshots_of(request, key)]}
        shown = [ctx["message"], *ctx["album"], shots]
        return render(
            request, "message.html", **base, ctx=ctx, m=ctx["message"], allowed=await _media_view(request, who, shown),
            screenshots=shots,
        )  # fmt: skip

    @page(routes, "GET", "/console/media/{sha256}", EVIDENCE, "a media item across channels")
    async def media(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        sha = request.match_info["sha256"].lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BadQuery("sha256 must be 64 hexadecimal characters", code="query.bad_hex",
                           params={"field": "sha256", "length": 64})  # fmt: skip
        found = await (await investigate(request, who, via="console")).media(sha)
        await audit(request, who, "media.get", target=sha, result_count=len(found["sightings"]), via="console")
        channels = found["channels"]
        allowed = await media_authorization(request.app[STORE], who, sha, channels) is not None
        return render(request, "media.html", **base, media=found, sha=sha, allowed={sha: allowed})


def _operation_pages(routes: RouteTable) -> None:
    @page(routes, "GET", "/console/alerts", OPERATIONS, "alerts queue")
    async def alerts(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        status = request.query.get("status", "open") or None
        kind, day = request.query.get("kind") or None, request.query.get("day") or None
        channel = (request.query.get("channel") or "")[:200] or None
        since, until = dashboard.day_range(day)  # the dashboard and channel list link their alerts here
        flt = {"status": status, "kind": kind, "day": day, "channel": channel}
        pg = page_of(request.query, flt)
        cases = await CaseAccess(request.app[STORE]).cases_of(who)
        items = await ops(request).alerts(
            pg, status=status, kind=kind, since=since, until=until, channel=channel, cases=cases
        )
        await audit(request, who, "alerts.list", filter=flt, result_count=len(items), via="console")
        return render(
            request,
            "alerts.html",
            **base,
            items=items,
            status=status,
            statuses=ALERT_STATUSES,
            kinds=ALERT_KINDS,
            filters={"kind": kind, "day": day, "channel": channel, "limit": request.query.get("limit")},
            next_cursor=pg.next_cursor(len(items)),
            takedown_reasons=REASON_CHOICES,
        )

    @page(routes, "POST", "/console/alerts/status", OPERATIONS, "change an alert's status")
    async def alert_status(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        key, status = str(form.get("key", "")), str(form.get("status", ""))
        if not key or len(key) > 300:
            raise BadQuery("alert key is missing", code="form.required", params={"field": "alert"})
        cases = await CaseAccess(request.app[STORE]).cases_of(who)
        await ops(request).set_alert_status(key, status, who.actor, cases=cases)
        await audit(request, who, "alerts.status", target=key, filter={"status": status}, via="console")
        raise web.HTTPSeeOther("/console/alerts")

    @page(routes, "GET", "/console/candidates", REVIEWERS, "discovery candidates to review")
    async def candidates(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        status = request.query.get("status") or None
        try:
            statuses = [CandidateStatus(status)] if status else [CandidateStatus.TRIAGED, CandidateStatus.NEW]
        except ValueError:
            choices = "new, triaged, approved, rejected"
            raise BadQuery(f"status must be one of {choices}", code="query.bad_choice",
                           params={"field": "status", "choices": choices}) from None  # fmt: skip
        docs = await DiscoveryService(request.app[STORE]).list(statuses=statuses, limit=200)
        await audit(request, who, "candidates.list", filter={"status": status}, result_count=len(docs), via="console")
        items = [summary_line(d) for d in docs]
        return render(request, "candidates.html", **base, items=items, status=status)

    @page(routes, "POST", "/console/candidates/review", REVIEWERS, "approve or reject a candidate")
    async def review(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        form = await request.post()
        link, action = str(form.get("link", "")), str(form.get("action", ""))
        note = str(form.get("note", "")).strip()[:500] or None
        if not link or len(link) > 300:
            raise BadQuery("candidate link is missing", code="form.required", params={"field": "link"})
        service = DiscoveryService(request.app[STORE])
        if action == "approve":
            await service.approve(link, actor=who.actor, note=note)
        elif action == "reject":
            await service.reject(link, actor=who.actor, note=note)
        else:
            raise BadQuery("action must be approve or reject", code="form.bad_action")
        raise web.HTTPSeeOther("/console/candidates")

    @page(routes, "GET", "/console/runs", OPERATIONS, "run status and health")
    async def runs(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        health = await ops(request).health()
        pg = page_of(request.query, {"what": "runs"})
        items = await ops(request).runs(pg)
        return render(request, "runs.html", **base, health=health, items=items, next_cursor=pg.next_cursor(len(items)))

    @page(routes, "GET", "/console/hashes", OPERATIONS, "hash lists: source, sync, withdrawn, quarantined, precision")
    async def hash_lists(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        store = request.app[STORE]
        reviews = await AlertRepo(store).match_reviews()
        # the last sync as epoch seconds: shown as every console time (reader's zone, UTC on hover)
        rows = [{"name": d["_id"], "enabled": d.get("enabled", True), **list_row(d, reviews.get(d["_id"], {})),
                 "last_sync_at": (d.get("sync") or {}).get("last_sync_ts")}
                for d in await HashListRepo(store).lists()]  # fmt: skip
        quarantined = await HashListRepo(store).quarantined()
        return render(request, "hashes.html", **base, rows=rows, quarantined=quarantined)

    @page(routes, "GET", "/console/audit", AUDITORS, "audit trail")
    async def audit_trail(request: web.Request, who: Principal, base: dict[str, Any]) -> web.StreamResponse:
        actor = request.query.get("actor") or None
        pg = page_of(request.query, {"actor": actor, "action": None})
        items = await ops(request).audit(pg, readers=await readership(request.app[STORE], who), actor=actor)
        await audit(request, who, "audit.list", filter={"actor": actor}, result_count=len(items), via="console")
        return render(request, "audit.html", **base, items=items, actor=actor, next_cursor=pg.next_cursor(len(items)))
