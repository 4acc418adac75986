"""PdqIndex is exact: the same (query, id, distance) set as brute force, at every radius, under updates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.hashing.index import PdqIndex, brute_force, flip_masks
from crawler.hashing.pdqbits import hex_to_words, words_to_hex


def _flip(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = words.copy()
    for b in bits:
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def _dataset(seed: int, n: int, clustered: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if clustered:  # a few centres, members within 0..40 bits: many near neighbours per query
        centres = rng.integers(0, 2**64, (max(1, n // 50), 4), dtype=np.uint64, endpoint=False)
        picks = rng.integers(len(centres), size=n)
        base = np.stack([_flip(centres[c], rng.choice(256, rng.integers(0, 41), replace=False)) for c in picks])
    else:
        base = rng.integers(0, 2**64, (n, 4), dtype=np.uint64, endpoint=False)
    queries = np.stack(
        [_flip(base[rng.integers(n)], rng.choice(256, rng.integers(0, 48), replace=False)) for _ in range(60)]
        + [rng.integers(0, 2**64, 4, dtype=np.uint64, endpoint=False) for _ in range(10)]
    )
    return base, queries


def _as_set(q: np.ndarray, r: np.ndarray, d: np.ndarray) -> set[tuple[int, int, int]]:
    return {(int(a), int(b), int(c)) for a, b, c in zip(q, r, d, strict=True)}


def _index_set(index: PdqIndex, queries: np.ndarray, md: int) -> set[tuple[int, int, int]]:
    return {(m.query, int(m.id), m.distance) for m in index.query(queries, md)}  # type: ignore[call-overload]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    clustered=st.booleans(),
    md=st.sampled_from([0, 1, 15, 16, 31, 32, 40]),
)
def test_index_equals_brute_force(seed: int, n: int, clustered: bool, md: int) -> None:
    base, queries = _dataset(seed, n, clustered)
    index = PdqIndex()
    index.add(list(range(n)), base)
    index.rebuild()
    assert _index_set(index, queries, md) == _as_set(*brute_force(base, queries, md))


def test_exact_boundary_31_in_32_out() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**64, (5000, 4), dtype=np.uint64, endpoint=False)
    index = PdqIndex()
    index.add(list(range(len(base))), base)
    index.rebuild()
    # worst case for 16×16 slots: 31 bits spread so every chunk but one differs in exactly 2 bits
    spread = np.array([c * 16 + k for c in range(15) for k in (0, 9)] + [15 * 16 + 3])
    at_31 = _flip(base[42], spread)
    at_32 = _flip(base[42], np.append(spread, 15 * 16 + 4))
    hits = index.query(np.stack([at_31, at_32]), 31)
    assert [(m.query, m.id, m.distance) for m in hits if m.id == 42] == [(0, 42, 31)]
    assert not [m for m in hits if m.query == 1 and m.id == 42]
    assert [(m.id, m.distance) for m in index.query(at_32[None], 32) if m.id == 42] == [(42, 32)]


def test_incremental_add_and_remove_stay_exact() -> None:
    base, queries = _dataset(11, 6000, clustered=True)
    index = PdqIndex()
    index.add(list(range(3000)), base[:3000])  # stays in the brute-forced delta
    index.rebuild()
    index.add(list(range(3000, 6000)), base[3000:])  # crosses the threshold: rebuilt
    index.add([6000, 6001], base[:2])  # small delta on top
    removed = list(range(0, 6000, 3))
    assert index.remove([*removed, "never-added"]) == len(removed)
    assert len(index) == 6002 - len(removed)
    gone = set(removed)
    keep_rows = [i for i in range(6000) if i not in gone] + [6000, 6001]
    ids = np.array(keep_rows)
    kept = np.concatenate([base, base[:2]])[keep_rows]
    q, r, d = brute_force(kept, queries, 31)
    assert _index_set(index, queries, 31) == {(a, int(ids[b]), c) for a, b, c in _as_set(q, r, d)}


def test_hex_interface_and_ids_with_many_hashes() -> None:
    a = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    b = "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22"
    far = words_to_hex(~hex_to_words(a))[0]
    index = PdqIndex()
    index.add(["list:1", "list:1", "list:2"], [a, far, b])
    assert "list:1" in index and len(index) == 3
    matches = index.query([a])
    assert [(m.id, m.distance) for m in matches] == [("list:1", 0), ("list:2", 2)]
    index.remove(["list:1"])
    assert [m.id for m in index.query([a])] == ["list:2"]


def test_flip_masks_and_bad_arguments() -> None:
    assert len(flip_masks(1)) == 17 and len(flip_masks(2)) == 137
    with pytest.raises(ValueError):
        PdqIndex(max_distance=256)
    with pytest.raises(ValueError):
        PdqIndex().add([1, 2], ["00" * 32])


def test_small_index_many_queries_equals_brute_force() -> None:
    """The retroactive shape (a new list indexed, every stored PDQ a query) through the expanded tables."""
    rng = np.random.default_rng(18)
    listed = rng.integers(0, 2**64, (2000, 4), dtype=np.uint64, endpoint=False)
    stored = rng.integers(0, 2**64, (20000, 4), dtype=np.uint64, endpoint=False)
    for i, dist in enumerate(range(0, 41)):  # planted near-duplicates at 0..40 bits
        stored[i] = _flip(listed[i], rng.choice(256, dist, replace=False))
    index = PdqIndex(max_distance=31)
    index.add(list(range(len(listed))), listed)
    index.rebuild()
    got = _index_set(index, stored, 31)
    assert got == _as_set(*brute_force(listed, stored, 31))
    assert {(i, i) for i in range(32)} <= {(q, r) for q, r, _ in got}
    assert not {(i, i) for i in range(32, 41)} & {(q, r) for q, r, _ in got}
