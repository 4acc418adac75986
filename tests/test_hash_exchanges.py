"""Exchange sync through python-threatexchange's real clients against loopback servers answering
each exchange's documented requests: incremental fetch, withdrawals, feedback, retroactive matching."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import config
from config import Settings
from crawler.hashing import synthetic
from crawler.hashing.exchanges import NCMECExchange, StopNCIIExchange, ThreatExchangeExchange
from crawler.hashing.images import hash_image
from crawler.hashing.pool import hash_media_sync
from crawler.media.exchange_sync import sync_exchange
from crawler.media.matcher import Matcher
from crawler.pipeline import open_pipeline
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, Source
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from tests.exchange_servers import (
    FEEDBACK_KEY,
    FETCH_KEY,
    NCMEC,
    NCMEC_PASSWORD,
    NCMEC_USER,
    SUBSCRIPTION_KEY,
    TE_TOKEN,
    StopNCII,
    ThreatExchange,
    serving,
)
from tests.media_host import LOOPBACK_HTTP, MediaServer

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def exchange_settings(data_dir: Path, **exchanges: Any) -> Settings:
    return config.load(data_dir=data_dir, media={"hash_workers": 1}, http=LOOPBACK_HTTP, exchanges=exchanges)


def stopncii_cfg(base: str, **extra: Any) -> dict[str, Any]:
    return {"stopncii": {"fetch_key": FETCH_KEY, "feedback_key": FEEDBACK_KEY, "subscription_key": SUBSCRIPTION_KEY,
                         "base_url": base + "/v1"}, **extra}  # fmt: skip


def msg(i: int, url: str, channel: str = "exch_lab") -> Message:
    return Message(ref=ChannelRef(username=channel), msg_id=i, source=Source.WEB, date=T0, text=f"post {i}",
                   media=[MediaRef(kind=MediaKind.PHOTO, url=url)])  # fmt: skip


async def crawl(store: Store, settings: Settings, messages: list[Message]) -> None:
    async with open_pipeline(store, settings) as ingest:
        await ingest.submit(messages)


def pdq_of(data: bytes) -> str:
    found = hash_image(data).pdq
    assert found is not None
    return found.hash


async def test_stopncii_incremental_sync_withdrawal_and_feedback(
    store: Store, tmp_path: Path, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    a, b = (synthetic.encode(synthetic.scene(s), "PNG") for s in (61, 62))
    server.files.update({"a.png": (a, "image/png"), "b.png": (b, "image/png")})
    exchange = StopNCII()
    exchange.put("ImagePDQ", pdq_of(a), ts=100)
    exchange.put("VideoMD5", "ab" * 16, ts=101)
    exchange.put("VideoTMK", "00ff", ts=102)  # a type tgwatch does not match: counted as skipped
    async with serving(exchange.app()) as url:
        settings = exchange_settings(tmp_path / "d", **stopncii_cfg(url))
        await crawl(store, settings, [msg(1, base + "a.png"), msg(2, base + "b.png")])

        first = await sync_exchange(store, settings, StopNCIIExchange(settings))
        assert (first.status, first.pages, first.added, first.skipped, first.withdrawn) == ("ok", 2, 2, 1, 0)
        assert [f["startTimestamp"] for f in exchange.fetches] == ["10", "10"], "from the start, two pages"
        assert first.retro is not None and first.retro.alerts_raised == 1, "a.png was stored before the list"
        sha_a, sha_b = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
        assert await AlertRepo(store).get(f"match/stopncii/{sha_a}") is not None
        sent = exchange.feedback[0]["hashFeedbacks"]
        assert [(f["hashValue"], f["feedbackValue"]) for f in sent] == [(pdq_of(a), "PendingReview")]

        # the exchange moves on: a's hash withdrawn by its owner, b's hash added
        exchange.put("ImagePDQ", pdq_of(a), status="Withdrawn", ts=200)
        exchange.put("ImagePDQ", pdq_of(b), ts=201)
        second = await sync_exchange(store, settings, StopNCIIExchange(settings))
        assert exchange.fetches[2]["startTimestamp"] == "103", "resumed from the stored checkpoint"
        assert (second.added, second.withdrawn, second.pages) == (1, 1, 1)
        assert second.retro is not None and second.retro.alerts_raised == 1

        matcher = Matcher(store, settings.matching)
        assert await matcher.match(hash_media_sync(a)) == [], "the withdrawn hash no longer matches"
        assert [h.list for h in await matcher.match(hash_media_sync(b))] == ["stopncii"]
        doc = await HashListRepo(store).get("stopncii")
        assert doc is not None and doc["withdrawn"] == 1 and doc["counts"] == {"pdq": 1, "md5": 1}

        # reviewers decide; the next sync reports blocked / not blocked, each verdict once
        await AlertRepo(store).set_review(f"match/stopncii/{sha_a}", "rejected", "rev")
        await AlertRepo(store).set_review(f"match/stopncii/{sha_b}", "confirmed", "rev")
        third = await sync_exchange(store, settings, StopNCIIExchange(settings))
        assert third.added == 0 and third.feedback_sent == 2
        verdicts = {f["hashValue"]: f["feedbackValue"] for f in exchange.feedback[-1]["hashFeedbacks"]}
        assert verdicts == {pdq_of(a): "NotBlocked", pdq_of(b): "Blocked"}
        fourth = await sync_exchange(store, settings, StopNCIIExchange(settings))
        assert fourth.feedback_sent == 0

        run = await store["runs"].find_one({"_id": second.run_id})
        assert run is not None and run["kind"] == "exchange_sync" and run["status"] == "ok"
        assert run["counts"]["added"] == 1 and run["counts"]["withdrawn"] == 1


async def test_a_failing_exchange_is_one_clear_error_and_keeps_the_checkpoint(store: Store, tmp_path: Path) -> None:
    exchange = StopNCII()
    exchange.put("ImagePDQ", "f" * 64, ts=100)
    async with serving(exchange.app()) as url:
        settings = exchange_settings(tmp_path / "d", **stopncii_cfg(url))
        ok = await sync_exchange(store, settings, StopNCIIExchange(settings))
        exchange.fail = 403
        failed = await sync_exchange(store, settings, StopNCIIExchange(settings))
    assert ok.status == "ok" and failed.status == "error"
    assert failed.error is not None and "403" in failed.error and FETCH_KEY not in failed.error
    doc = await HashListRepo(store).get("stopncii")
    assert doc is not None and doc["sync"]["checkpoint"]["update_time"] == 101 and doc["sync"]["last_status"] == "error"
    run = await store["runs"].find_one({"_id": failed.run_id})
    assert run is not None and run["status"] == "error"


async def test_an_exchange_on_a_private_address_is_refused_unless_allowed(store: Store, tmp_path: Path) -> None:
    exchange = StopNCII()
    async with serving(exchange.app()) as url:
        settings = config.load(data_dir=tmp_path / "d", exchanges=stopncii_cfg(url))  # no allow_private_hosts
        result = await sync_exchange(store, settings, StopNCIIExchange(settings))
    assert result.status == "error" and "refused" in (result.error or "") and exchange.fetches == []


async def test_ncmec_entries_and_their_tombstones(store: Store, tmp_path: Path) -> None:
    pdq = "e" * 63 + "1"
    server = NCMEC()
    server.put("1001", "image", {"PDQ": pdq, "MD5": "c" * 32}, ts=1_700_000_000)
    server.put("1002", "video", {"MD5": "d" * 32, "TMK_PDQF": "xx"}, ts=1_700_000_100)
    async with serving(server.app()) as url:
        cfg = {"ncmec": {"user": NCMEC_USER, "password": NCMEC_PASSWORD, "environment": "test_NGO", "base_url": url}}
        settings = exchange_settings(tmp_path / "d", **cfg)
        first = await sync_exchange(store, settings, NCMECExchange(settings))
        assert (first.status, first.added, first.skipped) == ("ok", 3, 1), first.error
        entries = await HashListRepo(store).list_entries("ncmec")
        assert {(e["signal_type"], e["value"], e["exchange_key"]) for e in entries} == {
            ("pdq", pdq, "42-1001"), ("md5", "c" * 32, "42-1001"), ("md5", "d" * 32, "42-1002")}  # fmt: skip
        assert {e["label"] for e in entries} == {"A1"}
        stored = (await HashListRepo(store).get("ncmec") or {})["sync"]["checkpoint"]
        assert stored["get_entries_max_ts"] >= 1_700_000_100
        # the library fetches up to "now - 5 s": pretend the first sync ended a minute ago, so the
        # second has a range to fetch however fast the test runs
        checkpoint = stored["get_entries_max_ts"] - 60
        earlier = {"checkpoint": {**stored, "get_entries_max_ts": checkpoint}}
        await HashListRepo(store).save_sync("ncmec", "exchange:ncmec", earlier)
        server.put("1001", "image", {}, ts=checkpoint + 1, deleted=True)  # NCMEC deletes the entry
        second = await sync_exchange(store, settings, NCMECExchange(settings))
    assert second.withdrawn == 2 and second.added == 0
    assert server.requests[1]["from"] == datetime.fromtimestamp(checkpoint, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    left = await HashListRepo(store).list_entries("ncmec")
    assert [e["value"] for e in left] == ["d" * 32]


async def test_threatexchange_privacy_group_updates_and_deletions(store: Store, tmp_path: Path) -> None:
    server = ThreatExchange()
    pdq = "a" * 63 + "5"
    server.put(555, 1, "HASH_PDQ", pdq, ts=1000)
    server.put(555, 2, "HASH_MD5", "b" * 32, ts=1001)
    server.put(555, 3, "URI", "https://example.org/x", ts=1002)
    async with serving(server.app()) as url:
        cfg = {"threatexchange": {"access_token": TE_TOKEN, "privacy_groups": [555], "base_url": url}}
        settings = exchange_settings(tmp_path / "d", **cfg)
        first = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        assert (first.status, first.list, first.added, first.skipped) == ("ok", "te-555", 2, 1), first.error
        server.put(555, 1, "HASH_PDQ", pdq, ts=2000, delete=True)
        second = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
        unchanged = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 555))
    assert second.withdrawn == 1 and server.requests[1]["start_time"] == "1002"
    assert unchanged.status == "ok" and unchanged.withdrawn == 0
    assert [e["value"] for e in await HashListRepo(store).list_entries("te-555")] == ["b" * 32]
    assert {e["label"] for e in await HashListRepo(store).list_entries("te-555")} == {"ncii"}


async def _tgwatch(data_dir: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, waited for in a thread (the loopback server shares this loop)."""
    return await asyncio.to_thread(_run, data_dir, env_extra, *args)


