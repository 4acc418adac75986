"""``PdqIndex``: an exact in-memory PDQ near-match index (multi-index hashing, 16 slots × 16 bits).

Why it is exact: split the 256 bits into 16 chunks of 16 bits. If every chunk of two hashes
differed in more than ``r`` bits, the hashes would differ in at least ``16·(r+1)`` bits. So for a
search radius ``d`` with ``r = d // 16`` (``d ≤ 31`` → ``r = 1``), every true match agrees with
the query within ``r`` bits on at least one chunk: probing each chunk's table at every 16-bit value
within Hamming radius ``r`` of the query's chunk (1 + 16 = 17 probes per chunk for ``r = 1``) finds
every hash within ``d`` — the same pigeonhole argument as Norouzi et al.'s multi-index hashing.
Candidates are then verified with four 64-bit popcounts, so nothing beyond ``d`` is returned either.

Why it is fast: each chunk table is a CSR array (65,537 offsets + row numbers sorted by chunk value),
so a probe is two array reads, and a whole batch of queries is expanded and verified with numpy in
a few vectorised passes (no per-candidate Python). Random reads of candidate hashes are what limits
such an index (a cache miss per candidate), so each table also keeps, in table order, a copy of the
two 64-bit words of every hash that do not hold that table's chunk: candidates of one probe sit side
by side, and their partial distance over 128 bits (a lower bound of the full one) rejects nearly
every unrelated hash before a single random read. Memory: about 340 bytes per hash. A pair found
through several chunks is kept only for the *first* chunk that qualifies, which removes duplicates
without a global sort.

Small indexes, many queries (a new list matched against every stored media item, issue 18): the
probe side then dominates — 17 probes per chunk per query, nearly all into empty buckets of a
65,536-bucket table. So an index of at most ``EXPAND_MAX`` hashes also keeps *expanded* tables:
each hash is filed under every 16-bit value within ``r`` bits of its chunk, and a query makes one
probe per chunk. The candidates are the same pairs (chunk within ``r`` bits), so it stays exact;
the tables cost ``17 × 16 × 4`` bytes per hash, and the verified hashes sit in cache.

Incremental updates (lists change while the crawler runs) follow an LSM shape: new hashes land in a
small delta segment checked by brute force; removals are tombstones; the CSR tables are rebuilt
(dropping tombstones) once the delta passes a fraction of the main segment.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from crawler.hashing.pdqbits import Words, as_words, hamming

SLOTS = 16
SLOT_BITS = 16
_TABLE = 1 << SLOT_BITS
_DEFAULT_MAX_DISTANCE = 31
#: largest main segment that also gets expanded (one-probe-per-chunk) tables
EXPAND_MAX = 65_536

IntArray = npt.NDArray[np.int64]


def _other_words(slot: int) -> tuple[int, int]:
    """The two words a table keeps for prefiltering: neither holds the table's own chunk."""
    word = slot // 4
    return (word + 1) % 4, (word + 2) % 4


class Match(NamedTuple):
    """One hit: which query (position in the batch), which indexed id, at what Hamming distance."""

    query: int
    id: Hashable
    distance: int


