"""RFC 9162 Merkle log: known answers, an independent implementation, the RFC text itself, every
verification failure path, and the O(log n) read/write bounds of the node store design."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from crawler.evidence.merkle import (
    EMPTY_ROOT,
    AsyncMerkleLog,
    InMemoryNodeStore,
    MerkleLog,
    NodeKey,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from foundation.errors import StoreError

# transparency-dev/merkle testonly/constants.go and reference_test.go (RFC 6962 = RFC 9162 hashing)
LEAF_INPUTS = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                          "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (index, size, proof)
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def _log(payloads: Sequence[bytes]) -> MerkleLog:
    log = MerkleLog(InMemoryNodeStore())
    log.extend(leaf_hash(p) for p in payloads)
    return log


# --- the RFC's definitions, written out literally (recursive, over leaf lists) ----------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --- known answers ------------------------------------------------------------------------------


def test_roots_match_transparency_dev_vectors() -> None:
    log = _log(LEAF_INPUTS)
    assert [log.root(n).hex() for n in range(9)] == ROOTS
    assert log.root(0) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_vectors(index: int, size: int, proof: list[str]) -> None:
    log = _log(LEAF_INPUTS)
    got = log.inclusion_proof(index, size)
    assert [h.hex() for h in got] == proof
    assert verify_inclusion(leaf_hash(LEAF_INPUTS[index]), index, size, got, log.root(size))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_vectors(first: int, second: int, proof: list[str]) -> None:
    log = _log(LEAF_INPUTS)
    got = log.consistency_proof(first, second)
    assert [h.hex() for h in got] == proof
    assert verify_consistency(first, second, got, log.root(first), log.root(second))


def test_every_proof_up_to_40_leaves_equals_the_rfc_definition() -> None:
    payloads = [b"entry %d" % i for i in range(40)]
    log = _log(payloads)
    for n in range(1, 41):
        assert log.root(n) == ref_mth(payloads[:n])
        for m in range(n):
            assert log.inclusion_proof(m, n) == ref_path(m, payloads[:n])
        for m in range(1, n + 1):
            assert log.consistency_proof(m, n) == ref_subproof(m, payloads[:n], True)


# --- an independent implementation (pymerkle, RFC 9162 prefixes) -------------------------------

N_MAX = 300
PAYLOADS = [b"payload-%05d" % i for i in range(N_MAX)]


@pytest.fixture(scope="module")
def trees() -> tuple[MerkleLog, InmemoryTree]:
    theirs = InmemoryTree(algorithm="sha256")  # disable_security=False: 0x00 / 0x01 prefixes
    for p in PAYLOADS:
        theirs.append_entry(p)
    return _log(PAYLOADS), theirs


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_roots_and_inclusion_agree_with_pymerkle(trees: tuple[MerkleLog, InmemoryTree], data: st.DataObject) -> None:
    ours, theirs = trees
    size = data.draw(st.integers(1, N_MAX), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    assert ours.root(size) == theirs.get_root(size)
    their_proof = theirs.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
    # pymerkle's path is [leaf, sibling, sibling, …] bottom-up; RFC 9162's audit path drops the leaf
    assert their_proof.path[0] == leaf_hash(PAYLOADS[index])
    assert ours.inclusion_proof(index, size) == their_proof.path[1:]
    their_proof.verify(leaf_hash(PAYLOADS[index]), ours.root(size))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_consistency_proofs_verify_and_pymerkle_agrees_on_both_roots(
    trees: tuple[MerkleLog, InmemoryTree], data: st.DataObject
) -> None:
    """pymerkle's consistency path has its own layout, so agreement is on the roots both attest."""
    ours, theirs = trees
    second = data.draw(st.integers(1, N_MAX), label="second")
    first = data.draw(st.integers(1, second), label="first")
    proof = ours.consistency_proof(first, second)
    assert verify_consistency(first, second, proof, theirs.get_root(first), theirs.get_root(second))
    theirs.prove_consistency(first, second).verify(ours.root(first), ours.root(second))
    assert proof == ref_subproof(first, PAYLOADS[:second], True)


