"""Soak: the scheduler daemon and its workers crawling the sample site for a long while.

Goal (issue 12): over 30 minutes, RSS and open file descriptors of every tgwatch process stay flat.
Goal (issue 17): the tree's RSS median after warm-up < 500 MB; the table also breaks RSS down by
process role (scheduler, worker children, hash pool forkserver and workers, resource trackers).
Run: ``python bench/soak.py [--minutes 30] [--targets 6] [--every 20s]``. It serves the offline
sample site, adds the targets, runs ``tgwatch run --workers 2`` against a fresh data dir (with the
takedown re-check job every minute over two reported messages), samples every process of the tree
every few seconds, then stops it with SIGTERM and checks nothing is left.

"Flat" is judged on medians, not on two single samples: a sample taken while a crawl holds its
sockets and a spider open differs from one taken between crawls by a few descriptors and megabytes
without anything leaking. The report compares the median of the first and of the last fifth of the
steady period (after warm-up) and gives the least-squares trend per hour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def role(proc: psutil.Process, root: psutil.Process) -> str:
    """What one process of the tree is, for the per-process RSS breakdown."""
    if proc.pid == root.pid:
        return "scheduler (tgwatch run)"
    cmd = " ".join(proc.cmdline())
    if "forkserver" in cmd:
        parent = proc.parent()
        forked = parent is not None and "forkserver" in " ".join(parent.cmdline())
        return "hash pool worker" if forked else "hash pool forkserver"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if " worker " in f"{cmd} ":
        return "crawl worker (child)"
    return "other"


def sample(root: psutil.Process, roles: list[dict[str, tuple[float, int]]] | None = None) -> tuple[float, int, int]:
    """Total RSS (MB), open fds and process count of the tgwatch tree (the embedded server, started
    through its supervisor, lives outside the tree and is not counted). With ``roles``, each
    sample appends {role: (MB summed over its processes, processes)}."""
    procs = [root, *root.children(recursive=True)]
    rss, fds = 0, 0
    per_role: dict[str, tuple[float, int]] = {}
    for p in procs:
        try:
            mem = p.memory_info().rss
            rss += mem
            fds += p.num_fds()
            if roles is not None:
                name = role(p, root)
                mb, n = per_role.get(name, (0.0, 0))
                per_role[name] = (mb + mem / 2**20, n + 1)
        except psutil.Error:
            continue
    if roles is not None:
        roles.append(per_role)
    return rss / 2**20, fds, len(procs)


async def soak(minutes: float, targets: int, every: str) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tgwatch-soak-") as tmp:
        data = Path(tmp) / "data"
        world = build_world(big_size=200)
        async with SampleSite.serve(world) as site:
            env = {
                **os.environ, "TGWATCH_TELEGRAM_WEB_BASE": site.base_url, "TGWATCH_MEDIA__HASH_WORKERS": "1",
                "TGWATCH_TAKEDOWNS__RECHECK_EVERY": "60", "TGWATCH_TAKEDOWNS__FRESH_INTERVAL": "60",
            }  # fmt: skip
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
            roles: list[dict[str, tuple[float, int]]] = []
            started = time.monotonic()
            warmup = min(60.0, minutes * 60 / 5)
            reported = False
            while time.monotonic() - started < minutes * 60:
                await asyncio.sleep(5)
                rss, fds, n = sample(root, roles if time.monotonic() - started >= warmup else None)
                samples.append((time.monotonic() - started, rss, fds, n))
                if not reported and time.monotonic() - started > warmup:
                    reported = await asyncio.to_thread(report_two_messages, data, env, world)
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
    fifth = max(3, len(steady) // 5)
    head, tail = steady[:fifth], steady[-fifth:]
    rss_start, rss_end = statistics.median(s[1] for s in head), statistics.median(s[1] for s in tail)
    fd_start, fd_end = statistics.median(s[2] for s in head), statistics.median(s[2] for s in tail)
    run_lines = [json.loads(ln) for ln in runs.stdout.splitlines() if ln.strip()]
    rechecks = [r for r in run_lines if r.get("kind") == "takedown_recheck"]
    return [
        Row("duration", "min", round(minutes, 1)),
        Row("pages served to the crawlers", "pages", pages),
        Row("runs recorded", "runs", len(run_lines)),
        Row("takedown re-check runs (2 items each)", "runs", len(rechecks)),
        Row("RSS, median of first fifth after warm-up", "MB", round(rss_start, 1)),
        Row("RSS, median of last fifth", "MB", round(rss_end, 1)),
        Row("RSS growth (medians)", "MB", round(rss_end - rss_start, 1), goal="flat (< 10% of start)"),
        Row("RSS trend", "MB/h", round(_slope(steady, 1), 2)),
        Row("peak RSS (tree)", "MB", round(max(s[1] for s in samples), 1)),
        Row("open fds, median of first fifth", "fds", fd_start),
        Row("open fds, median of last fifth", "fds", fd_end),
        Row("fd growth (medians)", "fds", fd_end - fd_start, goal="flat (<= 2% of start)"),
        Row("fd trend", "fds/h", round(_slope(steady, 2), 2)),
        Row("open fds min..max after warm-up", "fds", f"{min(s[2] for s in steady)}..{max(s[2] for s in steady)}"),
        Row("processes left after SIGTERM", "processes", len(leftovers), goal="0"),
        Row(
            "RSS median after warm-up (the goal of issue 17)",
            "MB",
            round(statistics.median(s[1] for s in steady), 1),
            goal="< 500",
        ),
        *(
            Row(
                f"  RSS, {name}: median (processes at most; share of samples alive)",
                "MB",
                f"{statistics.median(r.get(name, (0.0, 0))[0] for r in roles):.1f}"
                f" ({max(r.get(name, (0.0, 0))[1] for r in roles)}; {sum(name in r for r in roles) / len(roles):.0%})",
            )
            for name in sorted({n for r in roles for n in r})
        ),
    ]


def _slope(samples: list[tuple[float, float, int, int]], column: int) -> float:
    """Least-squares trend of one sampled column, per hour."""
    xs = [s[0] / 3600 for s in samples]
    ys = [float(s[column]) for s in samples]
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def report_two_messages(data: Path, env: dict[str, str], world: Any) -> bool:
    """A takedown request for the newest posts of two channels, marked sent: the re-check job then has
    work every minute. False (try again later) until both channels have been crawled."""
    refs = [f"{name}/{world.channel(name).messages[-1].id}" for name in ("daily_brief", "korea_now")]
    base = [sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-level", "WARNING", "takedown"]
    args = [a for ref in refs for a in ("--message", ref)]
    made = subprocess.run([*base, "create", *args, "--reason", "other"], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        return False
    request_id = made.stdout.split()[1].rstrip(":")
    subprocess.run([*base, "mark-sent", request_id, "--via", "soak"], env=env, capture_output=True, check=True)
    return True


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
