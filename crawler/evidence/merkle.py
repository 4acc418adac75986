"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their verification.

Hashing (RFC 9162 §2.1.1): ``leaf = SHA-256(0x00 ‖ payload)``, ``node = SHA-256(0x01 ‖ left ‖ right)``,
``MTH({}) = SHA-256("")``, and for n > 1, ``MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))`` with k the
largest power of two smaller than n.

Storage model. A log of a million entries must answer a proof without reading a million leaves, so
the tree is kept as the hashes of its *complete* subtrees: node ``(level, index)`` is the MTH of
leaves ``[index·2**level, (index+1)·2**level)``; level 0 holds the leaf hashes. Those nodes never
change once written (an append only adds nodes), which suits an append-only collection. Every range
RFC 9162's recursions ask for is either such a node or a *right-edge* range ``[start, n)``, whose
hash folds from the complete subtrees it decomposes into (one per set bit of its width), so
``root(n)``, ``inclusion_proof(m, n)`` and ``consistency_proof(m, n)`` read O(log n) nodes.

The work is split in two so a database-backed store can fetch everything in one query:

1. *planning* (pure, no I/O): :func:`root_plan`, :func:`inclusion_plan`, :func:`consistency_plan`
   say which ranges the answer is made of and which node keys they need (``Plan.node_keys()``);
2. *resolving*: ``Plan.resolve(nodes)`` folds the fetched nodes into the answer.

Appends work the same way: :func:`frontier_keys` names the complete subtrees on the right edge (at
most one per set bit of the size); :func:`append_nodes` turns that frontier plus new leaf hashes
into the nodes to write (one leaf node per entry plus each parent it completes: ≤ 2 writes per
entry amortized, O(log n) for a single append) and the new frontier. :class:`MerkleLog` and
:class:`AsyncMerkleLog` wire this to a :class:`NodeStore` / :class:`AsyncNodeStore`; both expect a
single writer (the ledger serializes its appends).

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows RFC 9162 §2.1.3.2 and
§2.1.4.2 step by step and needs nothing but the proof, the sizes and the hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from foundation.errors import StoreError

HASH_SIZE = 32
#: MTH of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""``(level, index)``: the complete subtree over leaves ``[index·2**level, (index+1)·2**level)``."""

Range = tuple[int, int]
"""``(start, end)``: leaves ``D[start:end]``, end exclusive."""


