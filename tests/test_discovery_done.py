"""Issue 8 "done when": from one aggregator page and one seed channel, tgwatch lists triaged, scored
candidates with provenance, and one command turns a candidate into a crawl target.

The seed channel is crawled in-process (ingest with the snowball stage); the aggregator crawl,
triage, listing and approval run through the real click commands in a subprocess against the same
database, while this test's loop serves the sample site.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest

import config
from crawler.crawl_web import crawl_channel
from crawler.discovery.service import DiscoveryService
from crawler.discovery.snowball import SnowballStage
from crawler.discovery.targets import create_target, get_target
from crawler.ingest import Ingest
from spiders.sample_site import SampleSite
from storage.client import Store

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}

CLI = """
import click
from crawler.cli.app import AppContext
from crawler.cli.discovery import aggregator_cmd, candidates_group, discover_group

@click.group()
@click.pass_context
def cli(ctx):
    ctx.obj = AppContext(overrides={"log_format": "json", "log_level": "WARNING"})

crawl = click.Group("crawl")
crawl.add_command(aggregator_cmd)
cli.add_command(crawl)
cli.add_command(discover_group)
cli.add_command(candidates_group)
cli(prog_name="tgwatch")
"""


@pytest.fixture
async def site() -> AsyncIterator[SampleSite]:
    async with SampleSite.serve() as served:
        yield served


async def tgwatch(uri: str, database: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=uri, TGWATCH_DATABASE=database)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, f"tgwatch {' '.join(args)} failed:\n{out.decode()}\n{err.decode()}"
    return out.decode()


async def test_from_one_aggregator_and_one_seed_to_a_target(
    site: SampleSite, store: Store, ingest: Ingest, embedded_uri: str
) -> None:
    settings = config.load()
    # the seed: a target staff added; crawling it snowballs its mentions and forwards into candidates
    ingest.add_stage(SnowballStage(DiscoveryService(store)), after="persist")
    await create_target(store, "https://t.me/daily_brief", "web")
    crawl = await crawl_channel(settings, ingest, "daily_brief", base_url=site.base_url, scrapy_overrides=FAST)
    assert crawl.messages > 0

    uri, database = embedded_uri, store.db.name
    out = await tgwatch(uri, database, "crawl", "aggregator", site.url("/directory/"), "--json")
    assert json.loads(out.strip().splitlines()[-1])["new"] > 0
    out = await tgwatch(uri, database, "discover", "run", "--base-url", site.base_url, "--json")
    assert json.loads(out.strip().splitlines()[-1])["errors"] == 0

    out = await tgwatch(uri, database, "candidates", "list", "--status", "triaged", "--json")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_link = {line["link"]: line for line in lines}
    for line in lines:
        assert {"link", "kind", "type", "title", "members", "state", "score", "status", "provenance"} <= set(line)
        assert line["status"] == "triaged" and line["score"] is not None and line["provenance"]
    korea = by_link["https://t.me/korea_now"]
    kinds = {p["source_kind"] for p in korea["provenance"]}
    assert kinds == {"aggregator", "snowball"}, "found on the aggregator and in the seed's messages"
    snow = next(p for p in korea["provenance"] if p["source_kind"] == "snowball")
    assert snow["message_key"].startswith("daily_brief/") and snow["depth"] == 1
    assert korea["type"] == "channel" and korea["state"] == "valid" and korea["members"]
    reports = by_link["https://t.me/+AbCdSampleInvite01"]
    assert reports["score"] > 0 and "합성" in reports["matched_terms"]
    assert by_link["https://t.me/gone_room_2024"]["state"] == "not_found"

    out = await tgwatch(uri, database, "candidates", "approve", "https://t.me/korea_now", "--by", "reviewer")
    assert "approved" in out
    target = await get_target(store, "https://t.me/korea_now")
    assert target is not None and target["method"] == "web" and target["source"] == "candidate"