# --- verification failure paths ----------------------------------------------------------------


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_inclusion_verification_rejects_every_kind_of_bad_input() -> None:
    log = _log(PAYLOADS[:13])
    leaf, index, size, root = leaf_hash(PAYLOADS[6]), 6, 13, log.root(13)
    path = log.inclusion_proof(index, size)
    assert verify_inclusion(leaf, index, size, path, root)
    assert not verify_inclusion(leaf, size, size, path, root)  # index outside the tree
    assert not verify_inclusion(leaf, -1, size, path, root)
    assert not verify_inclusion(leaf, index + 1, size, path, root)  # wrong position
    assert not verify_inclusion(leaf, index, 8, path, root)  # a size with another shape
    # (a size with the same path shape, e.g. 14, cannot be told apart by the path alone: the size
    # is bound by the signed tree head, which signs size and root together)
    assert not verify_inclusion(leaf_hash(b"other"), index, size, path, root)  # wrong leaf
    assert not verify_inclusion(leaf, index, size, path, _flip(root))  # wrong root
    assert not verify_inclusion(leaf, index, size, path[:-1], root)  # too short: sn != 0 at the end
    assert not verify_inclusion(leaf, index, size, [*path, path[-1]], root)  # too long: sn hits 0
    for i in range(len(path)):
        bad = list(path)
        bad[i] = _flip(bad[i])
        assert not verify_inclusion(leaf, index, size, bad, root)
    assert not verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)  # nothing is in the empty tree


def test_consistency_verification_rejects_every_kind_of_bad_input() -> None:
    log = _log(PAYLOADS[:13])
    first, second = 6, 13
    r1, r2 = log.root(first), log.root(second)
    proof = log.consistency_proof(first, second)
    assert verify_consistency(first, second, proof, r1, r2)
    assert not verify_consistency(first, second, [], r1, r2)  # step 1: empty proof
    assert not verify_consistency(first, second, proof, _flip(r1), r2)
    assert not verify_consistency(first, second, proof, r1, _flip(r2))
    assert not verify_consistency(first, second, proof[:-1], r1, r2)
    assert not verify_consistency(first, second, [*proof, proof[-1]], r1, r2)
    assert not verify_consistency(first + 1, second, proof, r1, r2)
    assert not verify_consistency(first, 8, proof, r1, r2)  # a size with another shape
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i])
        assert not verify_consistency(first, second, bad, r1, r2)
    # a power-of-two first size takes the "prepend first_hash" branch (step 2)
    p4 = log.consistency_proof(4, second)
    assert verify_consistency(4, second, p4, log.root(4), r2)
    assert not verify_consistency(4, second, p4, _flip(log.root(4)), r2)
    # edges outside 0 < first < second
    assert verify_consistency(second, second, [], r2, r2)
    assert not verify_consistency(second, second, [], r1, r2)
    assert not verify_consistency(second, second, proof, r2, r2)
    assert verify_consistency(0, second, [], EMPTY_ROOT, r2)
    assert not verify_consistency(0, second, proof, EMPTY_ROOT, r2)
    assert not verify_consistency(second, first, proof, r2, r1)  # a shrinking log


def test_proof_requests_outside_the_log_are_refused() -> None:
    log = _log(PAYLOADS[:5])
    with pytest.raises(ValueError):
        log.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        log.inclusion_proof(0, 6)
    with pytest.raises(ValueError):
        log.consistency_proof(0, 5)
    with pytest.raises(ValueError):
        log.consistency_proof(3, 2)
    with pytest.raises(ValueError):
        log.root(6)


# --- the node store: bounds, append-only, reopening, async --------------------------------------


class CountingStore(InMemoryNodeStore):
    """A real in-memory store that also records how it was used."""

    def __init__(self) -> None:
        super().__init__()
        self.get_calls: list[int] = []
        self.put_calls: list[int] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.get_calls.append(len(keys))
        return super().get_nodes(keys)

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        self.put_calls.append(len(nodes))
        super().put_nodes(nodes)


