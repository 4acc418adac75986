"""Detection queue throughput: claim + ack jobs/s with 1 and 4 consumer processes on the embedded
store, counting duplicate deliveries.

Goal (issue 6): >= 300 jobs/s with 4 consumers and zero duplicates.
Run: ``python bench/queue.py [--jobs 3000] [--batch 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _table import Row, print_table
from pymongo import AsyncMongoClient

import config
from storage.client import Store, open_store
from storage.workqueue import WorkQueue


def consumer(uri: str, dbname: str, name: str, batch: int, out: multiprocessing.Queue, start: Any) -> None:  # type: ignore[type-arg]
    async def run() -> list[str]:
        client: AsyncMongoClient[dict] = AsyncMongoClient(uri)  # type: ignore[type-arg]
        await client.admin.command("ping")
        store = Store(client=client, db=client[dbname], uri=uri, kind="embedded")
        queue = WorkQueue(store, "detection_jobs")
        out.put("ready")
        start.wait()  # process start-up is not queue throughput
        seen = []
        while leases := await queue.claim(name, n=batch, lease_seconds=120):
            for lease in leases:
                seen.append(lease.job_id)
                await queue.ack(lease.job_id, lease.token, {"decision": "negative"})
        await client.close()
        return seen

    out.put(asyncio.run(run()))


async def fill(store: Store, dbname: str, jobs: int) -> None:
    coll = store.db["detection_jobs"]
    await coll.delete_many({})
    queue = WorkQueue(store, "detection_jobs")
    for i in range(jobs):
        await queue.enqueue(f"{i:064x}/default", {"sha256": f"{i:064x}", "detector": "default"}, priority=i % 3)


def run_round(uri: str, dbname: str, consumers: int, batch: int) -> tuple[float, int, int]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Event()
    procs = [ctx.Process(target=consumer, args=(uri, dbname, f"c{i}", batch, out, start)) for i in range(consumers)]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get() == "ready"
    t0 = time.perf_counter()
    start.set()
    delivered: Counter[str] = Counter()
    for _ in procs:
        delivered.update(out.get())
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    return elapsed, len(delivered), duplicates


async def main_async(jobs: int, batch: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-queue-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        async with open_store(settings) as store:
            results = {}
            for consumers in (1, 4):
                await fill(store, store.db.name, jobs)
                elapsed, done, dups = await asyncio.to_thread(run_round, store.uri, store.db.name, consumers, batch)
                results[consumers] = jobs / elapsed
                rows.append(
                    Row(
                        f"claim+ack, {consumers} consumer(s)",
                        "jobs/s",
                        round(jobs / elapsed),
                        goal=">= 300" if consumers == 4 else "",
                    )
                )
                rows.append(Row(f"jobs completed, {consumers} consumer(s)", "jobs", done, jobs))
                rows.append(Row(f"duplicate deliveries, {consumers} consumer(s)", "jobs", dups, goal="0"))
            rows.append(Row("4 consumers vs 1", "ratio", round(results[4] / results[1], 2)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    rows = asyncio.run(main_async(args.jobs, args.batch))
    print_table(rows, f"detection queue: {args.jobs:,} jobs, claims of {args.batch}, consumers as processes")


if __name__ == "__main__":
    main()
