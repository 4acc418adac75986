"""``POST /api/v1/tips`` (victims' and hotlines' reports, role monitor) and ``GET /api/v1/candidates``.

A tip becomes a candidate with the tip's provenance (who reported it, their note) and the tip
priority, so it is triaged and reviewed before anything machines found. Listing candidates is a
read of collected material and is audited like every other read.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from config.discovery import discovery_settings
from crawler.discovery.models import CandidateStatus
from crawler.discovery.service import DiscoveryService, summary_line
from crawler.routes.context import AUDIT, SETTINGS, STORE, json_response
from crawler.routes.table import RouteTable, json_body, principal
from crawler.tokens import Role

SERVICE: web.AppKey[DiscoveryService] = web.AppKey("discovery_service", DiscoveryService)


class TipIn(BaseModel):
    link: str = Field(min_length=1, max_length=2000, description="t.me link, invite link or @username")
    source: str | None = Field(
        None, max_length=200, description="who reported it (hotline, case worker); defaults to the token's name"
    )
    note: str | None = Field(None, max_length=4000)


async def _start(app: web.Application) -> None:
    app[SERVICE] = DiscoveryService(app[STORE], discovery_settings(app[SETTINGS]))


def register(routes: RouteTable) -> None:
    routes.startup.append(_start)

    @routes.add(
        "POST", "/api/v1/tips", roles={Role.MONITOR}, summary="report a Telegram link (a tip)", tag="discovery",
        body=TipIn,
    )  # fmt: skip
    async def add_tip(request: web.Request) -> web.StreamResponse:
        body: TipIn = await json_body(request, TipIn)
        who = principal(request)
        doc = await request.app[SERVICE].add_tip(body.link, source=body.source or who.name, note=body.note)
        return json_response(summary_line(doc), status=201)

    @routes.add(
        "GET",
        "/api/v1/candidates",
        roles={Role.MONITOR},
        summary="discovery candidates, highest priority first",
        tag="discovery",
        query={"status": "new | triaged | approved | rejected", "limit": "at most this many (default 100)"},
    )
    async def list_candidates(request: web.Request) -> web.StreamResponse:
        status = request.query.get("status")
        try:
            statuses = [CandidateStatus(status)] if status else []
            limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
        except ValueError:
            raise web.HTTPBadRequest(reason="status must be new|triaged|approved|rejected; limit a number") from None
        docs = await request.app[SERVICE].list(statuses=statuses, limit=limit)
        who = principal(request)
        await request.app[AUDIT].record_access(
            actor=who.actor,
            role=who.role.value,
            action="candidates.list",
            filter={"status": status, "limit": limit},
            result_count=len(docs),
        )
        return json_response({"candidates": [summary_line(d) for d in docs]})
