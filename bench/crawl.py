"""End-to-end crawl speed: local sample site → Scrapy spider → ingest → embedded store, and its limit.

Goal (issue 3): >= 50 pages/s (>= 1,000 messages/s) on this 2-core machine. The absolute figure
swings with the machine's load (26..74 pages/s were seen), so issue 17 states it as a ratio to the
limit measured in the same run, goal >= 0.5:

* fetch-only: the same page URLs, one after another as the channel walk requests them, through
  Scrapy with the same settings; the body is kept, nothing is parsed or stored;
* parse-only: those same bodies through the spider's parser (``parse_page``), no network;
* parse+store: parsed, then submitted page by page to the same ingest door, into a second, empty
  database of the same embedded server (then once more, unchanged, for the re-crawl's limit);
* limit = min(fetch-only, parse+store) pages/s: the rate if fetching the next page and storing
  this one overlapped perfectly (the spider does overlap them); ratio = crawl pages/s ÷ limit.

Each figure is the best of ``--rounds`` rounds (default 2) of crawl then limits, in fresh databases.
Run: ``python bench/crawl.py [--posts 2000] [--rounds 2]``. AutoThrottle is off here (it exists to be polite
to t.me, and would measure our own delay rather than our speed); everything else is as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scrapy

import config
import spiders.runner  # noqa: F401  (installs the asyncio reactor before Twisted's default)
from bench._table import Row, print_table
from crawler.crawl_web import crawl_channel
from crawler.ingest import Ingest
from spiders.parsing.channel import parse_page
from spiders.runner import run_spider
from spiders.sample_site import SampleSite
from spiders.sample_site.content import build_world
from spiders.settings import build_scrapy_settings
from spiders.tme_channel import CrawlMode
from storage.client import open_store

NO_THROTTLE = {"AUTOTHROTTLE_ENABLED": False}


@dataclass
class Figure:
    label: str
    pages: int
    messages: int
    seconds: float
    errors: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


class FetchOnlySpider(scrapy.Spider):
    """Requests ``urls`` one after another (the next once the previous answered), keeping bodies."""

    name = "fetch_only"

    def __init__(self, urls: list[str], bodies: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls
        self.bodies = bodies

    async def start(self) -> Any:
        yield scrapy.Request(self.urls[0], dont_filter=True, cb_kwargs={"index": 0})

    def parse(self, response: Any, **kwargs: Any) -> Iterator[Any]:
        index = int(kwargs["index"])
        self.bodies.append((response.url, response.text))
        if index + 1 < len(self.urls):
            yield scrapy.Request(self.urls[index + 1], dont_filter=True, cb_kwargs={"index": index + 1})


@dataclass
class Limits:
    fetch: Figure
    parse: Figure
    store: list[Figure] = field(default_factory=list)  # first (all new), then unchanged


async def crawl(settings: config.Settings, ingest: Ingest, store: Any, base_url: str) -> list[Figure]:
    figures = []
    for label in ("first crawl (all new)", "re-crawl --full (unchanged)"):
        started = time.perf_counter()
        summary = await crawl_channel(
            settings, ingest, "big_feed", mode=CrawlMode(full=True), base_url=base_url, scrapy_overrides=NO_THROTTLE
        )
        elapsed = time.perf_counter() - started
        figures.append(Figure(label, summary.pages, summary.messages, elapsed, len(summary.errors)))
        await store["checkpoints"].delete_many({})  # make the next run walk everything again
    return figures


async def limits(settings: config.Settings, urls: list[str], database: str) -> Limits:
    bodies: list[tuple[str, str]] = []
    # the crawl names the sample site's host through ``base_url``; this spider has no base, so the
    # operator's allow-list names it (the egress guard refuses a loopback host nobody named)
    hosts = sorted({urlsplit(u).hostname or "" for u in urls} - {""})
    http = settings.http.model_copy(update={"allow_private_hosts": [*settings.http.allow_private_hosts, *hosts]})
    scrapy_settings = build_scrapy_settings(settings.model_copy(update={"http": http}), overrides=NO_THROTTLE)
    started = time.perf_counter()
    await run_spider(FetchOnlySpider, scrapy_settings, urls=urls, bodies=bodies)
    fetch = Figure("fetch-only (same URLs, same Scrapy settings)", len(bodies), 0, time.perf_counter() - started)
    started = time.perf_counter()
    pages = [parse_page(html, url, username="big_feed") for url, html in bodies]
    messages = sum(len(p.messages) for p in pages)
    parse = Figure("parse-only (same bodies, no network)", len(pages), messages, time.perf_counter() - started)
    fetch.messages = messages
    out = Limits(fetch, parse)
    async with open_store(settings.model_copy(update={"database": database})) as other:
        door = Ingest(other)
        for label in ("parse+store, all new", "parse+store, unchanged"):
            started = time.perf_counter()
            sent_header = False
            for url, html in bodies:
                page = parse_page(html, url, username="big_feed")
                records: list[Any] = []
                if page.channel is not None and not sent_header:
                    records.append(page.channel)
                    sent_header = True
                records.extend(page.messages)
                await door.submit(records)
            out.store.append(Figure(label, len(bodies), messages, time.perf_counter() - started))
    return out


def best(a: Figure, b: Figure) -> Figure:
    return a if a.pages_per_s >= b.pages_per_s else b


async def run(posts: int, rounds: int) -> tuple[list[Figure], Limits]:
    """``rounds`` rounds of (crawl, limits), each into fresh databases; the best figure of each kind
    is kept, so a burst of load from elsewhere on the machine during one phase does not decide."""
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-crawl-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        world = build_world(big_size=posts)
        # the sample site's world (~140,000 objects for 2,000 posts) stands in for t.me's servers and
        # lives in this process only because the bench hosts the site: frozen out of the garbage
        # collector, so the crawler's full collections do not walk the fake server's data as well
        gc.collect()
        gc.freeze()
        figures: list[Figure] = []
        lim: Limits | None = None
        async with SampleSite.serve(world) as site:
            for r in range(rounds):
                async with open_store(settings.model_copy(update={"database": f"bench_crawl_{r}"})) as store:
                    got = await crawl(settings, Ingest(store), store, site.base_url)
                figures = [best(a, b) for a, b in zip(figures, got, strict=True)] if figures else got
                first = got[0].pages
                urls = [site.url(h.path_qs) for h in site.hits if h.path_qs.startswith("/s/big_feed")][:first]
                more = await limits(settings, urls, f"bench_crawl_limit_{r}")
                if lim is None:
                    lim = more
                else:
                    lim = Limits(
                        best(lim.fetch, more.fetch),
                        best(lim.parse, more.parse),
                        [best(a, b) for a, b in zip(lim.store, more.store, strict=True)],
                    )
        assert lim is not None
        return figures, lim


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=2000, help="posts in the benchmark channel")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of crawl + limits; the best of each is kept")
    args = ap.parse_args()
    figures, lim = asyncio.run(run(args.posts, args.rounds))
    rows = []
    for f in figures:
        goal_p, goal_m = (">= 50", ">= 1,000") if f.label.startswith("first") else ("", "")
        title = f"{f.label}: {f.pages} pages, {f.messages} msgs, {f.errors} errors"
        rows.append(Row(title, "pages/s", round(f.pages_per_s, 1), None, goal_p))
        rows.append(Row(f.label, "messages/s", round(f.messages_per_s), None, goal_m))
    for f in (lim.fetch, lim.parse, *lim.store):
        rows.append(Row(f"limit: {f.label}", "pages/s", round(f.pages_per_s, 1)))
    ratios = []
    for f, stored in zip(figures, lim.store, strict=True):
        bound = min(lim.fetch.pages_per_s, stored.pages_per_s)
        ratios.append(f.pages_per_s / bound)
        goal = ">= 0.5" if f.label.startswith("first") else ""
        rows.append(Row(f"{f.label} ÷ min(fetch-only, {stored.label})", "ratio", round(ratios[-1], 2), None, goal))
    title = f"sample site big_feed ({args.posts} posts) -> embedded store, end to end, and its limit"
    print_table(rows, f"{title}; best of {args.rounds} rounds")
    first = figures[0].pages_per_s
    print(f"goal >= 50 pages/s: {'met' if first >= 50 else 'NOT met'} ({first:.1f} pages/s on the first crawl)")
    print(f"goal >= 0.5 of the limit: {'met' if ratios[0] >= 0.5 else 'NOT met'} ({ratios[0]:.2f} on the first crawl)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
