"""IdleHashPool: the pool's worker processes exist only while there is media to hash (issue 17)."""

from __future__ import annotations

import asyncio
import os

import psutil

from crawler.hashing import synthetic as syn
from crawler.hashing.idle import IdleHashPool
from crawler.hashing.pool import HashPool, hash_media_sync


def pool_workers() -> list[psutil.Process]:
    """This process's hash pool workers: children of the forkserver it started."""
    me = psutil.Process(os.getpid())
    servers = [p for p in me.children() if "forkserver" in " ".join(p.cmdline())]
    return [w for s in servers for w in s.children()]


async def wait_until(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_idle_pool_stops_its_workers_and_starts_again_with_the_same_hashes() -> None:
    image = syn.encode(syn.scene(3, (200, 150)), "JPEG", quality=90)
    async with IdleHashPool(lambda: HashPool(workers=1), idle_seconds=0.3) as pool:
        assert not pool.running and pool_workers() == []  # nothing started before the first file
        first = await pool.hash_media(image)
        assert pool.running and pool.started == 1
        workers = pool_workers()
        assert len(workers) == 1
        await wait_until(lambda: not pool.running and not workers[0].is_running())
        again = await pool.hash_media(image)
        assert pool.started == 2 and pool.running
        assert pool_workers() and pool_workers()[0].pid != workers[0].pid
    assert not pool.running
    assert first == again == hash_media_sync(image)
    assert first.pdq is not None and first.kind == "image"


async def test_a_busy_pool_is_not_closed_under_its_work() -> None:
    images = [syn.encode(syn.scene(i, (160, 120)), "PNG") for i in range(6)]
    async with IdleHashPool(lambda: HashPool(workers=1, max_in_flight=1), idle_seconds=0.0) as pool:
        results = await asyncio.gather(*(pool.hash_media(d) for d in images))
        assert pool.started == 1  # queued files kept the one pool busy: never closed between them
    assert [r.pdq for r in results] == [hash_media_sync(d).pdq for d in images]
