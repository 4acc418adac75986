"""A small console world for page walks: the investigation case, a hash-list match with its list
entry, a discovery candidate, a takedown request, and an admin who may see the media.

Shared by the Korean untranslated-string walk (``test_console_i18n``), the media review tests and
the headless-Chromium walk (``test_console_pages_browser``). ``PAGES`` is the table every walk
reads: add a console page here and every walk covers it in both languages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crawler.discovery.service import DiscoveryService
from crawler.ingest import Ingest
from crawler.tokens import Role
from foundation.models import Alert, AlertKind
from storage.client import Store
from storage.repos.accounts import AccountRepo
from storage.repos.alerts import AlertRepo
from storage.repos.audience import AudienceRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from storage.repos.case_members import CaseMemberRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.targets import TargetRepo
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
    "/console/",
    "/console/alerts?kind=watchlist_match&status=",
    "/console/alerts?kind=hash_match&status=&day=2024-05-01&channel=alpha_news",
    "/console/accounts",
    "/console/channels",
    "/console/channels?q=alpha&alerts=1&sort=growth",
    "/console/growth",
    "/console/growth?days=3650",
    "/console/growth/alpha_news",
    "/console/hashes",
    "/console/targets",
    "/console/channels/nope",  # the error page (404)
]


@dataclass(frozen=True)
class World:
    case: Case
    admin: str
    monitor: str
    alert: str
    watch: str

    def paths(self, request_id: str) -> list[str]:
        from urllib.parse import quote

        values = {"sha": self.case.sha, "alert": quote(self.alert, safe=""), "request": request_id,
                  "watch": quote(self.watch, safe="")}  # fmt: skip
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
    watch = await seed_dashboard(store, case)
    return World(case=case, admin=admin, monitor=monitor, alert=alert, watch=watch)


async def seed_dashboard(store: Store, case: Case) -> str:
    """What the dashboard, growth, targets, accounts and hash-list pages show: an audience series,
    neighbours of alpha_news, a crawl target, an account, a synced hash list, a screenshot of a
    post and a case-scoped watchlist match (of CASE-W). Returns the watchlist alert's key."""
    audience = AudienceRepo(store)
    for day, subscribers in enumerate((160, 175, 190)):
        await audience.record(
            "alpha_news",
            source="web",
            at=datetime.fromtimestamp(time.time() - (3 - day) * 86_400, UTC),
            kind="channel",
            figures={"subscribers": subscribers},
        )
    # neighbours on the channel page: a post of alpha_news that mentions another room and a bot
    await store["messages"].update_one(
        {"channel": "alpha_news", "msg_id": 4}, {"$set": {"mentions": ["beta_chat", "sample_bot"]}}
    )
    await TargetRepo(store).add("alpha_news", method="web", every="1h")
    await AccountRepo(store).add("acct1", session_enc="x", phone_enc=None, user_id=None, proxy=None)
    await HashListRepo(store).save_sync(
        "testlist", "csv", {"last_sync_ts": T0.timestamp(), "last_status": "ok", "checkpoint": "c1"}
    )
    await store["media"].update_one({"_id": case.other_sha}, {"$set": {"screenshot_of": "alpha_news/2"}})
    watch = f"watchlist/{case.sha}/person-1"
    await AlertRepo(store).raise_alert(
        Alert(
            key=watch,
            kind=AlertKind.WATCHLIST_MATCH,
            sha256=case.sha,
            summary=f"watchlist match awaiting human review (media {case.sha[:12]})",
            details={
                "case": "CASE-W",
                "cases": ["CASE-W"],
                "persons": ["person-1"],
                "review": "human",
                "matches": [{"person": "person-1", "case": "CASE-W", "distance": 0.2}],
                "blurred": True,
            },
            channels=["alpha_news"],
            raised_at=T0,
        )
    )
    return watch


#: pages that show errors and alerts of every kind once ``seed_problems`` ran (the Korean walk reads them)
PROBLEM_PAGES: list[str] = [
    "/console/targets",
    "/console/targets?health=failing",
    "/console/runs",
    "/console/alerts?status=",
    "/console/alerts?status=&kind=detection",
    "/console/alerts?status=&kind=reupload",
    "/console/media/{sha}",
    "/console/hashes",
    "/console/",
]


