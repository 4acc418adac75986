"""Crawl and target failures raised by the worker reach a notification rule that asks for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import config
from crawler.ingest import Ingest
from crawler.notify.dispatcher import Dispatcher
from crawler.notify.rules import NotifyRule
from crawler.scheduling.runners import RunContext, RunOutcome
from crawler.scheduling.tasks import CrawlTasks, TaskSpec
from crawler.scheduling.worker import Worker
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyRuleRepo
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import SECRET, webhook_receiver


async def broken(ctx: RunContext, spec: TaskSpec) -> RunOutcome:
    raise RuntimeError("synthetic crawl failure")


async def gone(ctx: RunContext, spec: TaskSpec) -> RunOutcome:
    return RunOutcome(None, "not_found")


async def fine(ctx: RunContext, spec: TaskSpec) -> RunOutcome:
    return RunOutcome(None, "ok")


async def test_worker_failures_become_alerts_and_notifications(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    settings = config.load(data_dir=tmp_path, http=LOOPBACK_HTTP)
    tasks = CrawlTasks(store, max_attempts=1)
    for name, method in (("brokenchan", "broken"), ("gonechan", "gone"), ("finechan", "fine")):
        target = f"https://t.me/{name}"
        payload = {"target": target, "name": name, "method": method, "due": 1_800_000_000}
        assert await tasks.queue.enqueue(f"{target}/1800000000", payload)
    async with webhook_receiver() as hook:
        rule = NotifyRule(name="ops", sink="webhook", target=hook.url, secret_env="HOOK", kinds=["crawl_failure"])
        await NotifyRuleRepo(store).add(rule.to_doc())
        ctx = RunContext(settings, store, ingest, consumer="w1")
        worker = Worker(ctx, tasks=tasks, runners={"broken": broken, "gone": gone, "fine": fine}, poll_seconds=0.05)
        report = await worker.run(asyncio.Event(), until_idle=True)
        assert report.nacked == 1 and report.acked == 2
        dispatcher = Dispatcher(store, settings, env={"HOOK": SECRET})
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()

    alerts = {a["_id"]: a for a in await AlertRepo(store).list()}
    assert len(alerts) == 2  # the healthy target raised nothing
    (crawl_key,) = [k for k in alerts if k.startswith("crawl-failure/https://t.me/brokenchan/")]
    crawl = alerts[crawl_key]
    assert crawl["kind"] == "crawl_failure" and crawl["channels"] == ["brokenchan"]
    assert crawl["details"]["status"] == "dead" and "synthetic crawl failure" in crawl["details"]["reason"]
    target = alerts["target-failure/https://t.me/gonechan/not_found"]
    assert target["kind"] == "target_failure" and target["channels"] == ["gonechan"]

    (got,) = hook.received  # the rule asked for crawl failures only
    (facts,) = got.json["alerts"]
    assert facts["kind"] == "crawl_failure" and facts["severity"] == "low" and facts["channels"] == ["brokenchan"]