def leaf_hash(payload: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ payload)."""
    return hashlib.sha256(b"\x00" + payload).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(width: int) -> int:
    """The largest power of two strictly smaller than ``width`` (``width`` ≥ 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def subtree_keys(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees, left to right, whose fold is ``MTH(D[start:end])``.

    Valid for the ranges RFC 9162's recursions produce (``start`` is a multiple of the power of two
    at or above the width): one subtree per set bit of the width, largest first.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    keys: list[NodeKey] = []
    width, pos = end - start, start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            if pos % (1 << level):
                raise ValueError(f"range [{start}, {end}) is not a node of an RFC 9162 tree")
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees left to right: ``node(a, node(b, c))``."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


@dataclass(frozen=True)
class Plan:
    """The ranges an answer is made of, in answer order, and the nodes they need."""

    ranges: tuple[Range, ...]

    def node_keys(self) -> list[NodeKey]:
        """Every node key to fetch (duplicates removed, order kept)."""
        seen: dict[NodeKey, None] = {}
        for start, end in self.ranges:
            for key in subtree_keys(start, end):
                seen[key] = None
        return list(seen)

    def resolve(self, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
        """One hash per range, folded from ``nodes``; a missing node is a broken store."""
        out = []
        for start, end in self.ranges:
            try:
                out.append(fold([nodes[key] for key in subtree_keys(start, end)]))
            except KeyError as exc:
                raise StoreError(f"merkle node {exc.args[0]} missing from the node store") from exc
        return out


def root_plan(size: int) -> Plan:
    """Plan for ``MTH(D[size])``; an empty plan means the empty tree (use :data:`EMPTY_ROOT`)."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return Plan(((0, size),) if size else ())


def inclusion_plan(index: int, size: int) -> Plan:
    """Plan for ``PATH(index, D[size])`` (RFC 9162 §2.1.3.1), audit path bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return Plan(tuple(ranges))


def consistency_plan(first: int, second: int) -> Plan:
    """Plan for ``PROOF(first, D[second])`` = ``SUBPROOF(first, D[second], true)`` (RFC 9162 §2.1.4.1)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    ranges: list[Range] = []
    start, end, whole_first = 0, second, True
    while True:
        width, m = end - start, first - start
        if m == width:
            if not whole_first:
                ranges.append((start, end))
            break
        k = _split(width)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole_first = False
    ranges.reverse()
    return Plan(tuple(ranges))


def frontier_keys(size: int) -> list[NodeKey]:
    """The complete subtrees on the right edge of a tree of ``size`` leaves, largest first."""
    return subtree_keys(0, size) if size else []


def frontier_plan(size: int) -> Plan:
    """The plan that reads the right-edge subtrees of a tree of ``size`` leaves (what appends need)."""
    return Plan(tuple((k[1] << k[0], (k[1] + 1) << k[0]) for k in frontier_keys(size)))


def append_nodes(
    size: int, frontier: Sequence[bytes], leaf_hashes: Iterable[bytes]
) -> tuple[dict[NodeKey, bytes], list[bytes]]:
    """Nodes to write when ``leaf_hashes`` are appended to a tree of ``size``, and the new frontier.

    ``frontier`` holds the hashes of :func:`frontier_keys(size) <frontier_keys>` in that order. The
    returned dict is ordered so that, per level, indexes only grow (an append-only store can take
    them in order).
    """
    keys = frontier_keys(size)
    if len(frontier) != len(keys):
        raise ValueError(f"frontier of a size-{size} tree has {len(keys)} nodes, got {len(frontier)}")
    stack: list[tuple[int, int, bytes]] = [(lvl, idx, h) for (lvl, idx), h in zip(keys, frontier, strict=True)]
    writes: dict[NodeKey, bytes] = {}
    index = size
    for h in leaf_hashes:
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(h)}")
        writes[(0, index)] = h
        level, idx, acc = 0, index, h
        while stack and stack[-1][0] == level:
            _, left_idx, left = stack.pop()
            level, idx, acc = level + 1, left_idx >> 1, node_hash(left, acc)
            writes[(level, idx)] = acc
        stack.append((level, idx, acc))
        index += 1
    return writes, [h for _, _, h in stack]


class NodeStore(Protocol):
    """Where complete-subtree hashes live. Writes only ever add nodes; a node never changes."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """The stored hashes of ``keys`` (absent keys are simply missing from the result)."""
        ...

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Store new nodes (idempotent for a node already stored with the same hash)."""
        ...


class AsyncNodeStore(Protocol):
    """:class:`NodeStore` for a database: one round trip per call."""

    async def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]: ...

    async def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None: ...


class InMemoryNodeStore:
    """One ``bytearray`` per level, node ``i`` at bytes ``[32·i, 32·i+32)``.

    About 64 MB for a million leaves (2 million nodes), against ~300 MB for a dict of tuples.
    Append-only: a node may be re-put with the same hash, never changed, and never skip an index.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0]) // HASH_SIZE if self._levels else 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        out: dict[NodeKey, bytes] = {}
        for level, index in keys:
            if level < len(self._levels):
                row = self._levels[level]
                at = index * HASH_SIZE
                if 0 <= at < len(row):
                    out[(level, index)] = bytes(row[at : at + HASH_SIZE])
        return out

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        for (level, index), h in nodes.items():
            while len(self._levels) <= level:
                self._levels.append(bytearray())
            row = self._levels[level]
            count = len(row) // HASH_SIZE
            if index == count:
                row += h
            elif 0 <= index < count:
                if row[index * HASH_SIZE : (index + 1) * HASH_SIZE] != h:
                    raise StoreError(f"merkle node {(level, index)} already stored with another hash")
            else:
                raise StoreError(f"merkle node {(level, index)} would leave a gap at level {level} (has {count})")


def _check_size(size: int | None, current: int) -> int:
    n = current if size is None else size
    if not 0 <= n <= current:
        raise ValueError(f"tree size {n} is beyond the log's {current} entries")
    return n


class MerkleLog:
    """An append-only RFC 9162 log over a synchronous :class:`NodeStore` (one writer)."""

    def __init__(self, store: NodeStore, size: int = 0) -> None:
        self.store = store
        self._size = size
        self._frontier: list[bytes] | None = None if size else []

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one leaf hash; returns its 0-based index."""
        self.extend([leaf])
        return self._size - 1

    def extend(self, leaves: Iterable[bytes]) -> int:
        """Append leaf hashes in order; returns the new size."""
        leaves = list(leaves)
        if self._frontier is None:
            self._frontier = self._resolve(frontier_plan(self._size))
        writes, frontier = append_nodes(self._size, self._frontier, leaves)
        self.store.put_nodes(writes)
        self._frontier, self._size = frontier, self._size + len(leaves)
        return self._size

    def _resolve(self, plan: Plan) -> list[bytes]:
        return plan.resolve(self.store.get_nodes(plan.node_keys()))

    def root(self, size: int | None = None) -> bytes:
        n = _check_size(size, self._size)
        return self._resolve(root_plan(n))[0] if n else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._resolve(inclusion_plan(index, _check_size(size, self._size)))

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return self._resolve(consistency_plan(first, _check_size(second, self._size)))


class AsyncMerkleLog:
    """:class:`MerkleLog` over an :class:`AsyncNodeStore`: each call is one fetch (+ one write)."""

    def __init__(self, store: AsyncNodeStore, size: int = 0) -> None:
        self.store = store
        self._size = size
        self._frontier: list[bytes] | None = None if size else []

    @property
    def size(self) -> int:
        return self._size

    async def extend(self, leaves: Iterable[bytes]) -> int:
        leaves = list(leaves)
        if self._frontier is None:
            plan = frontier_plan(self._size)
            self._frontier = plan.resolve(await self.store.get_nodes(plan.node_keys()))
        writes, frontier = append_nodes(self._size, self._frontier, leaves)
        await self.store.put_nodes(writes)
        self._frontier, self._size = frontier, self._size + len(leaves)
        return self._size

    async def _resolve(self, plan: Plan) -> list[bytes]:
        return plan.resolve(await self.store.get_nodes(plan.node_keys()))

    async def root(self, size: int | None = None) -> bytes:
        n = _check_size(size, self._size)
        return (await self._resolve(root_plan(n)))[0] if n else EMPTY_ROOT

    async def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return await self._resolve(inclusion_plan(index, _check_size(size, self._size)))

    async def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return await self._resolve(consistency_plan(first, _check_size(second, self._size)))


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step: does ``path`` prove ``leaf`` at ``index`` under ``root``?"""
    # 1. leaf_index must be inside the tree.
    if not 0 <= index < size:
        return False
    # 2.-3.
    fn, sn, r = index, size - 1, leaf
    # 4.
    for p in path:
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # c.
        sn >>= 1
    # 5.
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2, step by step: is the ``second``-size tree an extension of the ``first``?

    Edge cases outside the RFC's ``0 < first < second``: equal sizes need an empty proof and equal
    roots; every tree extends the empty tree (empty proof); a shrinking tree is never consistent.
    """
    if first < 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    # 1.
    if not proof:
        return False
    path = list(proof)
    # 2.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # 3.
    fn, sn = first - 1, second - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # c.
        sn >>= 1
    # 7.
    return fr == first_root and sr == second_root and sn == 0
