"""Triage: preview pages of the sample site (channels, groups, bots, invites, not found), faults, scores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

import config
from crawler.discovery.models import Sighting, SourceKind, room_link
from crawler.discovery.run import run_triage
from crawler.discovery.scoring import Scorer, TermList, load_terms
from crawler.discovery.service import DiscoveryService
from spiders.sample_site import SampleSite
from storage.client import Store

FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "TGWATCH_RETRY_BASE_DELAY": 0.05,
    "TGWATCH_RETRY_MAX_DELAY": 0.2,
    "TGWATCH_MAX_RETRY_AFTER": 5.0,
}
T0 = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


async def seed(store: Store, *links: str, context: dict[str, str] | None = None) -> DiscoveryService:
    service = DiscoveryService(store)
    sightings = []
    for text in links:
        room = room_link(text)
        assert room is not None, text
        sightings.append(
            Sighting.of(room, SourceKind.AGGREGATOR, "test", T0, page_url="http://agg.example/", context=context or {})
        )
    await service.record(sightings)
    return service


async def triage(store: Store, site: SampleSite, **overrides: object) -> dict[str, dict]:
    summary = await run_triage(config.load(), store, base_url=site.base_url, scrapy_overrides={**FAST, **overrides})
    assert summary.checked > 0
    return {d["_id"]: d for d in await DiscoveryService(store).list(limit=1000)}


async def test_preview_pages_of_every_kind(site: SampleSite, store: Store) -> None:
    await seed(
        store,
        "https://t.me/daily_brief",
        "https://t.me/study_circle_kr",
        "https://t.me/room_finder_bot",
        "https://t.me/+AbCdSampleInvite01",
        "https://t.me/joinchat/SampleChanInvite02",
        "https://t.me/+ExpiredSample0003",
        "https://t.me/gone_room_2024",
        "https://t.me/closed_club",
    )
    got = await triage(store, site)
    daily = got["https://t.me/daily_brief"]
    world_daily = site.world.channel("daily_brief")
    assert world_daily is not None
    assert (daily["status"], daily["state"], daily["type"]) == ("triaged", "valid", "channel")
    assert daily["title"] == world_daily.title and daily["verified"] is True
    assert daily["members"] == world_daily.subscribers and daily["triage"]["subscribers"] == world_daily.subscribers
    assert daily["triage"]["avatar_url"].startswith(site.base_url + "/media/")
    assert daily["triage"]["description"] == world_daily.description

    group = got["https://t.me/study_circle_kr"]
    assert (group["state"], group["type"], group["members"], group["online"]) == ("valid", "group", 1234, 56)
    assert got["https://t.me/room_finder_bot"]["type"] == "bot"

    invite = got["https://t.me/+AbCdSampleInvite01"]
    assert (invite["state"], invite["type"], invite["members"]) == ("valid", "group", 321)
    channel_invite = got["https://t.me/+SampleChanInvite02"]
    assert (channel_invite["type"], channel_invite["members"]) == ("channel", 4567)
    assert got["https://t.me/+ExpiredSample0003"]["state"] == "expired_invite"
    gone = got["https://t.me/gone_room_2024"]
    assert (gone["state"], gone["status"], gone["title"]) == ("not_found", "triaged", None)
    assert got["https://t.me/closed_club"]["type"] == "channel"
    assert all(d["status"] == "triaged" for d in got.values())


async def test_429_retry_after_is_honoured(site: SampleSite, store: Store) -> None:
    await seed(store, "https://t.me/daily_brief")
    site.faults.rate_limit("/daily_brief", times=1, retry_after=1)
    got = await triage(store, site)
    assert got["https://t.me/daily_brief"]["state"] == "valid"
    hits = site.hits_for("/daily_brief")
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 0.9, "the retry waited for Retry-After"


async def test_5xx_is_retried_with_backoff(site: SampleSite, store: Store) -> None:
    await seed(store, "https://t.me/study_circle_kr")
    site.faults.server_error("/study_circle_kr", times=2, status=502)
    got = await triage(store, site)
    assert got["https://t.me/study_circle_kr"]["state"] == "valid"
    assert [h.status for h in site.hits_for("/study_circle_kr")] == [502, 502, 200]


async def test_persistent_failures_leave_the_candidate_pending_with_the_error(site: SampleSite, store: Store) -> None:
    await seed(store, "https://t.me/korea_now", "https://t.me/daily_brief")
    site.faults.server_error("/korea_now", times=None, status=500)
    site.faults.rate_limit("/daily_brief", times=None, retry_after=120)  # longer than we wait in one run
    summary = await run_triage(
        config.load(), store, base_url=site.base_url, scrapy_overrides={**FAST, "RETRY_TIMES": 1}
    )
    assert summary.states["error"] == 2 and summary.status == "partial"
    got = {d["_id"]: d for d in await DiscoveryService(store).list()}
    korea, daily = got["https://t.me/korea_now"], got["https://t.me/daily_brief"]
    assert korea["status"] == "new" and korea["triage_error"]["kind"] == "source"
    assert daily["status"] == "new" and daily["triage_error"]["kind"] == "rate_limited"
    assert daily["triage_error"]["retry_after"] == 120
    # the next run picks them up again (still pending) and succeeds once the site behaves
    site.faults.clear()
    got = await triage(store, site)
    korea = got["https://t.me/korea_now"]
    assert korea["status"] == "triaged" and korea["triage_error"] is None


async def test_scores_use_title_description_and_context(site: SampleSite, store: Store) -> None:
    await seed(store, "https://t.me/+AbCdSampleInvite01", context={"description": "지인 사진 유출 신고"})
    await seed(store, "https://t.me/daily_brief")
    got = await triage(store, site)
    invite, daily = got["https://t.me/+AbCdSampleInvite01"], got["https://t.me/daily_brief"]
    terms = {(m["term"], m["field"]) for m in invite["matched_terms"]}
    assert ("합성", "title") in terms and ("유출", "context") in terms and ("지인", "context") in terms
    assert invite["score"] > 3 and daily["score"] == 0


def test_scorer_rules() -> None:
    scorer = Scorer(
        TermList.model_validate(
            {"fields": {"title": 2.0, "description": 1.0, "context": 0.5},
             "terms": {"en": {"leak": 1.0, "face swap": 2.0}, "ko": {"합성": 3.0}}}
        )
    )  # fmt: skip
    assert scorer.score("LEAKED files", None).value == 2.0  # case-folded, word start
    assert scorer.score("a bleak day", None).value == 0.0  # not inside a word
    assert scorer.score(None, "Face   Swap tools").value == 2.0  # any whitespace between words
    assert scorer.score("사진합성방", None).value == 6.0  # Korean: anywhere in the word
    assert scorer.score(None, None, ["합성", "leak"]).value == 2.0  # context weight 0.5 × (3 + 1)
    shipped = load_terms()
    assert {"en", "ko"} <= set(shipped.terms) and "딥페이크" in shipped.terms["ko"]
