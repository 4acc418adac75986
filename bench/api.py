"""Search latency of the investigator API over many messages on the embedded store.

Loads ``--messages`` synthetic messages through the real ingest door (``Ingest.submit`` in batches
of 500), starts the real HTTP app on 127.0.0.1, then times common searches end to end (HTTP, auth,
query, audit write) and prints p50/p95 per filter. Goal: p95 < 300 ms at 200,000 messages.

    .venv/bin/python bench/api.py                 # 200,000 messages
    .venv/bin/python bench/api.py --messages 20000 --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import config
from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import ChannelRef, Deletion, MediaKind, MediaRef, Message, Source
from storage import schema
from storage.client import Store
from storage.embedded import EmbeddedStore

BATCH = 500
CHANNELS = 50
START = datetime(2024, 1, 1, tzinfo=UTC)
WORDS = [
    "news",
    "update",
    "market",
    "소식",
    "안녕하세요",
    "오늘",
    "photo",
    "video",
    "link",
    "weather",
    "sport",
    "정부",
    "channel",
    "report",
]
GOAL_P95_MS = 300.0


def digest(i: int) -> str:
    return hashlib.sha256(f"media-{i}".encode()).hexdigest()


def make_messages(n: int, rng: random.Random) -> list[Message]:
    out = []
    per_channel: dict[int, int] = {}
    for i in range(n):
        ch = rng.randrange(CHANNELS)
        per_channel[ch] = per_channel.get(ch, 0) + 1
        words = rng.choices(WORDS, k=rng.randint(4, 14))
        if i % 1000 == 0:
            words.append("needle")
        media = []
        if rng.random() < 0.3:
            media = [MediaRef(kind=MediaKind.PHOTO, sha256=digest(rng.randrange(max(n // 10, 1))))]
        out.append(
            Message(
                ref=ChannelRef(username=f"bench_ch{ch:02d}"),
                msg_id=per_channel[ch],
                source=Source.WEB,
                date=START + timedelta(seconds=i * 150),
                text=" ".join(words),
                edited=rng.random() < 0.05,
                media=media,
            )
        )
    return out


async def load(store: Store, n: int) -> float:
    rng = random.Random(7)
    ingest = Ingest(store)
    messages = make_messages(n, rng)
    began = time.perf_counter()
    for start in range(0, n, BATCH):
        await ingest.submit(messages[start : start + BATCH])
    deletions = [
        Deletion(
            ref=ChannelRef(username=f"bench_ch{ch:02d}"), msg_ids=list(range(1, 20)), source=Source.WEB, seen_at=START
        )
        for ch in range(0, CHANNELS, 5)
    ]
    await ingest.submit(deletions)
    return time.perf_counter() - began


def scenarios(n: int) -> dict[str, list[dict[str, str]]]:
    last = START + timedelta(seconds=n * 150)
    week = [
        {"since": (last - timedelta(days=7 + d)).isoformat(), "until": (last - timedelta(days=d)).isoformat()}
        for d in range(0, 30, 3)
    ]
    return {
        "newest (no filter)": [{}],
        "channel": [{"channel": f"bench_ch{c:02d}"} for c in range(10)],
        "text, common word": [{"q": w} for w in ("market", "소식", "weather", "정부")],
        "text, rare word": [{"q": "needle"}],
        "channel + text": [{"channel": f"bench_ch{c:02d}", "q": "photo"} for c in range(10)],
        "media sha256": [{"sha256": digest(i)} for i in range(10)],
        "has media": [{"has_media": "true"}],
        "edited": [{"edited": "true"}],
        "deleted": [{"deleted": "true"}],
        "date range, last weeks": week,
        "page 5 of newest": [{"__page": "5"}],
    }


async def timed_search(session: aiohttp.ClientSession, base: str, params: dict[str, str]) -> float:
    """Milliseconds for one page; with ``__page`` N the earlier pages are walked first, untimed."""
    pages = int(params.pop("__page", "1"))
    query: dict[str, str] = {**params, "limit": "50"}
    for _ in range(pages - 1):
        async with session.get(f"{base}/api/v1/messages", params=query) as resp:
            body: Any = await resp.json()
        query["cursor"] = body["next_cursor"]
    began = time.perf_counter()
    async with session.get(f"{base}/api/v1/messages", params=query) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {body}")
    return (time.perf_counter() - began) * 1000


async def run(n: int, repeat: int, data_dir: Path) -> int:
    embedded = EmbeddedStore(data_dir)
    uri = embedded.acquire()
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client["bench_api"]
        await client.drop_database("bench_api")
        await schema.apply(db)
        store = Store(client=client, db=db, uri=uri, kind="embedded")
        seconds = await load(store, n)
        print(f"loaded {n:,} messages through Ingest.submit in {seconds:.1f} s ({n / seconds:,.0f}/s)")
        settings = config.load(data_dir=data_dir)
        tok, _ = await TokenRepo(store, server_secret(settings)).create("bench", Role.INVESTIGATOR)
        runner = web.AppRunner(build_app(store, settings, ALL_MODULES), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        worst = 0.0
        rows = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tok}"}) as session:
            for name, variants in scenarios(n).items():
                await timed_search(session, base, dict(variants[0]))  # warm-up
                samples = [await timed_search(session, base, dict(variants[i % len(variants)])) for i in range(repeat)]
                p50 = statistics.median(samples)
                p95 = statistics.quantiles(samples, n=20)[18] if len(samples) >= 2 else samples[0]
                worst = max(worst, p95)
                rows.append((name, p50, p95, "ok" if p95 < GOAL_P95_MS else "SLOW"))
        await runner.cleanup()
        print(f"\nsearch latency over {n:,} messages, {repeat} requests per filter (HTTP end to end, limit=50)")
        print(f"{'filter':<24} {'p50 ms':>9} {'p95 ms':>9}  goal p95<{GOAL_P95_MS:.0f}")
        for name, p50, p95, verdict in rows:
            print(f"{name:<24} {p50:>9.1f} {p95:>9.1f}  {verdict}")
        return 0 if worst < GOAL_P95_MS else 1
    finally:
        await client.drop_database("bench_api")
        await client.close()
        embedded.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=None, help="embedded store directory (default: a temp dir)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tgwatch-bench-api-"))
    raise SystemExit(asyncio.run(run(args.messages, args.repeat, data_dir)))


if __name__ == "__main__":
    main()