async def seed_problems(store: Store, case: Case) -> dict[str, str]:
    """What goes wrong, as code records it: a target whose newest run failed on a rate limit, one
    whose channel is gone, alerts of every kind (their stored English summaries, as the raisers write
    them) and a hash entry held for review. Returns the English texts stored, by what they are:
    none of them may be shown as is to a Korean reader."""
    from crawler.scheduling.failures import raise_failure
    from crawler.scheduling.tasks import TaskSpec
    from foundation.errors import RateLimited
    from storage.repos.errors import ErrorRepo
    from storage.repos.runs import RunRepo

    runs, errors, targets = RunRepo(store), ErrorRepo(store), TargetRepo(store)
    limited = (await targets.add("gamma_room", method="web", every="1h"))["_id"]
    gone = (await targets.add("delta_room", method="web", every="6h"))["_id"]
    run_id = await runs.start(limited, "web_channel")
    rate = RateLimited(retry_after=30, url="https://t.me/s/gamma_room")
    await errors.record(rate, run_id=run_id)
    await runs.add(run_id, pages=2, new=5)
    await runs.finish(run_id, "failed")
    await runs.finish(await runs.start(gone, "backfill"), "not_found")
    due = int(T0.timestamp())
    await raise_failure(store, TaskSpec(f"{limited}/{due}", limited, "gamma_room", "web", due), "failed")
    await raise_failure(store, TaskSpec(f"{gone}/{due}", gone, "delta_room", "web", due), "not_found")
    await raise_failure(store, TaskSpec(f"epsilon_room/{due}", "epsilon_room", "epsilon_room", "web", due), "dead")
    summaries = {
        "detection": f"demo-detector flagged media {case.sha[:12]} (synthetic 0.97)",
        "back_online": "message:alpha_news/2 of TD-000001 was found removed and is online again",
        "reupload": "removed item message:alpha_news/2 of TD-000001 is back in beta_chat/8 (pdq, distance 4)",
        "quarantine": "list 'testlist': entry md5 0123456789abcdef quarantined (matched 9 distinct media",
    }
    alerts = AlertRepo(store)
    await alerts.raise_alert(Alert(
        key=f"detection/{case.sha}/demo-detector", kind=AlertKind.DETECTION, sha256=case.sha,
        summary=summaries["detection"], details={"labels": {"synthetic": 0.97}, "detector_version": "1"},
        channels=["alpha_news"], raised_at=T0,
    ))  # fmt: skip
    await alerts.raise_alert(Alert(
        key="back-online/TD-000001/message:alpha_news/2/1", kind=AlertKind.REUPLOAD, summary=summaries["back_online"],
        details={"request": "TD-000001", "item": "message:alpha_news/2", "cause": "back_online"},
        channels=["alpha_news"], raised_at=T0,
    ))  # fmt: skip
    await alerts.raise_alert(Alert(
        key="reupload/TD-000001/beta_chat/8", kind=AlertKind.REUPLOAD, sha256=case.other_sha,
        summary=summaries["reupload"], details={"request": "TD-000001", "original": "message:alpha_news/2",
        "message": "beta_chat/8", "signal": "pdq", "distance": 4}, channels=["beta_chat"], raised_at=T0,
    ))  # fmt: skip
    await alerts.raise_alert(Alert(
        key="quarantine/testlist/md5/0123456789abcdef", kind=AlertKind.HASH_LIST_QUARANTINE,
        summary=summaries["quarantine"], details={"list": "testlist", "signal_type": "md5",
        "value": "0123456789abcdef0123456789abcdef", "entry": "testlist/md5/0123456789abcdef", "distinct_media": 9,
        "reason": "matched 9 distinct media within 3600 s (limit 5)"}, channels=[], raised_at=T0,
    ))  # fmt: skip
    lists = HashListRepo(store)
    held = await store["hash_entries"].find_one({"list": "testlist"})  # the world's one list entry
    assert held is not None
    await lists.quarantine(str(held["_id"]), "matched 9 distinct media within 3600 s (limit 5)", T0.timestamp())
    summaries |= {
        "crawl_failure": "crawl of gamma_room failed",
        "crawl_failure_dead": "crawl of epsilon_room failed after every attempt",
        "target_failure": "target delta_room is not found",
        "watchlist": "watchlist match awaiting human review",
        "hash_match": "matches list 'testlist'",
        "run_error": "rate limited, retry after 30s",
    }
    return summaries
