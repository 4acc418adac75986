"""Aggregator discovery against the bundled synthetic aggregator: rules, generic rule, provenance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import config
from config.aggregators import GENERIC_NAME, AggregatorRules, RulesError, SiteRule, load_rules
from crawler.discovery.run import crawl_aggregator
from crawler.discovery.service import DiscoveryService
from foundation.errors import ConfigError
from spiders.sample_site import SampleSite
from spiders.sample_site.aggregator import EXPECTED_BY_RULES, EXPECTED_GENERIC, FOOTER_LINKS, LISTINGS
from storage.client import Store

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


async def _all(store: Store) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d for d in await DiscoveryService(store).list(limit=10_000)}


def _titles(doc: dict[str, Any]) -> set[str]:
    return {p["context"]["title"] for p in doc["provenance"] if "title" in p.get("context", {})}


async def test_shipped_rules_load_and_resolve() -> None:
    rules = load_rules()
    rule = rules.by_name("sample_directory")
    assert rule is not None and rule.item == "article.listing"
    assert rules.resolve("sample_directory") == (rule, None)
    matched, urls = rules.resolve("http://127.0.0.1:9999/directory/category/news")
    assert matched is rule and urls == ["http://127.0.0.1:9999/directory/category/news"]
    generic, urls = rules.resolve("https://blog.example/some/page")
    assert generic.name == GENERIC_NAME and generic.is_generic and urls is None
    assert rule.resolved_start_urls("http://127.0.0.1:1234") == ["http://127.0.0.1:1234/directory/"]
    with pytest.raises(RulesError, match="no aggregator site named"):
        rules.resolve("nonexistent_site")


async def test_invalid_rules_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[site]]\nname = "x"\nstart_urls = ["/"]\nurl_patterns = ["("]\n', encoding="utf-8")
    with pytest.raises(RulesError, match="not a regex"):
        load_rules(bad)
    with pytest.raises(ValueError, match="unique"):
        AggregatorRules(site=[SiteRule(name="a", start_urls=["/"]), SiteRule(name="a", start_urls=["/"])])


async def test_sample_aggregator_end_to_end(site: SampleSite, store: Store) -> None:
    summary = await crawl_aggregator(
        config.load(), store, "sample_directory", base_url=site.base_url, scrapy_overrides=FAST
    )
    assert summary.status == "ok", summary.errors
    # 3 pages of the full directory (12 listings, 5 a page) + 4 one-page categories, each fetched once
    assert summary.pages == 7
    found = await _all(store)
    assert set(found) == set(EXPECTED_BY_RULES), "every advertised room once, junk and footer links ignored"
    for link, titles in EXPECTED_BY_RULES.items():
        doc = found[link]
        assert titles <= _titles(doc), link
        assert doc["status"] == "new" and doc["depth"] == 0
        for entry in doc["provenance"]:
            assert entry["source_kind"] == "aggregator" and entry["source"] == "sample_directory"
            assert entry["page_url"].startswith(site.base_url + "/directory/")
            assert entry["at"]
    # duplicates merged: the same room on the directory, its category page, and as a post link
    daily = found["https://t.me/daily_brief"]
    assert daily["sightings"] >= 3
    assert len({p["page_url"] for p in daily["provenance"]}) == len(daily["provenance"])
    # context: category and tags travel with the link
    invite = found["https://t.me/+AbCdSampleInvite01"]
    ctx = invite["provenance"][0]["context"]
    assert ctx["category"] == "Reports" and ctx["tags"] == ["합성", "제보"] and "딥페이크" in ctx["description"]
    assert invite["kind"] == "invite"
    assert summary.ignored >= 3  # share, proxy, too-short name in listings
    assert not set(FOOTER_LINKS) & set(found)


async def test_crawling_twice_adds_no_duplicates(site: SampleSite, store: Store) -> None:
    settings = config.load()
    await crawl_aggregator(settings, store, "sample_directory", base_url=site.base_url, scrapy_overrides=FAST)
    first = await _all(store)
    again = await crawl_aggregator(settings, store, "sample_directory", base_url=site.base_url, scrapy_overrides=FAST)
    second = await _all(store)
    assert again.new == 0 and set(first) == set(second)
    for link, doc in second.items():
        assert len(doc["provenance"]) == len(first[link]["provenance"]), "same page, same provenance entry"


async def test_generic_rule_on_a_site_without_rules(site: SampleSite, store: Store) -> None:
    summary = await crawl_aggregator(
        config.load(), store, site.url("/blog/rooms.html"), scrapy_overrides=FAST, record_run=False
    )
    assert summary.site == GENERIC_NAME and summary.pages == 1
    found = await _all(store)
    assert set(found) == set(EXPECTED_GENERIC)
    for link, phrase in EXPECTED_GENERIC.items():
        (entry,) = found[link]["provenance"]
        assert phrase in entry["context"]["text"], (link, entry)
        assert entry["source"] == GENERIC_NAME and entry["page_url"] == site.url("/blog/rooms.html")


async def test_generic_rule_takes_every_link_of_a_listing_page(site: SampleSite, store: Store) -> None:
    """With rules ignored (a URL no rule matches would do the same), the footer link is found too."""
    rules = AggregatorRules()  # no rules at all
    await crawl_aggregator(
        config.load(), store, site.url("/directory/"), rules=rules, scrapy_overrides=FAST, record_run=False
    )
    found = await _all(store)
    assert set(FOOTER_LINKS) <= set(found)
    entry = found["https://t.me/room_finder_news"]["provenance"][0]
    assert "Follow Room Finder news" in entry["context"]["text"]
    # rel=next pagination is followed: listings of page 3 are there
    assert {lst.canonical for lst in LISTINGS[10:] if lst.canonical} <= set(found)


async def test_unknown_site_name_is_a_config_error(store: Store) -> None:
    with pytest.raises(ConfigError, match="no aggregator site named"):
        await crawl_aggregator(config.load(), store, "no_such_site", record_run=False)
