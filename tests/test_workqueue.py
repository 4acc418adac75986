"""The leased work queue on the real store: exclusivity, expiry, retries, dead-letter, idempotency."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.client import Store
from storage.workqueue import DEAD, DONE, READY, LeaseLost, UnknownJob, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(store: Store, clock: Clock) -> WorkQueue:
    return WorkQueue(store, "detection_jobs", max_attempts=3, clock=clock)


async def test_enqueue_is_idempotent_and_priority_orders_claims(queue: WorkQueue) -> None:
    assert await queue.enqueue("a", {"n": 1}, priority=0)
    assert await queue.enqueue("b", {"n": 2}, priority=10)
    assert not await queue.enqueue("a", {"n": 99})
    leases = await queue.claim("c1", n=5)
    assert [lease.job_id for lease in leases] == ["b", "a"]
    assert leases[1].payload == {"n": 1} and leases[0].attempt == 1
    assert await queue.claim("c2") == []


async def test_ack_settles_once_and_double_ack_is_harmless(queue: WorkQueue) -> None:
    await queue.enqueue("j", {})
    (lease,) = await queue.claim("c1")
    assert await queue.ack(lease.job_id, lease.token, {"decision": "negative"})
    assert not await queue.ack(lease.job_id, lease.token, {"decision": "positive"})
    doc = await queue.get("j")
    assert doc is not None and doc["state"] == DONE and doc["result"] == {"decision": "negative"}
    with pytest.raises(UnknownJob):
        await queue.ack("nope", "token")


async def test_expired_lease_is_reclaimed_and_the_late_ack_refused(queue: WorkQueue, clock: Clock) -> None:
    await queue.enqueue("j", {})
    (first,) = await queue.claim("c1", lease_seconds=30)
    clock.now += 10
    await queue.extend("j", first.token, lease_seconds=60)
    clock.now += 35
    assert await queue.claim("c2") == [], "extended lease still valid"
    clock.now += 26
    (second,) = await queue.claim("c2", lease_seconds=30)
    assert second.job_id == "j" and second.attempt == 2 and second.token != first.token
    with pytest.raises(LeaseLost):
        await queue.ack("j", first.token)
    with pytest.raises(LeaseLost):
        await queue.extend("j", first.token)
    assert await queue.ack("j", second.token)


async def test_nack_backs_off_then_dead_letters_and_requeue(queue: WorkQueue, clock: Clock) -> None:
    await queue.enqueue("poison", {})
    for attempt in (1, 2):
        (lease,) = await queue.claim("c")
        assert lease.attempt == attempt
        assert await queue.nack("poison", lease.token, f"boom {attempt}") == READY
        assert await queue.claim("c") == [], "backing off"
        clock.now += 2**attempt + 0.1
    (lease,) = await queue.claim("c")
    assert await queue.nack("poison", lease.token, "boom 3") == DEAD
    clock.now += 10_000
    assert await queue.claim("c") == []
    dead = await queue.dead()
    assert [d["_id"] for d in dead] == ["poison"]
    assert dead[0]["errors"] == ["attempt 1: boom 1", "attempt 2: boom 2", "attempt 3: boom 3"]
    stats = await queue.stats()
    assert (stats[DEAD], stats[READY]) == (1, 0)
    assert await queue.requeue("poison")
    (lease,) = await queue.claim("c")
    assert lease.attempt == 1


async def test_a_job_that_keeps_killing_consumers_goes_dead(queue: WorkQueue, clock: Clock) -> None:
    await queue.enqueue("killer", {})
    for _ in range(3):
        assert len(await queue.claim("c", lease_seconds=5)) == 1
        clock.now += 6
    assert await queue.claim("c") == []
    doc = await queue.get("killer")
    assert doc is not None and doc["state"] == DEAD


async def test_stats(queue: WorkQueue, clock: Clock) -> None:
    for i in range(4):
        await queue.enqueue(f"j{i}", {})
    clock.now += 50
    (lease,) = await queue.claim("c")
    await queue.ack(lease.job_id, lease.token)
    await queue.claim("c")
    stats = await queue.stats()
    assert (stats[READY], stats["leased"], stats[DONE], stats[DEAD]) == (2, 1, 1, 0)
    assert stats["oldest_ready_age"] == 50.0


async def test_concurrent_consumers_never_share_a_job(store: Store) -> None:
    queue = WorkQueue(store, "detection_jobs")
    for i in range(60):
        await queue.enqueue(f"job{i}", {"i": i})
    seen: list[str] = []

    async def consumer(name: str) -> None:
        while leases := await queue.claim(name, n=3):
            for lease in leases:
                seen.append(lease.job_id)
                await queue.ack(lease.job_id, lease.token)

    await asyncio.gather(*(consumer(f"c{i}") for i in range(4)))
    assert sorted(seen) == sorted(f"job{i}" for i in range(60))


CONSUMER = textwrap.dedent(
    """
    import asyncio, sys
    from pymongo import AsyncMongoClient
    from storage.client import Store
    from storage.workqueue import WorkQueue

    async def main(uri, dbname, name):
        client = AsyncMongoClient(uri)
        store = Store(client=client, db=client[dbname], uri=uri, kind="embedded")
        queue = WorkQueue(store, "detection_jobs")
        while leases := await queue.claim(name, n=2, lease_seconds=30):
            for lease in leases:
                print(lease.job_id, flush=True)
                await queue.ack(lease.job_id, lease.token)
        await client.close()

    asyncio.run(main(*sys.argv[1:4]))
    """
)


@pytest.mark.slow
async def test_four_consumer_processes_drain_once(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    queue = WorkQueue(store, "detection_jobs")
    for i in range(200):
        await queue.enqueue(f"job{i:03d}", {})
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), embedded_uri, store.db.name, f"p{i}"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    claimed = [job for out in outputs for job in out]
    assert len(claimed) == 200 and len(set(claimed)) == 200, "every job delivered exactly once"
    assert sum(1 for out in outputs if out) >= 2, "the work was shared"


async def test_prune_deletes_only_old_done_jobs(queue: WorkQueue, clock: Clock) -> None:
    for job in ("a", "b", "c"):
        await queue.enqueue(job, {"n": job})
    (first,) = await queue.claim("c1", n=1, lease_seconds=60)
    await queue.ack(first.job_id, first.token, {"ok": True})
    clock.now += 3600
    (second,) = await queue.claim("c1", n=1, lease_seconds=60)
    await queue.ack(second.job_id, second.token, {"ok": True})
    assert await queue.prune(older_than=1800) == 1  # only the job done an hour ago
    left = {d["_id"]: d["state"] for d in await queue._coll.find().to_list(None)}
    assert first.job_id not in left and left[second.job_id] == "done"
    assert sorted(left.values()) == ["done", "ready"]
    assert await queue.prune(older_than=1800) == 0
