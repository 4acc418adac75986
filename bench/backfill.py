"""Backfill throughput: a fake Telegram channel → real TelegramClient → ingest → embedded store.

Goal (issue 4): >= 2,000 messages/s with RSS flat (< 300 MB) over the whole run. The fake world's
own history (held in this process) is included in the RSS figure; the samples show it stays flat.
Run: ``python bench/backfill.py [--messages 200000] [--batch 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psutil

import config
from crawler.ingest import Ingest
from storage.client import open_store
from telegram_watch.accounts import Account
from telegram_watch.backfill import Backfill
from telegram_watch.client import fake_client_factory
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool


def build_world(total: int) -> tuple[FakeTelegram, Account]:
    world = FakeTelegram(seed="bench", wire_roundtrip=False)
    user = world.add_account("bench")
    channel = world.add_channel("Bench", username="bench_channel")
    world.fill_history(channel, total, text=lambda i: f"bench message {i} #tag{i % 97} https://example.org/{i}")
    return world, Account("bench", session=world.session_string(user))


async def run(total: int, batch_size: int) -> dict[str, float]:
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    world, account = build_world(total)
    rss_world = proc.memory_info().rss
    samples: list[float] = []
    peak = rss_world
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            rss = proc.memory_info().rss
            peak = max(peak, rss)
            samples.append(rss)
            await asyncio.sleep(0.5)

    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        async with open_store(settings) as store:
            pool = AccountPool([account], fake_client_factory(world), pacing=0)
            sampler = asyncio.create_task(sample())
            started = time.perf_counter()
            result = await Backfill(pool, Ingest(store), batch_size=batch_size).run("bench_channel")
            elapsed = time.perf_counter() - started
            stop.set()
            await sampler
            await pool.close()
            stored = await store["messages"].estimated_document_count()
    quarter = [samples[min(len(samples) - 1, int(len(samples) * q))] / 2**20 for q in (0.25, 0.5, 0.75, 1.0)]
    return {
        "messages": total,
        "stored": stored,
        "new": result.stored.new,
        "complete": float(result.complete),
        "seconds": elapsed,
        "rate": total / elapsed,
        "rss_start_mb": rss_start / 2**20,
        "rss_after_world_mb": rss_world / 2**20,
        "peak_rss_mb": peak / 2**20,
        "rss_q": quarter,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    fig = asyncio.run(run(args.messages, args.batch))
    print(f"{'figure':<36}{'value':>14}  goal")
    print(f"{'messages in the fake channel':<36}{fig['messages']:>14,.0f}")
    print(f"{'messages stored':<36}{fig['stored']:>14,.0f}")
    print(f"{'walk complete':<36}{bool(fig['complete'])!s:>14}")
    print(f"{'elapsed (s)':<36}{fig['seconds']:>14.1f}")
    print(f"{'throughput (messages/s)':<36}{fig['rate']:>14,.0f}  >= 2,000")
    print(f"{'RSS at start (MB)':<36}{fig['rss_start_mb']:>14.1f}")
    print(f"{'RSS with fake world built (MB)':<36}{fig['rss_after_world_mb']:>14.1f}")
    print(f"{'peak RSS (MB)':<36}{fig['peak_rss_mb']:>14.1f}  < 300")
    rss_q = fig["rss_q"]
    assert isinstance(rss_q, list)
    print(f"{'RSS at 25/50/75/100% of run (MB)':<36}{' / '.join(f'{v:.0f}' for v in rss_q):>14}  flat")


if __name__ == "__main__":
    main()