def test_appends_write_log_n_nodes_and_proofs_read_log_n_nodes_in_one_batch() -> None:
    store = CountingStore()
    log = MerkleLog(store)
    n = 5000
    for i in range(n):
        log.append(leaf_hash(b"%d" % i))
    bound = n.bit_length()
    assert max(store.put_calls) <= bound + 1  # a leaf plus the parents it completes
    assert sum(store.put_calls) < 2 * n  # amortized: at most ~2 writes per entry
    assert store.get_calls == []  # appends never read: the frontier is kept in memory
    for index, size in [(0, n), (n - 1, n), (2047, 4097), (1234, 3333), (4095, 4096)]:
        store.get_calls.clear()
        proof = log.inclusion_proof(index, size)
        assert len(store.get_calls) == 1  # one batched fetch
        assert store.get_calls[0] <= 2 * bound
        assert verify_inclusion(leaf_hash(b"%d" % index), index, size, proof, log.root(size))
    for first, second in [(1, n), (1000, n), (4096, 4097), (3, 7)]:
        store.get_calls.clear()
        log.consistency_proof(first, second)
        assert len(store.get_calls) == 1 and store.get_calls[0] <= 2 * bound
    store.get_calls.clear()
    log.root(n)
    assert store.get_calls == [bin(n).count("1")]  # the complete subtrees on the right edge


def test_plans_only_name_nodes_that_exist_at_that_size() -> None:
    log = _log(PAYLOADS[:21])
    store = log.store
    assert isinstance(store, InMemoryNodeStore)
    for size in range(1, 22):
        for m in range(size):
            keys = inclusion_plan(m, size).node_keys()
            assert len(store.get_nodes(keys)) == len(keys)
            for level, index in keys:
                assert (index + 1) << level <= size  # complete subtrees inside the first `size` leaves
        for m in range(1, size + 1):
            for level, index in consistency_plan(m, size).node_keys():
                assert (index + 1) << level <= size


def test_reopened_log_continues_from_the_stored_frontier() -> None:
    store = InMemoryNodeStore()
    first = MerkleLog(store)
    first.extend(leaf_hash(p) for p in PAYLOADS[:77])
    reopened = MerkleLog(store, size=77)
    reopened.extend(leaf_hash(p) for p in PAYLOADS[77:200])
    assert reopened.root() == _log(PAYLOADS[:200]).root()
    assert store.leaf_count == 200


def test_store_is_append_only() -> None:
    store = InMemoryNodeStore()
    MerkleLog(store).extend([leaf_hash(b"a"), leaf_hash(b"b")])
    store.put_nodes({(0, 1): leaf_hash(b"b")})  # same hash again: fine (idempotent replay)
    with pytest.raises(StoreError, match="another hash"):
        store.put_nodes({(0, 1): leaf_hash(b"changed")})
    with pytest.raises(StoreError, match="gap"):
        store.put_nodes({(0, 5): leaf_hash(b"far")})


def test_missing_nodes_surface_as_store_errors() -> None:
    log = MerkleLog(InMemoryNodeStore(), size=10)  # claims 10 entries over an empty store
    with pytest.raises(StoreError, match="missing"):
        log.root()
    with pytest.raises(StoreError, match="missing"):
        log.append(leaf_hash(b"x"))


def test_append_rejects_non_hash_leaves() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleLog(InMemoryNodeStore()).append(b"not a hash")


class AsyncStore:
    """An async adapter over the in-memory store, shaped like a database-backed one."""

    def __init__(self) -> None:
        self.inner = InMemoryNodeStore()
        self.round_trips = 0

    async def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.round_trips += 1
        return self.inner.get_nodes(keys)

    async def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        self.round_trips += 1
        self.inner.put_nodes(nodes)


async def test_async_log_gives_the_same_answers_in_one_round_trip_each() -> None:
    store = AsyncStore()
    alog = AsyncMerkleLog(store)
    for start in range(0, 150, 40):
        await alog.extend(leaf_hash(p) for p in PAYLOADS[start : min(start + 40, 150)])
    sync = _log(PAYLOADS[:150])
    assert await alog.root() == sync.root()
    assert await alog.root(0) == EMPTY_ROOT
    store.round_trips = 0
    assert await alog.inclusion_proof(97, 140) == sync.inclusion_proof(97, 140)
    assert await alog.consistency_proof(33, 150) == sync.consistency_proof(33, 150)
    assert store.round_trips == 2
    reopened = AsyncMerkleLog(store, size=150)
    await reopened.extend([leaf_hash(PAYLOADS[150])])
    assert await reopened.root() == _log(PAYLOADS[:151]).root()


def test_node_hash_and_leaf_hash_use_the_rfc_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
