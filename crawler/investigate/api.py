"""``/api/v1``: the investigator API (channels, messages, context, media, exports) and the
operational reads (alerts, runs, health, queues, audit).

Evidence endpoints are for investigators (and admins) and write an audit entry on every call;
monitors read runs, health, queues and alerts; auditors read the audit trail.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from crawler.detection.quarantine import QuarantineError
from crawler.evidence.access import CaseAccess
from crawler.evidence.redaction import readership
from crawler.hashing.sniff import sniff
from crawler.investigate.access import (
    CSRF_HEADER,
    audit,
    investigate,
    media_authorization,
    ops,
    require_case,
    require_csrf_for_cookie_auth,
)
from crawler.investigate.export import FORMATS, stream_export
from crawler.investigate.filters import SEARCH_PARAMS, MessageSearch
from crawler.investigate.pagination import BadQuery, page_of
from crawler.investigate.service import InvestigateService
from crawler.routes.context import STORE, json_response, problem
from crawler.routes.table import RouteTable, json_body, principal
from crawler.tokens import Role

EVIDENCE = {Role.INVESTIGATOR}
OPERATIONS = {Role.MONITOR, Role.INVESTIGATOR}
AUDITORS = {Role.AUDITOR}
PAGE = {"limit": "page size, 1..500", "cursor": "next_cursor of the previous page"}
SHA256 = "{sha256}"


class AlertStatusIn(BaseModel):
    status: Literal["open", "acknowledged", "closed"]


class RevealIn(BaseModel):
    message: str | None = Field(None, max_length=200, description="the message the media was shown in")


async def reader(request: web.Request) -> InvestigateService:
    """The investigate queries as the caller may see them (private chats of other cases hidden)."""
    return await investigate(request, principal(request))


def paged(items: list[Any], page_next: str | None, **extra: Any) -> web.Response:
    return json_response({"items": items, "next_cursor": page_next, **extra})


def sha_param(request: web.Request) -> str:
    """The ``{sha256}`` path parameter, validated here (a regex route would 404 before auth runs)."""
    sha = request.match_info["sha256"].lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise BadQuery("sha256 must be 64 hexadecimal characters")
    return sha


def message_key(request: web.Request) -> str:
    channel, msg_id = request.match_info["channel"], request.match_info["msg_id"]
    if not (msg_id.isascii() and msg_id.isdigit() and len(msg_id) <= 18):
        raise BadQuery(f"message id must be a positive integer, got {msg_id!r}")
    return f"{channel.lower()}/{int(msg_id)}"


async def media_bytes_response(request: web.Request, sha256: str, via: str) -> web.StreamResponse:
    """The decrypted bytes of a quarantined item, for an investigator under a case authorization."""
    from crawler.detection.api import service as detection_service

    who = principal(request)
    channels = await (await investigate(request, who, via=via)).media_channels(sha256)
    grant = await media_authorization(request.app[STORE], who, sha256, channels)
    if grant is None:
        await audit(request, who, "media.bytes.refused", target=sha256, via=via, result_count=0)
        return problem(403, "no active case authorization covers this media for you", kind="not_authorized")
    try:
        data = await detection_service(request).media_bytes(sha256)
    except QuarantineError as exc:
        await audit(request, who, "media.bytes", target=sha256, via=via, result_count=0)
        return problem(404, exc.message)
    await audit(
        request, who, "media.bytes", target=sha256, via=via, result_count=1, filter={"case_id": grant.get("case_id")}
    )
    mime = sniff(data[:64]) or "application/octet-stream"
    return web.Response(
        body=data,
        content_type=mime,
        headers={"Cache-Control": "no-store, private", "Content-Disposition": "inline"},
    )


def register(routes: RouteTable) -> None:
    _channels(routes)
    _messages(routes)
    _media(routes)
    _operations(routes)


def _channels(routes: RouteTable) -> None:
    @routes.add("GET", "/api/v1/channels", roles=EVIDENCE, summary="channels, by key", tag="channels", query=PAGE)
    async def channels(request: web.Request) -> web.StreamResponse:
        page = page_of(request.query, {"what": "channels"})
        items = await (await reader(request)).channels(page)
        await audit(request, principal(request), "channels.list", result_count=len(items))
        return paged(items, page.next_cursor(len(items)))

    @routes.add("GET", "/api/v1/channels/{channel}", roles=EVIDENCE, summary="one channel", tag="channels")
    async def channel(request: web.Request) -> web.StreamResponse:
        name = request.match_info["channel"].lower()
        detail = await (await reader(request)).channel(name)
        await audit(request, principal(request), "channels.get", target=detail["key"], result_count=1)
        return json_response(detail)

    @routes.add(
        "GET", "/api/v1/channels/{channel}/usernames", roles=EVIDENCE, summary="username history", tag="channels"
    )
    async def usernames(request: web.Request) -> web.StreamResponse:
        found = await (await reader(request)).usernames(request.match_info["channel"].lower())
        await audit(request, principal(request), "channels.usernames", target=found["key"], result_count=1)
        return json_response(found)

    @routes.add(
        "GET",
        "/api/v1/channels/{channel}/members",
        roles=EVIDENCE,
        summary="member/subscriber counts over time",
        tag="channels",
        query=PAGE,
    )
    async def members(request: web.Request) -> web.StreamResponse:
        name = request.match_info["channel"].lower()
        page = page_of(request.query, {"members": name}, default_limit=500)
        key, points = await (await reader(request)).members(name, page)
        await audit(request, principal(request), "channels.members", target=key, result_count=len(points))
        return paged(points, page.next_cursor(len(points)), channel=key)


def _messages(routes: RouteTable) -> None:
    @routes.add(
        "GET", "/api/v1/messages", roles=EVIDENCE, summary="search messages", tag="messages", query=SEARCH_PARAMS
    )
    async def search(request: web.Request) -> web.StreamResponse:
        found = MessageSearch.from_query(request.query)
        await require_case(request, principal(request), found.case)
        page = page_of(request.query, found.params())
        items = await (await reader(request)).search(found, page)
        await audit(request, principal(request), "messages.search", filter=found.params(), result_count=len(items))
        return paged(items, page.next_cursor(len(items)))

    export_params = {**{k: v for k, v in SEARCH_PARAMS.items() if k not in PAGE}, "format": "jsonl (default) or csv"}

    @routes.add(
        "GET",
        "/api/v1/messages/export",
        roles=EVIDENCE,
        summary="every message of a search, streamed as JSON Lines or CSV",
        tag="messages",
        query=export_params,
    )
    async def export(request: web.Request) -> web.StreamResponse:
        return await export_search(request, via="api")

    @routes.add("GET", "/api/v1/messages/{channel}/{msg_id}", roles=EVIDENCE, summary="one message", tag="messages")
    async def message(request: web.Request) -> web.StreamResponse:
        from crawler.investigate.serialize import message_json

        key = message_key(request)
        doc = await (await reader(request)).message(key)
        await audit(request, principal(request), "messages.get", target=key, result_count=1)
        return json_response(message_json(doc))

    @routes.add(
        "GET",
        "/api/v1/messages/{channel}/{msg_id}/context",
        roles=EVIDENCE,
        summary="a message with neighbours, album, reply chain, replies and versions",
        tag="messages",
    )
    async def context(request: web.Request) -> web.StreamResponse:
        key = message_key(request)
        found = await (await reader(request)).context(key)
        count = 1 + sum(len(found[k]) for k in ("before", "after", "album", "reply_chain", "replies"))
        await audit(request, principal(request), "messages.context", target=key, result_count=count)
        return json_response(found)


async def export_search(request: web.Request, *, via: str) -> web.StreamResponse:
    """Stream a search as JSON Lines or CSV; the audit entry records how many rows left."""
    fmt = request.query.get("format", "jsonl")
    if fmt not in FORMATS:
        raise BadQuery(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    found = MessageSearch.from_query({k: v for k, v in request.query.items() if k != "format"})
    who = principal(request)
    await require_case(request, who, found.case, via=via)
    service = await investigate(request, who, via=via)
    count = -1
    try:
        response, count = await stream_export(request, service.stream(found), fmt, "tgwatch-search")
    finally:
        await audit(
            request, who, "messages.export", filter={**found.params(), "format": fmt}, result_count=count, via=via
        )
    return response


def _media(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        f"/api/v1/media/{SHA256}",
        roles=EVIDENCE,
        summary="a media item: hashes, sightings across channels, matches, verdicts, messages",
        tag="media",
    )
    async def media(request: web.Request) -> web.StreamResponse:
        sha = sha_param(request)
        found = await (await reader(request)).media(sha)
        await audit(request, principal(request), "media.get", target=sha, result_count=len(found["sightings"]))
        return json_response(found)

    @routes.add(
        "GET",
        f"/api/v1/media/{SHA256}/bytes",
        roles=EVIDENCE,
        summary="the media bytes (under an active authorization of one of the caller's cases; audited)",
        tag="media",
    )
    async def media_bytes(request: web.Request) -> web.StreamResponse:
        return await media_bytes_response(request, sha_param(request), via="api")

    @routes.add(
        "POST",
        f"/api/v1/media/{SHA256}/reveal",
        roles=EVIDENCE,
        summary="record that a blurred media item was revealed (the console calls this on click)",
        tag="media",
        body=RevealIn,
    )
    async def reveal(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: RevealIn = await json_body(request, RevealIn)
        sha = sha_param(request)
        via = "console" if "Authorization" not in request.headers else "api"
        entry = await audit(
            request, principal(request), "media.reveal", target=sha, via=via, filter={"message": body.message}
        )
        return json_response({"sha256": sha, "audit_id": entry["_id"]})


def _operations(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        "/api/v1/alerts",
        roles=OPERATIONS,
        summary="alerts, newest first",
        tag="alerts",
        query={
            **PAGE,
            "status": "open|acknowledged|closed",
            "kind": "hash_match|detection|reupload|crawl_failure|target_failure|watchlist_match",
        },
    )
    async def alerts(request: web.Request) -> web.StreamResponse:
        status, kind = request.query.get("status") or None, request.query.get("kind") or None
        page = page_of(request.query, {"status": status, "kind": kind})
        cases = await CaseAccess(request.app[STORE]).cases_of(principal(request))
        items = await ops(request).alerts(page, status=status, kind=kind, cases=cases)
        await audit(
            request, principal(request), "alerts.list", filter={"status": status, "kind": kind}, result_count=len(items)
        )
        return paged(items, page.next_cursor(len(items)))

    @routes.add(
        "POST",
        "/api/v1/alerts/{key:.+}/status",
        roles=OPERATIONS,
        summary="acknowledge, close or reopen an alert",
        tag="alerts",
        body=AlertStatusIn,
    )
    async def alert_status(request: web.Request) -> web.StreamResponse:
        require_csrf_for_cookie_auth(request, request.headers.get(CSRF_HEADER))
        body: AlertStatusIn = await json_body(request, AlertStatusIn)
        who = principal(request)
        cases = await CaseAccess(request.app[STORE]).cases_of(who)
        updated = await ops(request).set_alert_status(request.match_info["key"], body.status, who.actor, cases=cases)
        await audit(request, who, "alerts.status", target=request.match_info["key"], filter={"status": body.status})
        return json_response(updated)

    @routes.add("GET", "/api/v1/runs", roles=OPERATIONS, summary="crawl runs, newest first", tag="runs", query=PAGE)
    async def runs(request: web.Request) -> web.StreamResponse:
        page = page_of(request.query, {"what": "runs"})
        items = await ops(request).runs(page)
        return paged(items, page.next_cursor(len(items)))

    @routes.add("GET", "/api/v1/runs/{run_id}", roles=OPERATIONS, summary="one run with its errors", tag="runs")
    async def run(request: web.Request) -> web.StreamResponse:
        return json_response(await ops(request).run(request.match_info["run_id"]))

    @routes.add("GET", "/api/v1/health", roles=OPERATIONS, summary="store, runs, errors and queues", tag="runs")
    async def health(request: web.Request) -> web.StreamResponse:
        return json_response(await ops(request).health())

    @routes.add("GET", "/api/v1/queues", roles=OPERATIONS, summary="work queue depths per state", tag="runs")
    async def queues(request: web.Request) -> web.StreamResponse:
        return json_response(await ops(request).queues())

    @routes.add(
        "GET",
        "/api/v1/audit",
        roles=AUDITORS,
        summary="the audit trail: who read which evidence",
        tag="audit",
        query={**PAGE, "actor": "token name", "action": "e.g. messages.search, media.reveal"},
    )
    async def audit_trail(request: web.Request) -> web.StreamResponse:
        actor, action = request.query.get("actor") or None, request.query.get("action") or None
        page = page_of(request.query, {"actor": actor, "action": action})
        readers = await readership(request.app[STORE], principal(request))
        items = await ops(request).audit(page, readers=readers, actor=actor, action=action)
        await audit(
            request,
            principal(request),
            "audit.list",
            filter={"actor": actor, "action": action},
            result_count=len(items),
        )
        return paged(items, page.next_cursor(len(items)))
