"""Hashing throughput: images/s (decode + PDQ) through HashPool with 1 worker vs 2 workers.

Synthetic JPEGs (shapes, gradients, noise, text) of phone-photo-like sizes go through the same
``HashPool.hash_media`` the crawler uses, digests included. Goal (issue 5): ≥ 1.8× scaling on 2 cores.
The machine is shared, so each setting runs ``--repeat`` times alternately and the best run counts;
the load average is printed beside the table (a busy machine cannot show 2-core scaling).
Run: ``python bench/hashing.py [--images 400] [--size 1280x960] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from _table import Row, print_table

from crawler.hashing import synthetic as syn
from crawler.hashing.pool import HashPool


async def run(workers: int, images: list[bytes]) -> float:
    async with HashPool(workers=workers) as pool:
        await pool.warm_up()
        started = time.perf_counter()
        results = await asyncio.gather(*(pool.hash_media(data) for data in images))
        elapsed = time.perf_counter() - started
    assert all(r.pdq is not None and r.error is None for r in results)
    return len(images) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", default="1280x960")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    distinct = [syn.encode(syn.scene(i, (w, h)), "JPEG", quality=85) for i in range(min(40, args.images))]
    images = [distinct[i % len(distinct)] for i in range(args.images)]
    load_before = os.getloadavg()[0]
    ones, twos = [], []
    for _ in range(args.repeat):
        ones.append(asyncio.run(run(1, images)))
        twos.append(asyncio.run(run(2, images)))
    one, two = max(ones), max(twos)
    print_table(
        [
            Row("images/s, 2 workers vs 1 worker", "img/s", two, one, "≥ 1.8×"),
        ],
        f"decode + PDQ + digests, {args.images} JPEGs of {w}×{h} (baseline: the same pool on 1 core)",
    )
    load_after = os.getloadavg()[0]
    print(
        f"best of {args.repeat}; load average before {load_before:.2f}, after {load_after:.2f}; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
