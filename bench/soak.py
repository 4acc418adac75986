"""Soak: the scheduler daemon and its workers crawling the sample site for a long while.

Goal (issue 12): over 30 minutes, RSS and open file descriptors of every tgwatch process stay flat.
Run: ``python bench/soak.py [--minutes 30] [--targets 6] [--every 20s]``. It serves the offline
sample site, adds the targets, runs ``tgwatch run --workers 2`` against a fresh data dir, samples
every process of the tree every few seconds, then stops it with SIGTERM and checks nothing is left.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _table import Row, print_table

from spiders.sample_site import SampleSite
from spiders.sample_site.content import build_world

TARGETS = ("daily_brief", "korea_now", "media_lab", "big_feed", "quiet_room", "no_such_channel")


def tgwatch(data: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-level", "WARNING", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sample(root: psutil.Process) -> tuple[float, int, int]:
    """Total RSS (MB), open fds and process count of the tgwatch tree (the embedded server included
    through the supervisor, which lives outside the tree, is sampled separately)."""
    procs = [root, *root.children(recursive=True)]
    rss, fds = 0, 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
        except psutil.Error:
            continue
    return rss / 2**20, fds, len(procs)


async def soak(minutes: float, targets: int, every: str) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tgwatch-soak-") as tmp:
        data = Path(tmp) / "data"
        async with SampleSite.serve(build_world(big_size=200)) as site:
            env = {**os.environ, "TGWATCH_TELEGRAM_WEB_BASE": site.base_url, "TGWATCH_MEDIA__HASH_WORKERS": "1"}
            for name in TARGETS[:targets]:
                add = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "crawler", "--data-dir", str(data), "targets", "add", name,
                     "--method", "web", "--every", every],
                    env=env, capture_output=True, check=True,
                )  # fmt: skip
                del add
            daemon = tgwatch(data, env, "run", "--workers", "2", "--sync", "10")
            root = psutil.Process(daemon.pid)
            samples: list[tuple[float, float, int, int]] = []
            started = time.monotonic()
            warmup = min(60.0, minutes * 60 / 5)
            while time.monotonic() - started < minutes * 60:
                await asyncio.sleep(5)
                rss, fds, n = sample(root)
                samples.append((time.monotonic() - started, rss, fds, n))
            daemon.send_signal(signal.SIGTERM)
            await asyncio.to_thread(daemon.wait, 120)
            await asyncio.sleep(2)
            leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(data) in " ".join(p.info["cmdline"] or [])]
            runs = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "crawler", "--data-dir", str(data), "runs", "list", "--json",
                 "--limit", "10000"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            pages = sum(1 for _ in site.hits)
    steady = [s for s in samples if s[0] >= warmup] or samples
    first, last = steady[0], steady[-1]
    rss_growth = last[1] - first[1]
    fd_growth = last[2] - first[2]
    return [
        Row("duration", "min", round(minutes, 1)),
        Row("pages served to the crawlers", "pages", pages),
        Row("runs recorded", "runs", len([ln for ln in runs.stdout.splitlines() if ln.strip()])),
        Row("RSS after warm-up (tree)", "MB", round(first[1], 1)),
        Row("RSS at the end (tree)", "MB", round(last[1], 1)),
        Row("RSS growth after warm-up", "MB", round(rss_growth, 1), goal="flat (< 10% of start)"),
        Row("peak RSS (tree)", "MB", round(max(s[1] for s in samples), 1)),
        Row("open fds after warm-up", "fds", first[2]),
        Row("open fds at the end", "fds", last[2]),
        Row("fd growth after warm-up", "fds", fd_growth, goal="flat (0)"),
        Row("processes left after SIGTERM", "processes", len(leftovers), goal="0"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--targets", type=int, default=6)
    parser.add_argument("--every", default="20s")
    args = parser.parse_args()
    rows = asyncio.run(soak(args.minutes, args.targets, args.every))
    print_table(rows, f"soak: tgwatch run --workers 2, {args.targets} targets every {args.every}, sample site")


if __name__ == "__main__":
    main()