def _run(data_dir: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip


@pytest.mark.slow
async def test_cli_sync_then_lists_shows_the_figures(tmp_path: Path) -> None:
    exchange = StopNCII()
    exchange.put("ImagePDQ", "1" * 64, ts=100)
    exchange.put("ImagePDQ", "2" * 64, ts=101)
    async with serving(exchange.app()) as url:
        env = {"TGWATCH_EXCHANGES__STOPNCII__FETCH_KEY": FETCH_KEY,
               "TGWATCH_EXCHANGES__STOPNCII__SUBSCRIPTION_KEY": SUBSCRIPTION_KEY,
               "TGWATCH_EXCHANGES__STOPNCII__BASE_URL": url + "/v1",
               "TGWATCH_HTTP__ALLOW_PRIVATE_HOSTS": '["127.0.0.1"]'}  # fmt: skip
        data_dir = tmp_path / "cli"
        out = await _tgwatch(data_dir, env, "hashes", "sync", "stopncii")
        assert out.returncode == 0, out.stderr
        assert "stopncii -> list 'stopncii': ok, 1 pages, 2 added, 0 withdrawn" in out.stdout
        exchange.put("ImagePDQ", "1" * 64, status="Deleted", ts=300)
        again = await _tgwatch(data_dir, env, "hashes", "sync", "--json")
        assert json.loads(again.stdout)["withdrawn"] == 1
        shown = await _tgwatch(data_dir, env, "hashes", "lists", "--json")
        row = json.loads(shown.stdout)
        assert (row["source"], row["entries"], row["withdrawn"], row["quarantined"]) == ("exchange:stopncii", 1, 1, 0)
        assert row["last_sync"] != "-" and row["precision"] is None
        exchange.fail = 500
        broken = await _tgwatch(data_dir, env, "hashes", "sync", "stopncii")
    assert broken.returncode == 1 and "stopncii -> list 'stopncii': error" in broken.stdout
    assert "Traceback" not in broken.stderr and FETCH_KEY not in broken.stdout + broken.stderr
    missing = await _tgwatch(tmp_path / "other", {}, "hashes", "sync", "ncmec")
    assert missing.returncode != 0 and "NCMEC is not configured" in missing.stderr


async def test_the_scheduled_job_syncs_every_configured_exchange(store: Store, tmp_path: Path) -> None:
    from crawler.ingest import Ingest
    from crawler.scheduling.plan import EXCHANGE_METHOD, exchange_schedule
    from crawler.scheduling.runners import RUNNERS, RunContext
    from crawler.scheduling.tasks import TaskSpec

    assert exchange_schedule(0) is None, "off unless exchanges.sync_every is set"
    schedule = exchange_schedule(3600)
    assert schedule is not None and schedule.method == EXCHANGE_METHOD
    exchange = StopNCII()
    exchange.put("ImagePDQ", "3" * 64, ts=100)
    async with serving(exchange.app()) as url:
        settings = exchange_settings(tmp_path / "d", **stopncii_cfg(url), sync_every=3600)
        ctx = RunContext(settings=settings, store=store, ingest=Ingest(store))
        task = TaskSpec(task_id="tgwatch:exchange-sync/1", target=schedule.target, name=schedule.name,
                        method=EXCHANGE_METHOD, due=1)  # fmt: skip
        outcome = await RUNNERS[EXCHANGE_METHOD](ctx, task)
    assert outcome.status == "ok" and outcome.counts == {"exchanges": 1, "added": 1, "withdrawn": 0, "failed": 0}
    run = await store["runs"].find_one({"kind": "exchange_sync"})
    assert run is not None and run["trigger"] == "schedule"
