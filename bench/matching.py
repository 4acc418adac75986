"""PDQ matching: tgwatch's PdqIndex vs numpy brute force vs faiss IndexBinaryMultiHash.

A list of N hashes (half uniform random, half in clusters of near-duplicates), Q queries (mostly
perturbed copies of listed hashes at 0–40 bits, some random), radius 31. Recall is measured against
brute force (the ground truth). Brute force runs on a subset of queries when N×Q is large; its
queries/s is then extrapolated and labelled so. faiss is configured as Meta's HMA does (16 hash
tables of 16 bits) with ``nflip = 1``, the setting at which it, too, is exact for radius 31.
Both indexes run on one thread, so the ratio compares algorithms, not core counts.

Goal (issue 5): 100 % recall and ≥ 2× faiss's queries/s.
Run: ``python bench/matching.py [--n 1000000] [--queries 10000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _table import Row, print_table

from crawler.hashing.index import PdqIndex, brute_force

RADIUS = 31


def make_data(n: int, n_queries: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_random = n // 2
    random_part = rng.integers(0, 2**64, (n_random, 4), dtype=np.uint64, endpoint=False)
    n_centres = max(1, (n - n_random) // 20)
    centres = rng.integers(0, 2**64, (n_centres, 4), dtype=np.uint64, endpoint=False)
    members = centres[rng.integers(0, n_centres, n - n_random)]
    members = _perturb(members, rng, 24)
    base = np.concatenate([random_part, members])
    n_near = n_queries * 9 // 10
    near = _perturb(base[rng.integers(0, n, n_near)], rng, 40)
    far = rng.integers(0, 2**64, (n_queries - n_near, 4), dtype=np.uint64, endpoint=False)
    return base, np.concatenate([near, far])


def _perturb(words: np.ndarray, rng: np.random.Generator, max_bits: int) -> np.ndarray:
    """Flip 0..max_bits random bits of each row (bit positions may repeat: ≤ max_bits flips)."""
    out = words.copy()
    counts = rng.integers(0, max_bits + 1, len(words))
    for k in range(max_bits):
        rows = np.flatnonzero(counts > k)
        bits = rng.integers(0, 256, len(rows))
        out[rows, bits // 64] ^= np.left_shift(np.uint64(1), (bits % 64).astype(np.uint64))
    return out


def pairs(q: np.ndarray, r: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(q.tolist(), r.tolist(), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--brute-queries", type=int, default=300, help="queries brute force runs (extrapolated)")
    args = ap.parse_args()

    base, queries = make_data(args.n, args.queries)
    print(f"list: {len(base):,} hashes; queries: {len(queries):,}; radius ≤ {RADIUS}", flush=True)

    t = time.perf_counter()
    index = PdqIndex(max_distance=RADIUS)
    index.add(np.arange(len(base)).tolist(), base)
    index.rebuild()
    build_ours = time.perf_counter() - t
    t = time.perf_counter()
    oq, orow, _ = index.query_arrays(queries, RADIUS)
    ours_s = time.perf_counter() - t
    ours = pairs(oq, orow)

    import faiss

    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    fidx = faiss.IndexBinaryMultiHash(256, 16, 16)
    fidx.nflip = 1
    fidx.add(np.ascontiguousarray(base).view(np.uint8))
    build_faiss = time.perf_counter() - t
    t = time.perf_counter()
    lims, _dist, labels = fidx.range_search(np.ascontiguousarray(queries).view(np.uint8), RADIUS + 1)
    faiss_s = time.perf_counter() - t
    fq = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
    theirs = pairs(fq, labels.astype(np.int64))

    n_brute = min(args.brute_queries, len(queries))
    t = time.perf_counter()
    bq, brow, _ = brute_force(base, queries[:n_brute], RADIUS)
    brute_s = time.perf_counter() - t
    truth_subset = pairs(bq, brow)
    full_truth = n_brute == len(queries)
    if full_truth:
        truth = truth_subset
        ours_recall = len(ours & truth) / max(1, len(truth))
        faiss_recall = len(theirs & truth) / max(1, len(truth))
        ours_extra = len(ours - truth)
    else:  # ground truth on the subset, and agreement of the two exact indexes on the rest
        ours_sub = {p for p in ours if p[0] < n_brute}
        theirs_sub = {p for p in theirs if p[0] < n_brute}
        ours_recall = len(ours_sub & truth_subset) / max(1, len(truth_subset))
        faiss_recall = len(theirs_sub & truth_subset) / max(1, len(truth_subset))
        ours_extra = len(ours_sub - truth_subset)
    brute_qps = n_brute / brute_s
    ours_qps, faiss_qps = len(queries) / ours_s, len(queries) / faiss_s

    label = "" if full_truth else f" (extrapolated from {n_brute} queries)"
    rows = [
        Row("queries/s vs faiss MultiHash (1 thread)", "q/s", ours_qps, faiss_qps, "≥ 2×"),
        Row(f"queries/s vs numpy brute force{label}", "q/s", ours_qps, brute_qps, ""),
        Row(
            "recall vs brute force" + ("" if full_truth else f" (first {n_brute} queries)"),
            "%",
            100 * ours_recall,
            100 * faiss_recall,
            "100 %",
        ),
        Row("false matches (beyond radius)", "pairs", ours_extra, None, "0"),
        Row("matches found (all queries)", "pairs", len(ours), len(theirs), "equal"),
        Row("build time", "s", build_ours, build_faiss, ""),
    ]
    print_table(rows, f"PDQ matching, N={len(base):,}, Q={len(queries):,}, radius {RADIUS} (baseline: faiss)")


if __name__ == "__main__":
    main()