def chunks(words: Words, slot: int) -> npt.NDArray[np.int64]:
    """The 16-bit value of chunk ``slot`` (0 = the first four hex characters) for every row."""
    shift = np.uint64((3 - slot % 4) * SLOT_BITS)
    return ((words[:, slot // 4] >> shift) & np.uint64(0xFFFF)).astype(np.int64)


def flip_masks(radius: int) -> npt.NDArray[np.int64]:
    """Every 16-bit XOR mask of popcount ≤ ``radius`` (0 first)."""
    masks = [0]
    for k in range(1, min(radius, SLOT_BITS) + 1):
        for bits in combinations(range(SLOT_BITS), k):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.int64)


def brute_force(index_words: Words, query_words: Words, max_distance: int) -> tuple[IntArray, IntArray, IntArray]:
    """Reference matcher: every (query, row, distance) with distance ≤ ``max_distance``, sorted.

    Quadratic, used by tests and the benchmark to prove the index exact.
    """
    qs: list[IntArray] = []
    rs: list[IntArray] = []
    ds: list[IntArray] = []
    step = max(1, 4_000_000 // max(1, len(index_words)))
    for start in range(0, len(query_words), step):
        block = query_words[start : start + step]
        dist = hamming(block[:, None, :], index_words[None, :, :])
        q, r = np.nonzero(dist <= max_distance)
        qs.append(q + start)
        rs.append(r)
        ds.append(dist[q, r])
    if not qs:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    q_all, r_all, d_all = (np.concatenate(x).astype(np.int64) for x in (qs, rs, ds))
    order = np.lexsort((r_all, q_all))
    return q_all[order], r_all[order], d_all[order]


class PdqIndex:
    """Exact PDQ near-match index; ids are any hashables (one id may carry several hashes)."""

    def __init__(self, *, max_distance: int = _DEFAULT_MAX_DISTANCE, batch_candidates: int = 2_000_000) -> None:
        if not 0 <= max_distance < 256:
            raise ValueError(f"max_distance must be in [0, 255], got {max_distance!r}")
        self.max_distance = max_distance
        self._batch_candidates = batch_candidates
        self._words: Words = np.empty((0, 4), dtype=np.uint64)
        self._alive: npt.NDArray[np.bool_] = np.empty(0, dtype=bool)
        self._ids: list[Hashable] = []
        self._rows_of: dict[Hashable, list[int]] = {}
        self._n = 0  # rows in use (main + delta, dead included)
        self._main_n = 0  # rows covered by the CSR tables
        self._dead = 0
        self._offsets: IntArray = np.zeros((SLOTS, _TABLE + 1), dtype=np.int64)
        self._postings: npt.NDArray[np.int32] = np.empty((SLOTS, 0), dtype=np.int32)
        self._slot_words: npt.NDArray[np.uint64] = np.empty((SLOTS, 0, 2), dtype=np.uint64)
        self._x_radius = -1  # chunk radius of the expanded tables (-1: none)
        self._x_offsets: IntArray = np.zeros((SLOTS, 0), dtype=np.int64)
        self._x_postings: npt.NDArray[np.int32] = np.empty((SLOTS, 0), dtype=np.int32)
        self._x_cols: list[npt.NDArray[np.uint64]] = []  # words 0 and 1 as columns (prefilter)

    # -- size ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Live hashes in the index."""
        return self._n - self._dead

    @property
    def pending(self) -> int:
        """Hashes added since the last rebuild (checked by brute force until the next one)."""
        return self._n - self._main_n

    def __contains__(self, item: object) -> bool:
        return item in self._rows_of

    # -- updates ------------------------------------------------------------------------------
    def add(self, ids: Sequence[Hashable], hashes: Sequence[str] | Words) -> None:
        """Add ``hashes[i]`` under ``ids[i]``; re-adding an id adds another hash for it."""
        words = as_words(hashes)
        if len(ids) != len(words):
            raise ValueError(f"{len(ids)} ids for {len(words)} hashes")
        if not len(words):
            return
        need = self._n + len(words)
        if need > len(self._words):
            cap = max(need, 2 * len(self._words), 1024)
            grown = np.empty((cap, 4), dtype=np.uint64)
            grown[: self._n] = self._words[: self._n]
            alive = np.zeros(cap, dtype=bool)
            alive[: self._n] = self._alive[: self._n]
            self._words, self._alive = grown, alive
        self._words[self._n : need] = words
        self._alive[self._n : need] = True
        for row, ident in enumerate(ids, start=self._n):
            self._ids.append(ident)
            self._rows_of.setdefault(ident, []).append(row)
        self._n = need
        if self._n - self._main_n > max(4096, self._main_n // 8):
            self.rebuild()

    def remove(self, ids: Iterable[Hashable]) -> int:
        """Drop every hash of these ids; returns how many hashes went. Unknown ids are ignored."""
        gone = 0
        for ident in ids:
            for row in self._rows_of.pop(ident, ()):
                self._alive[row] = False
                gone += 1
        self._dead += gone
        if self._dead > max(4096, self._n // 4):
            self.rebuild()
        return gone

    def rebuild(self) -> None:
        """Fold the delta and drop tombstones: rebuild all 16 CSR tables over the live rows."""
        live = np.flatnonzero(self._alive[: self._n])
        words = np.ascontiguousarray(self._words[live])
        ids = [self._ids[i] for i in live]
        self._words = words
        self._alive = np.ones(len(words), dtype=bool)
        self._ids = ids
        self._rows_of = {}
        for row, ident in enumerate(ids):
            self._rows_of.setdefault(ident, []).append(row)
        self._n = self._main_n = len(words)
        self._dead = 0
        postings = np.empty((SLOTS, self._n), dtype=np.int32)
        offsets = np.zeros((SLOTS, _TABLE + 1), dtype=np.int64)
        slot_words = np.empty((SLOTS, self._n, 2), dtype=np.uint64)
        for slot in range(SLOTS):
            values = chunks(words, slot)
            order = np.argsort(values.astype(np.uint16), kind="stable")
            postings[slot] = order
            np.cumsum(np.bincount(values, minlength=_TABLE), out=offsets[slot, 1:])
            slot_words[slot] = words[order][:, list(_other_words(slot))]
        self._postings, self._offsets, self._slot_words = postings, offsets, slot_words
        self._build_expanded(words)

    def _build_expanded(self, words: Words) -> None:
        """File each hash under every chunk value within the index radius (small indexes only)."""
        radius = self.max_distance // SLOTS
        if not 0 < self._n <= EXPAND_MAX or radius > 2:
            self._x_radius = -1
            self._x_offsets = np.zeros((SLOTS, 0), dtype=np.int64)
            self._x_postings = np.empty((SLOTS, 0), dtype=np.int32)
            return
        masks = flip_masks(radius)
        rows = np.repeat(np.arange(self._n, dtype=np.int32), len(masks))
        offsets = np.zeros((SLOTS, _TABLE + 1), dtype=np.int64)
        postings = np.empty((SLOTS, len(rows)), dtype=np.int32)
        for slot in range(SLOTS):
            keys = (chunks(words, slot)[:, None] ^ masks[None, :]).ravel()
            order = np.argsort(keys.astype(np.uint16), kind="stable")  # radix sort on 16-bit keys
            postings[slot] = rows[order]
            np.cumsum(np.bincount(keys, minlength=_TABLE), out=offsets[slot, 1:])
        self._x_radius, self._x_offsets, self._x_postings = radius, offsets, postings
        self._x_cols = [np.ascontiguousarray(words[:, w]) for w in range(2)]

    # -- queries ------------------------------------------------------------------------------
    def query(self, hashes: Sequence[str] | Words, max_distance: int | None = None) -> list[Match]:
        """Every indexed hash within ``max_distance`` (default: the index's) of each query hash.

        Sorted by query position, then distance. Exact: the same set brute force returns.
        """
        q, rows, dist = self.query_arrays(as_words(hashes), max_distance)
        order = np.lexsort((dist, q))
        return [Match(int(q[i]), self._ids[rows[i]], int(dist[i])) for i in order]

    def query_arrays(self, queries: Words, max_distance: int | None = None) -> tuple[IntArray, IntArray, IntArray]:
        """Vectorised form of :meth:`query`: parallel arrays (query position, row, distance).

        Rows are internal; map them with :meth:`id_of`. Rows change on :meth:`rebuild`.
        """
        md = self.max_distance if max_distance is None else max_distance
        if not 0 <= md < 256:
            raise ValueError(f"max_distance must be in [0, 255], got {md!r}")
        out_q: list[IntArray] = []
        out_r: list[IntArray] = []
        out_d: list[IntArray] = []
        if self._main_n and md // SLOTS == self._x_radius:
            per_query = max(1, SLOTS * len(flip_masks(self._x_radius)) * self._main_n >> SLOT_BITS)
            step = max(1, self._batch_candidates // per_query)
            for start in range(0, len(queries), step):
                q, r, d = self._probe_expanded(queries[start : start + step], md)
                out_q.append(q + start)
                out_r.append(r)
                out_d.append(d)
        elif self._main_n:
            masks = flip_masks(md // SLOTS)
            per_query = max(1, len(masks) * SLOTS * max(1, self._main_n >> SLOT_BITS))
            step = max(1, self._batch_candidates // per_query)
            for start in range(0, len(queries), step):
                q, r, d = self._probe(queries[start : start + step], md, masks)
                out_q.append(q + start)
                out_r.append(r)
                out_d.append(d)
        if self._n > self._main_n:
            q, r, d = brute_force(self._words[self._main_n : self._n], queries, md)
            out_q.append(q)
            out_r.append(r + self._main_n)
            out_d.append(d)
        if not out_q:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        q_all, r_all, d_all = (np.concatenate(x) for x in (out_q, out_r, out_d))
        if self._dead:
            keep = self._alive[r_all]
            q_all, r_all, d_all = q_all[keep], r_all[keep], d_all[keep]
        return q_all, r_all, d_all

    def id_of(self, row: int) -> Hashable:
        return self._ids[row]

    def _probe_expanded(self, queries: Words, md: int) -> tuple[IntArray, IntArray, IntArray]:
        """One probe per chunk into the expanded tables; verification as in :meth:`_probe`."""
        radius = self._x_radius
        n_q = len(queries)
        found: list[tuple[IntArray, IntArray, IntArray]] = []
        q_chunks = np.stack([chunks(queries, s) for s in range(SLOTS)], axis=1)  # (n_q, 16)
        cols = self._x_cols
        q_cols = [np.ascontiguousarray(queries[:, w]) for w in range(2)]
        for slot in range(SLOTS):
            offsets = self._x_offsets[slot]
            keys = q_chunks[:, slot]
            starts = offsets[keys]
            counts = offsets[keys + 1] - starts
            total = int(counts.sum())
            if not total:
                continue
            qidx = np.repeat(np.arange(n_q, dtype=np.int64), counts)
            ends = np.cumsum(counts)
            pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
            rows = self._x_postings[slot][pos]
            # two 64-bit words first, one column at a time (a lower bound: cuts nearly all)
            part = np.bitwise_count(cols[0][rows] ^ q_cols[0][qidx])
            part += np.bitwise_count(cols[1][rows] ^ q_cols[1][qidx])
            keep = np.flatnonzero(part <= md)
            if not len(keep):
                continue
            qidx, rows = qidx[keep], rows[keep].astype(np.int64)
            dist = hamming(self._words[rows], queries[qidx])
            hit = dist <= md
            if not hit.any():
                continue
            found.append(self._first_reach(slot, radius, q_chunks, qidx[hit], rows[hit], dist[hit]))
        return _joined(found)

    def _first_reach(
        self, slot: int, radius: int, q_chunks: IntArray, qh: IntArray, rh: IntArray, dh: IntArray
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Keep a (query, row) pair only at the first chunk through which it is reachable (dedup)."""
        if slot:
            cand = np.stack([chunks(self._words[rh], s) for s in range(slot)], axis=1)
            near = np.bitwise_count(cand ^ q_chunks[qh, :slot]) <= radius
            first = ~near.any(axis=1)
            qh, rh, dh = qh[first], rh[first], dh[first]
        return qh, rh, dh

    def _probe(self, queries: Words, md: int, masks: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        radius = md // SLOTS
        n_q = len(queries)
        found: list[tuple[IntArray, IntArray, IntArray]] = []
        q_chunks = np.stack([chunks(queries, s) for s in range(SLOTS)], axis=1)  # (n_q, 16)
        for slot in range(SLOTS):
            keys = q_chunks[:, slot, None] ^ masks[None, :]  # (n_q, probes)
            offsets = self._offsets[slot]
            starts = offsets[keys].ravel()
            counts = offsets[keys + 1].ravel() - starts
            total = int(counts.sum())
            if not total:
                continue
            per_q = counts.reshape(n_q, -1).sum(axis=1)
            qidx = np.repeat(np.arange(n_q, dtype=np.int64), per_q)
            ends = np.cumsum(counts)
            pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
            q_part = queries[:, list(_other_words(slot))]
            partial = hamming(self._slot_words[slot][pos], q_part[qidx])
            near_enough = partial <= md  # a lower bound of the full distance: safe to cut on
            if not near_enough.any():
                continue
            qidx = qidx[near_enough]
            rows = self._postings[slot][pos[near_enough]].astype(np.int64)
            dist = hamming(self._words[rows], queries[qidx])
            hit = dist <= md
            if not hit.any():
                continue
            found.append(self._first_reach(slot, radius, q_chunks, qidx[hit], rows[hit], dist[hit]))
        return _joined(found)


def _joined(found: list[tuple[IntArray, IntArray, IntArray]]) -> tuple[IntArray, IntArray, IntArray]:
    """(queries, rows, distances) of every slot's hits, as three flat arrays."""
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    qs, rs, ds = zip(*found, strict=True)
    return np.concatenate(qs), np.concatenate(rs), np.concatenate(ds)
