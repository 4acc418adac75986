"""Timings for the Merkle log: batched appends/s into :class:`InMemoryNodeStore` and proof latency.

Called by ``bench/ledger.py`` (issue 7 goal: ≥ 2,000 appends/s, an inclusion proof in < 50 ms at
1,000,000 entries). Leaf hashing of a small payload is included in the append time, as the ledger
pays it; MongoDB round trips are not (the DB-backed store adds those).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from crawler.evidence.merkle import InMemoryNodeStore, MerkleLog, leaf_hash, verify_consistency, verify_inclusion


@dataclass(frozen=True)
class TreeBench:
    leaves: int
    batch: int
    appends_per_s: float
    inclusion_ms_mean: float
    inclusion_ms_p99: float
    inclusion_ms_max: float
    consistency_ms_mean: float
    root_ms_mean: float

    def table(self) -> str:
        rows = [
            ("leaves", f"{self.leaves:,}"),
            ("batch", f"{self.batch:,}"),
            ("appends/s", f"{self.appends_per_s:,.0f}"),
            ("inclusion proof mean (ms)", f"{self.inclusion_ms_mean:.3f}"),
            ("inclusion proof p99 (ms)", f"{self.inclusion_ms_p99:.3f}"),
            ("inclusion proof max (ms)", f"{self.inclusion_ms_max:.3f}"),
            ("consistency proof mean (ms)", f"{self.consistency_ms_mean:.3f}"),
            ("root mean (ms)", f"{self.root_ms_mean:.3f}"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:>12}" for k, v in rows)


def bench_tree(leaves: int = 1_000_000, batch: int = 1_000, samples: int = 1_000, seed: int = 7) -> TreeBench:
    """Build a ``leaves``-entry log in batches, then time random proofs (each one checked)."""
    log = MerkleLog(InMemoryNodeStore())
    started = time.perf_counter()
    for start in range(0, leaves, batch):
        stop = min(start + batch, leaves)
        log.extend(leaf_hash(b'{"kind":"capture","seq":%d}' % i) for i in range(start, stop))
    appends_per_s = leaves / (time.perf_counter() - started)

    rng = random.Random(seed)
    size = log.size
    inclusion, consistency, roots = [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        path = log.inclusion_proof(index, size)
        inclusion.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        root = log.root(size)
        roots.append(time.perf_counter() - t0)
        leaf = leaf_hash(b'{"kind":"capture","seq":%d}' % index)
        if not verify_inclusion(leaf, index, size, path, root):
            raise AssertionError(f"inclusion proof for {index} failed to verify")
        first = rng.randrange(1, size + 1)
        t0 = time.perf_counter()
        proof = log.consistency_proof(first, size)
        consistency.append(time.perf_counter() - t0)
        if not verify_consistency(first, size, proof, log.root(first), root):
            raise AssertionError(f"consistency proof {first}->{size} failed to verify")
    return TreeBench(
        leaves=leaves,
        batch=batch,
        appends_per_s=appends_per_s,
        inclusion_ms_mean=statistics.fmean(inclusion) * 1e3,
        inclusion_ms_p99=sorted(inclusion)[int(0.99 * (len(inclusion) - 1))] * 1e3,
        inclusion_ms_max=max(inclusion) * 1e3,
        consistency_ms_mean=statistics.fmean(consistency) * 1e3,
        root_ms_mean=statistics.fmean(roots) * 1e3,
    )
