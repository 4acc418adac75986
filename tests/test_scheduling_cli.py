"""The scheduling commands end to end, as staff run them (child processes on the test store)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from spiders.sample_site.server import SampleSite
from storage.client import Store
from tests.test_scheduling_support import env_for, many_channels, tgwatch

pytestmark = pytest.mark.slow


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *tgwatch(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_targets_schedule_run_now_and_runs(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    async with SampleSite.serve(many_channels(2)) as site:
        env = env_for(embedded_uri, store.db.name, site.base_url, tmp_path)
        code, out, err = await cli(env, "targets", "add", "feed_00", "--every", "30m", "--jitter", "0s")
        assert code == 0, err
        assert out.strip() == "https://t.me/feed_00  web  every 30m"
        code, out, _ = await cli(env, "targets", "add", "https://t.me/s/feed_01", "--cron", "0 */6 * * *")
        assert out.strip() == "https://t.me/feed_01  web  cron 0 */6 * * * ±10m"
        code, _, err = await cli(env, "targets", "add", "feed_01", "--every", "1h", "--cron", "* * * * *")
        assert code != 0 and "not both" in err
        code, _, err = await cli(env, "targets", "add", "https://t.me/+AbCdEfGh1234", "--method", "web")
        assert code != 0 and "invite link" in err

        code, out, _ = await cli(env, "targets", "pause", "feed_01")
        assert out.strip() == "paused https://t.me/feed_01"
        code, out, _ = await cli(env, "schedule", "list", "--json")
        rows = {r["target"]: r for r in map(json.loads, out.splitlines())}
        assert rows["https://t.me/feed_01"]["paused"] is True and rows["https://t.me/feed_01"]["next_due"] is None
        assert rows["https://t.me/feed_00"]["schedule"] == "every 30m" and rows["https://t.me/feed_00"]["next_due"]
        assert rows["tgwatch:takedown-recheck"]["method"] == "takedown_recheck"  # the built-in job is listed

        code, out, err = await cli(env, "run-now", "feed_00")
        assert code == 0, err
        assert out.startswith("https://t.me/feed_00: ok, pages 1, new ")
        run_id = out.split("(run ")[1].rstrip(")\n")

        code, out, _ = await cli(env, "runs", "list", "--json")
        (run,) = [json.loads(line) for line in out.splitlines()]
        assert run["_id"] == run_id and run["status"] == "ok" and run["target"] == "https://t.me/feed_00"
        assert run["counts"]["new"] > 0 and run["finished_at"]
        code, out, _ = await cli(env, "runs", "show", run_id)
        shown = json.loads(out)
        assert shown["_id"] == run_id and shown["error_details"] == []

        code, out, _ = await cli(env, "targets", "remove", "feed_01")
        assert out.strip() == "removed https://t.me/feed_01"
        code, out, _ = await cli(env, "targets", "list", "--json")
        assert [json.loads(line)["target"] for line in out.splitlines()] == ["https://t.me/feed_00"]
