"""``kill -9`` in the middle of a backfill, then a rerun: no missing and no duplicate message.

The backfill runs in a real subprocess against a deterministic fake world slowed down per request,
so the kills land mid-walk; the assertions read the shared embedded store afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from foundation.models import Checkpoint

TOTAL = 3000
REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pymongo import AsyncMongoClient
    from crawler.ingest import Ingest
    from storage.client import Store
    from telegram_watch.accounts import Account
    from telegram_watch.backfill import Backfill
    from telegram_watch.client import fake_client_factory
    from telegram_watch.fake.world import FakeTelegram
    from telegram_watch.pool import AccountPool

    async def main(uri, name, total, latency):
        world = FakeTelegram(seed="kill-test", latency=latency)
        account = world.add_account("runner")
        channel = world.add_channel("Long", username="long_history")
        world.fill_history(channel, total)
        client = AsyncMongoClient(uri, tz_aware=True)
        store = Store(client=client, db=client[name], uri=uri, kind="embedded")
        pool = AccountPool([Account("runner", session=world.session_string(account))],
                           fake_client_factory(world), pacing=0)
        await Backfill(pool, Ingest(store), batch_size=100, page_size=50).run("long_history")
        await pool.close()
        await client.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    """
)


def start(script: Path, uri: str, name: str, latency: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(script), uri, name, str(TOTAL), str(latency)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_for_progress(db: AsyncDatabase[dict[str, Any]], proc: subprocess.Popen[bytes], beyond: int) -> int:
    """Poll until the run has committed more than ``beyond`` messages (bounded by the process itself)."""
    while proc.poll() is None:
        stored = await db["messages"].count_documents({})
        if stored > beyond:
            return stored
        await asyncio.sleep(0.05)
    raise AssertionError(f"backfill ended before the kill: {proc.stderr.read().decode() if proc.stderr else ''}")


@pytest.mark.slow
async def test_kill_dash_nine_mid_walk_then_rerun(
    db: AsyncDatabase[dict[str, Any]], embedded_uri: str, tmp_path: Path
) -> None:
    script = tmp_path / "run_backfill.py"
    script.write_text(SCRIPT)
    seen = 0
    for _ in range(2):  # two kills at different depths
        proc = start(script, embedded_uri, db.name, latency=0.02)
        try:
            seen = await asyncio.wait_for(wait_for_progress(db, proc, seen + 200), 240)  # hang guard only
        finally:  # killed mid-walk, or (the wait failed) killed anyway: never left behind
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    cp_doc = await db["checkpoints"].find_one({})
    assert cp_doc is not None
    cp = Checkpoint.from_doc(cp_doc)
    assert cp.walk_low is not None and not cp.complete  # really killed mid-walk
    final = start(script, embedded_uri, db.name, latency=0.0)
    try:
        _, err = final.communicate(timeout=240)
    finally:
        if final.poll() is None:
            final.kill()
            final.wait()
    assert final.returncode == 0, err.decode()
    ids = [d["msg_id"] async for d in db["messages"].find({}, {"msg_id": 1})]
    assert sorted(ids) == list(range(1, TOTAL + 1))  # none missing, none twice
    assert await db["message_versions"].count_documents({}) == 0  # replays created no versions
    done = Checkpoint.from_doc(await db["checkpoints"].find_one({}) or {})
    assert (done.oldest_id, done.newest_id, done.complete, done.walk_top) == (1, TOTAL, True, None)
