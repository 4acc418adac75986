"""Ingest throughput: synthetic messages in batches through the door into the embedded store.

Goal (issue 2): >= 3,000 messages/s and peak RSS < 300 MB on a 2-core machine.
Run: ``python bench/ingest.py [--messages 100000] [--batch 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from _table import Row, print_table

import config
from crawler.ingest import Ingest
from foundation.models import ChannelRef, MediaKind, MediaRef, Message, RawCapture, Source
from storage.client import open_store
from storage.embedded import EmbeddedStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_batch(start: int, size: int, channels: list[ChannelRef]) -> list[Message]:
    out = []
    for i in range(start, start + size):
        text = f"synthetic message {i} 합성 메시지 #{i % 97} https://example.org/{i} @someone"
        html = f'<div class="tgme_widget_message_text">{text}</div>'
        out.append(
            Message(
                ref=channels[i % len(channels)],
                msg_id=i,
                source=Source.WEB,
                date=T0 + timedelta(seconds=i),
                text=text,
                html=html,
                links=[f"https://example.org/{i}"],
                mentions=["someone"],
                hashtags=[str(i % 97)],
                views=i % 5000,
                media=[MediaRef(kind=MediaKind.PHOTO, url=f"https://cdn.example/{i}.jpg")] if i % 4 == 0 else [],
                raw=RawCapture.of("html", html, url="https://t.me/s/bench", fetched_at=T0),
            )
        )
    return out


async def run(total: int, batch_size: int) -> dict[str, float]:
    proc = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        async with open_store(settings) as store:
            server = _server_process(Path(tmp))
            ingest = Ingest(store)
            channels = [ChannelRef(username=f"bench_channel_{c}") for c in range(10)]
            peak = proc.memory_info().rss
            server_peak = server.memory_info().rss if server else 0
            elapsed = 0.0  # time inside the door only; building the synthetic records is not ingest
            for start in range(1, total + 1, batch_size):
                batch = make_batch(start, min(batch_size, total + 1 - start), channels)
                t0 = time.perf_counter()
                result = await ingest.submit(batch)
                elapsed += time.perf_counter() - t0
                assert result.new == len(batch), result
                peak = max(peak, proc.memory_info().rss)
                if server:
                    server_peak = max(server_peak, server.memory_info().rss)
            stored = await store["messages"].estimated_document_count()
    return {
        "messages": total,
        "stored": stored,
        "seconds": elapsed,
        "rate": total / elapsed,
        "peak_rss_mb": peak / 2**20,
        "server_peak_rss_mb": server_peak / 2**20,
    }


def _server_process(data_dir: Path) -> psutil.Process | None:
    """The embedded nx-27017 server (it listens on a unix socket, so it is found by its state)."""
    pid = EmbeddedStore(data_dir).status().pid
    return psutil.Process(pid) if pid else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    fig = asyncio.run(run(args.messages, args.batch))
    print_table(
        [
            Row("messages ingested (all stored)", "messages", int(fig["stored"])),
            Row("elapsed", "s", round(fig["seconds"], 1)),
            Row("throughput", "messages/s", round(fig["rate"]), goal=">= 3,000"),
            Row("peak RSS, tgwatch process", "MB", round(fig["peak_rss_mb"], 1), goal="< 300"),
            Row("peak RSS, embedded server", "MB", round(fig["server_peak_rss_mb"], 1)),
        ],
        f"ingest door: {args.messages:,} synthetic messages in batches of {args.batch} into the embedded store",
    )


if __name__ == "__main__":
    main()
