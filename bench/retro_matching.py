"""Retroactive matching (issue 18): a new hash list against every PDQ already stored.

Two parts, timed separately because they are limited by different things:

1. pure matching: N stored PDQs (uniform random, plus planted copies of listed hashes at 0..31 bits,
   which must match, and at 32..40, which must not) against a new L-entry list, through the signal
   registry's PDQ index (``PdqSignal.build_index`` over the list, the stored PDQs as queries, as
   ``crawler.media.retro`` runs it). Recall against numpy brute force over every planted row and a
   random sample of the other stored rows (full brute force, N×L distances, is stated when run).
2. end to end on the embedded store at a smaller size: M media documents and sightings in the store,
   the list imported, ``RetroMatcher.retro_match`` run; its own phase timings (entries read, index
   build, media read, matching, alert raising). The media read rate is extrapolated to 1,000,000
   documents and labelled so.

Goal: part 1 < 10 s for 1,000,000 × 10,000 with 100 % recall.
Run: ``python bench/retro_matching.py [--n 1000000] [--list 10000] [--e2e-media 100000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from _table import Row, print_table

import config
from crawler.hashing.index import brute_force
from crawler.hashing.pdqbits import words_to_hex
from crawler.hashing.signals import get
from crawler.media.retro import RetroMatcher
from storage.client import open_store
from storage.repos.hashlists import HashListRepo

RADIUS = 31
PLANT_PER_DISTANCE = 50


def _flip(words: np.ndarray, rng: np.random.Generator, bits: int) -> np.ndarray:
    out = words.copy()
    for row in out:
        for b in rng.choice(256, bits, replace=False):
            row[b // 64] ^= np.uint64(1) << np.uint64(63 - int(b) % 64)
    return out


def make_data(n: int, n_list: int, seed: int = 18) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """(stored, listed, planted row → its distance to the listed row it copies)."""
    rng = np.random.default_rng(seed)
    listed = rng.integers(0, 2**64, (n_list, 4), dtype=np.uint64, endpoint=False)
    stored = rng.integers(0, 2**64, (n, 4), dtype=np.uint64, endpoint=False)
    planted: dict[int, int] = {}
    rows = rng.choice(n, 41 * PLANT_PER_DISTANCE, replace=False)
    for k, dist in enumerate(range(41)):
        at = rows[k * PLANT_PER_DISTANCE : (k + 1) * PLANT_PER_DISTANCE]
        stored[at] = _flip(listed[rng.integers(0, n_list, len(at))], rng, dist)
        planted.update((int(r), dist) for r in at)
    return stored, listed, planted


def pure(n: int, n_list: int, sample: int) -> list[Row]:
    stored, listed, planted = make_data(n, n_list)
    stored_hex, listed_hex = words_to_hex(stored), words_to_hex(listed)
    pdq = get("pdq")
    t = time.perf_counter()
    index = pdq.build_index(list(range(n_list)), listed_hex)
    build_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    hits = {(h.query, int(h.id)) for h in index.query(stored_hex)}  # type: ignore[call-overload]
    match_s, match_cpu = time.perf_counter() - t, time.process_time() - cpu

    rng = np.random.default_rng(1)
    rows = np.union1d(np.fromiter(planted, dtype=np.int64), rng.choice(n, min(sample, n), replace=False))
    t = time.perf_counter()
    bq, br, _ = brute_force(listed, stored[rows], RADIUS)
    brute_s = time.perf_counter() - t
    truth = {(int(rows[q]), int(r)) for q, r in zip(bq.tolist(), br.tolist(), strict=True)}
    ours = {p for p in hits if p[0] in set(rows.tolist())}
    recall = 100 * len(ours & truth) / max(1, len(truth))
    near = {r for r, d in planted.items() if d <= RADIUS}
    far = {r for r, d in planted.items() if d > RADIUS}
    found_rows = {q for q, _ in hits}
    brute_pairs_s = brute_s / len(rows) * n  # extrapolated: all stored rows
    rows_out = [
        Row("build index over the new list", "s", build_s),
        Row(f"match {n:,} stored PDQs (hex, through the registry)", "s", match_s, None, "< 10 s"),
        Row("  CPU time of that match (one thread; wall time above includes waiting for a core)", "s", match_cpu),
        Row("  stored PDQs matched per second", "PDQ/s", n / match_s),
        Row(f"brute force, {len(rows):,} stored rows × {n_list:,} (extrapolated to {n:,})", "s", brute_pairs_s),
        Row(f"recall vs brute force ({len(rows):,} rows: all planted + random)", "%", recall, None, "100 %"),
        Row("false matches (beyond radius, same rows)", "pairs", len(ours - truth), None, "0"),
        Row("planted at 0..31 bits found", "rows", f"{len(near & found_rows)}/{len(near)}", None, "all"),
        Row("planted at 32..40 bits found", "rows", f"{len(far & found_rows)}/{len(far)}", None, "0"),
        Row("matches (all stored rows)", "pairs", len(hits)),
    ]
    return rows_out


def _media_doc(sha256: str, pdq: str, first_seen: datetime) -> dict[str, object]:
    """A stored image as the media stage writes it."""
    return {
        "_id": sha256, "md5": sha256[:32], "size": 1000, "mime": "image/jpeg", "kind": "image", "media_kind": "photo",
        "width": 64, "height": 64, "pdq": pdq, "pdq_quality": 100, "pdq_usable": True, "frame_pdqs": [],
        "vpdq": None, "hash_error": None, "matches": [], "matched": False, "first_seen_at": first_seen,
    }  # fmt: skip


async def end_to_end(m: int, n_list: int) -> list[Row]:
    stored, listed, planted = make_data(m, n_list, seed=7)
    stored_hex, listed_hex = words_to_hex(stored), words_to_hex(listed)
    shas = [hashlib.sha256(f"bench-{i}".encode()).hexdigest() for i in range(m)]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="tgwatch-bench-") as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        async with open_store(settings) as store:
            t = time.perf_counter()
            for start in range(0, m, 5000):
                docs = [
                    _media_doc(shas[i], stored_hex[i], t0 + timedelta(seconds=i))
                    for i in range(start, min(m, start + 5000))
                ]
                await store["media"].insert_many(docs, ordered=False)
            sightings = [
                {"_id": f"{shas[i]}/bench/{i}", "sha256": shas[i], "channel": "bench", "msg_id": i,
                 "message": f"bench/{i}", "message_date": t0, "seen_at": t0 + timedelta(seconds=i), "source": "web"}
                for i in planted
            ]  # fmt: skip
            await store["sightings"].insert_many(sightings, ordered=False)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            await HashListRepo(store).add_entries("bench", "csv", [("pdq", h, None) for h in listed_hex])
            import_s = time.perf_counter() - t
            result = await RetroMatcher(store, settings).retro_match("bench", trigger="bench")
            expected = sum(1 for d in planted.values() if d <= RADIUS)
    ph = result.phases
    read_rate = m / ph.get("read", 1e-9)
    return [
        Row(f"store {m:,} media + {len(planted):,} sightings (setup)", "s", load_s),
        Row(f"import the {n_list:,}-entry list", "s", import_s),
        Row("retro_match total", "s", result.seconds),
        Row("  read list entries", "s", ph.get("entries", 0.0)),
        Row("  build indexes", "s", ph.get("index", 0.0)),
        Row(f"  read {m:,} stored media (projection, batches of 5,000)", "s", ph.get("read", 0.0)),
        Row("  match", "s", ph.get("match", 0.0)),
        Row(f"  raise alerts ({result.alerts_raised:,}, with sighting times)", "s", ph.get("alert", 0.0)),
        Row("media read rate from the embedded store", "docs/s", read_rate),
        Row("  1,000,000 media read (extrapolated)", "s", 1_000_000 / read_rate),
        Row("alerts raised vs planted within 31 bits", "alerts", f"{result.alerts_raised}/{expected}", None, "equal"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="stored PDQs (pure matching)")
    ap.add_argument("--list", type=int, default=10_000, help="entries of the new list")
    ap.add_argument("--sample", type=int, default=10_000, help="random stored rows brute force checks")
    ap.add_argument("--e2e-media", type=int, default=100_000, help="media in the embedded store (end to end)")
    args = ap.parse_args()
    print_table(
        pure(args.n, args.list, args.sample),
        f"pure matching: {args.n:,} stored PDQs vs a new {args.list:,}-entry list, radius {RADIUS}",
    )
    print_table(
        asyncio.run(end_to_end(args.e2e_media, args.list)),
        f"end to end, embedded store: {args.e2e_media:,} stored media vs a new {args.list:,}-entry list",
    )


if __name__ == "__main__":
    main()
