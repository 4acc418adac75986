"""End-to-end crawl speed: local sample site → Scrapy spider → ingest → embedded store.

Goal (issue 3): >= 50 pages/s (>= 1,000 messages/s) on this 2-core machine.
Run: ``python bench/crawl.py [--posts 2000]``. AutoThrottle is off here (it exists to be polite
to t.me, and would measure our own delay rather than our speed); everything else is as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config
import spiders.runner  # noqa: F401  (installs the asyncio reactor before Twisted's default)
from bench._table import Row, print_table
from crawler.crawl_web import crawl_channel
from crawler.ingest import Ingest
from spiders.sample_site import SampleSite
from spiders.sample_site.content import build_world
from spiders.tme_channel import CrawlMode
from storage.client import open_store


async def run(posts: int) -> list[list[str]]:
    """One row per crawl: label, pages, messages, seconds, pages/s, messages/s, errors."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-crawl-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        world = build_world(big_size=posts)
        async with open_store(settings) as store, SampleSite.serve(world) as site:
            ingest = Ingest(store)
            for label in ("first crawl (all new)", "re-crawl --full (unchanged)"):
                started = time.perf_counter()
                summary = await crawl_channel(
                    settings,
                    ingest,
                    "big_feed",
                    mode=CrawlMode(full=True),
                    base_url=site.base_url,
                    scrapy_overrides={"AUTOTHROTTLE_ENABLED": False},
                )
                elapsed = time.perf_counter() - started
                if label.startswith("re-crawl"):
                    await store["checkpoints"].delete_many({})  # not used: the first run's is complete
                rows.append(
                    [
                        label,
                        str(summary.pages),
                        str(summary.messages),
                        f"{elapsed:.2f}",
                        f"{summary.pages / elapsed:,.1f}",
                        f"{summary.messages / elapsed:,.0f}",
                        str(len(summary.errors)),
                    ]
                )
                if label.startswith("first"):
                    await store["checkpoints"].delete_many({})  # make the second run walk everything again
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=2000, help="posts in the benchmark channel")
    args = ap.parse_args()
    runs = asyncio.run(run(args.posts))
    rows = []
    for label, pages, messages, _seconds, pps, mps, errors in runs:
        goal_p, goal_m = (">= 50", ">= 1,000") if label.startswith("first") else ("", "")
        rows.append(
            Row(
                f"{label}: {pages} pages, {messages} msgs, {errors} errors",
                "pages/s",
                float(pps.replace(",", "")),
                None,
                goal_p,
            )
        )
        rows.append(Row(f"{label}", "messages/s", float(mps.replace(",", "")), None, goal_m))
    print_table(rows, f"sample site big_feed ({args.posts} posts) -> embedded store, end to end")
    first = float(runs[0][4].replace(",", ""))
    print(f"goal >= 50 pages/s: {'met' if first >= 50 else 'NOT met'} ({first:.1f} pages/s on the first crawl)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
