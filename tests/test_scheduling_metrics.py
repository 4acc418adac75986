"""/metrics (monitor-only) after a real crawl; the progress helper on and off a terminal."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from config.targets import TargetsConfig
from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.progress import progress_bar
from crawler.scheduling import api as scheduling_api
from crawler.scheduling.daemon import Daemon
from crawler.scheduling.runners import RunContext
from crawler.scheduling.worker import Worker
from crawler.tokens import Role, TokenRepo, server_secret
from spiders.sample_site.server import SampleSite
from storage.client import Store
from tests.test_scheduling_support import many_channels, settings_for


def sample_value(body: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0.0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)"
    m = re.search(pattern, body)
    return float(m.group(1)) if m else 0.0


async def test_metrics_endpoint_exposes_crawl_counters(store: Store, ingest: Ingest, tmp_path: Path) -> None:
    async with SampleSite.serve(many_channels(1)) as site:
        settings = settings_for(site.base_url, tmp_path)
        cfg = TargetsConfig.model_validate({"targets": [{"name": "feed_00", "every": "1h", "jitter": "0s"}]})
        d = Daemon(store, lambda: cfg)
        await d.sync()
        await Worker(RunContext(settings, store, ingest, consumer="m1"), poll_seconds=0.1).run(
            asyncio.Event(), until_idle=True
        )
    monitor, _ = await TokenRepo(store, server_secret(settings)).create("prometheus", Role.MONITOR)
    investigator, _ = await TokenRepo(store, server_secret(settings)).create("someone", Role.INVESTIGATOR)
    app = build_app(store, settings, [scheduling_api.register])
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {investigator}"})).status == 403
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {monitor}"})
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.text()
    assert sample_value(body, "tgwatch_pages_fetched_total", method="web") >= 1
    assert sample_value(body, "tgwatch_messages_ingested_total", method="web", outcome="new") >= 1
    assert sample_value(body, "tgwatch_runs_total", method="web", status="ok") >= 1
    assert sample_value(body, "tgwatch_run_duration_seconds_count", method="web") >= 1
    assert sample_value(body, "tgwatch_queue_depth", queue="crawl_tasks", state="done") == 1
    assert sample_value(body, "tgwatch_queue_depth", queue="crawl_tasks", state="ready") == 0
    for family in ("tgwatch_errors", "tgwatch_flood_waits", "tgwatch_hash_matches"):
        assert re.search(rf"# TYPE {family}(_total)? counter", body)
    assert 'tgwatch_errors_total{kind="rate_limited"}' in body  # every known kind is exported, even at 0
    assert 'tgwatch_flood_waits_total{method="mtproto"}' in body
    assert 'tgwatch_hash_matches_total{signal="pdq"}' in body


def test_progress_is_silent_off_a_terminal() -> None:
    out = io.StringIO()  # not a TTY
    with progress_bar("crawling", total=3, stream=out) as bar:
        for name in ("a", "b", "c"):
            bar.advance(note=name)
    assert bar.completed == 3 and not bar.enabled
    assert out.getvalue() == ""


def test_progress_draws_when_enabled() -> None:
    out = io.StringIO()
    with progress_bar("crawling", total=2, stream=out, enabled=True) as bar:
        bar.advance(note="feed_00")
        bar.advance(note="feed_01")
    assert bar.enabled
    text = out.getvalue()
    assert "crawling" in text and "2/2" in text
