"""A small console world for page walks: the investigation case, a hash-list match with its list
entry, a discovery candidate, a takedown request, and an admin who may see the media.

Shared by the Korean untranslated-string walk (``test_console_i18n``), the media review tests and
the headless-Chromium walk (``test_console_pages_browser``). ``PAGES`` is the table every walk
reads: add a console page here and every walk covers it in both languages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from crawler.discovery.service import DiscoveryService
from crawler.ingest import Ingest
from crawler.tokens import Role
from foundation.models import Alert, AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo
from storage.repos.hashlists import HashListRepo
from tests.test_investigate_api import T0, Case, load_case, token

#: every console page a walk opens, as a path template over the world's values; ``{sha}``, ``{alert}``,
#: ``{request}`` are filled in. A page added by another area is one more line here.
PAGES: list[str] = [
    "/console/search",
    "/console/search?q=Hello",
    "/console/search?sha256={sha}",
    "/console/channels/alpha_news",
    "/console/messages/alpha_news/2",
    "/console/messages/beta_chat/8",
    "/console/media/{sha}",
    "/console/alerts",
    "/console/alerts?status=closed",
    "/console/match?alert={alert}",
    "/console/candidates",
    "/console/candidates?status=approved",
    "/console/runs",
    "/console/audit",
    "/console/takedowns",
    "/console/takedowns?status=all",
    "/console/takedowns/{request}",
    "/console/review",
    "/console/notify",
    "/console/channels/nope",  # the error page (404)
]


@dataclass(frozen=True)
class World:
    case: Case
    admin: str
    monitor: str
    alert: str

    def paths(self, request_id: str) -> list[str]:
        from urllib.parse import quote

        values = {"sha": self.case.sha, "alert": quote(self.alert, safe=""), "request": request_id}
        return [p.format(**values) for p in PAGES]


async def build_world(store: Store, ingest: Ingest, data_dir: Path) -> World:
    case = await load_case(store, ingest, data_dir)
    await HashListRepo(store).add_entries("testlist", "csv", [("md5", case.md5, "synthetic test entry 7")])
    alert = f"match/testlist/{case.sha}"
    await store["alerts"].delete_one({"_id": alert})  # the case's own alert has no match details
    await AlertRepo(store).raise_alert(
        Alert(
            key=alert,
            kind=AlertKind.HASH_MATCH,
            sha256=case.sha,
            summary=f"media {case.sha[:12]} matches list 'testlist' (md5, distance 0)",
            details={
                "list": "testlist",
                "signal_type": "md5",
                "value": case.md5,
                "distance": 0,
                "label": "synthetic test entry 7",
                "message": "alpha_news/2",
            },
            channels=["alpha_news", "beta_chat"],
            raised_at=T0,
        )
    )
    await DiscoveryService(store).add_tip("https://t.me/sample_room_one", source="hotline")
    admin = await token(store, Role.ADMIN, "boss")
    monitor = await token(store, Role.MONITOR, "mo")
    await AuthorizationRepo(store).add(
        case_id="CASE-W",
        warrant_ref="W-1",
        approver="judge",
        scope=[channel_scope("alpha_news")],
        accounts=["boss", "ana"],
        valid_until=time.time() + 3600,
    )
    await CaseMemberRepo(store).add("CASE-W", "ana", added_by="admin")
    return World(case=case, admin=admin, monitor=monitor, alert=alert)
