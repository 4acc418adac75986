"""``/api/v1/watchlist/gallery``: the one watchlist route, for the faces detector.

There is deliberately no route that takes a face, a photo or an embedding: nobody can ask tgwatch
who someone is. The detector receives the *sealed* embeddings of the active enrollments (it holds
the key itself) and reports matches through the detection queue; enrollment and withdrawal are CLI
commands an admin runs (``tgwatch watchlist``). Every gallery read is audited.
"""

from __future__ import annotations

from aiohttp import web

from crawler.evidence.app_key import LEDGER
from crawler.routes.context import AUDIT, SETTINGS, STORE, json_response, problem
from crawler.routes.table import RouteTable, principal
from crawler.tokens import Role
from crawler.watchlist.faces import MODEL_VERSION
from crawler.watchlist.gate import WatchlistReview
from crawler.watchlist.sealing import WatchlistOff
from crawler.watchlist.service import WatchlistService


def watchlist_service(app: web.Application) -> WatchlistService | None:
    """The watchlist of this server, or None when it is off (no ``watchlist.key``)."""
    try:
        return WatchlistService(app[STORE], app[SETTINGS], app[LEDGER])
    except WatchlistOff:
        return None


def review_gate(app: web.Application) -> WatchlistReview | None:
    """What the detection service checks ``watchlist_match`` verdicts with (None: refused)."""
    service = watchlist_service(app)
    return WatchlistReview(service) if service is not None else None


def register(routes: RouteTable) -> None:
    @routes.add(
        "GET",
        "/api/v1/watchlist/gallery",
        roles={Role.DETECTOR},
        summary="sealed embeddings of the consenting persons enrolled now (for the faces detector)",
        tag="watchlist",
    )
    async def gallery(request: web.Request) -> web.StreamResponse:
        service = watchlist_service(request.app)
        if service is None:
            return problem(409, "the watchlist is off on this server (no watchlist.key)", kind="watchlist_off")
        persons = await service.sealed_gallery()
        who = principal(request)
        await request.app[AUDIT].record_access(
            actor=who.actor, role=who.role.value, action="watchlist.gallery", result_count=len(persons)
        )
        return json_response({"persons": persons, "threshold": service.settings.threshold, "model": MODEL_VERSION})
