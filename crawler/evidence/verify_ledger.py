"""Whole-ledger check: recompute every leaf and every signed root, name the first bad ``seq``.

Input contract (what the ledger collection yields, in ``seq`` order):

- an entry is a mapping with ``seq`` (int, 0-based and gapless: ``seq`` *is* the RFC 9162 leaf
  index), ``payload`` (the canonical JSON text, :mod:`crawler.evidence.canonical`) and
  ``leaf_hash`` (hex string or 32 bytes) = SHA-256(0x00 ‖ UTF-8 payload). A payload that is a
  JSON object with a ``seq`` member must carry its own ``seq``: that pins an entry to its place,
  so swapping two whole entries is pinpointed, not just noticed;
- tree heads are :class:`~crawler.evidence.signing.TreeHead` (or their ``to_dict()`` form), in
  the order they were stored.

What is found, and how precisely:

- a changed payload whose stored leaf hash was left alone, a gap (deleted entry), a duplicate or an
  out-of-order ``seq``, a payload naming another ``seq``, a payload that is not canonical JSON:
  the exact ``seq``;
- a change that was covered up by also rewriting ``leaf_hash`` (and any stored tree nodes), or a
  substituted tree head: the first signed head whose root no longer matches is named, and
  ``first_bad_seq`` is the first entry only that head covers (the signed roots are the only trusted
  anchor; nothing unsigned can narrow it down further honestly);
- a tree head with a bad signature, another key, a timestamp out of order with its size, or
  covering entries that are not there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crawler.evidence.canonical import canonical_text
from crawler.evidence.merkle import EMPTY_ROOT, append_nodes, fold
from crawler.evidence.signing import TreeHead, verify_tree_head


@dataclass(frozen=True)
class LedgerCheck:
    """The verdict. ``item`` names what failed (``"seq 41"``, ``"tree head size=100"``)."""

    ok: bool
    entries: int
    tree_heads: int
    first_bad_seq: int | None = None
    item: str | None = None
    reason: str | None = None

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.entries} entries, {self.tree_heads} signed tree heads verified"
        where = f" (first bad seq {self.first_bad_seq})" if self.first_bad_seq is not None else ""
        return f"FAIL: {self.item}: {self.reason}{where}"


class LedgerVerifier:
    """Incremental: ``feed`` entries in stored order (sync or from an async cursor), then ``result``.

    Memory is O(log n): only the right-edge frontier of the tree is kept.
    """

    def __init__(
        self,
        tree_heads: Iterable[TreeHead | Mapping[str, object]],
        public_key: Ed25519PublicKey,
        *,
        check_canonical: bool = True,
    ) -> None:
        self.check_canonical = check_canonical
        self._size = 0
        self._frontier: list[bytes] = []
        self._failure: LedgerCheck | None = None
        self._heads: list[TreeHead] = []
        self._next_head = 0
        self._head_count = 0
        self._check_heads(list(tree_heads), public_key)

    def _fail(self, item: str, reason: str, seq: int | None) -> None:
        if self._failure is None:
            self._failure = LedgerCheck(False, self._size, self._next_head, seq, item, reason)

    def _check_heads(self, raw: list[TreeHead | Mapping[str, object]], public_key: Ed25519PublicKey) -> None:
        heads: list[TreeHead] = []
        for i, doc in enumerate(raw):
            try:
                head = doc if isinstance(doc, TreeHead) else TreeHead.from_dict(dict(doc))
            except ValueError as exc:
                self._fail(f"tree head #{i}", str(exc), None)
                return
            if not verify_tree_head(head, public_key):
                self._fail(f"tree head size={head.size}", "signature does not verify with the ledger's key", None)
                return
            if heads and head.timestamp < heads[-1].timestamp:
                self._fail(
                    f"tree head size={head.size}",
                    f"stored after the head of size {heads[-1].size} but signed earlier ({head.timestamp})",
                    None,
                )
                return
            if heads and head.size < heads[-1].size:
                self._fail(
                    f"tree head size={head.size}",
                    f"signed after the head of size {heads[-1].size} yet covers fewer entries",
                    None,
                )
                return
            heads.append(head)
        self._head_count = len(heads)
        self._heads = heads
        # heads of size 0 are checked right away: their root is the empty-tree hash
        self._match_heads()

    def _root(self) -> bytes:
        return fold(self._frontier) if self._frontier else EMPTY_ROOT

    def _match_heads(self) -> None:
        covered_from = 0
        while self._next_head < len(self._heads) and self._heads[self._next_head].size == self._size:
            head = self._heads[self._next_head]
            if self._next_head:
                covered_from = self._heads[self._next_head - 1].size
            if bytes.fromhex(head.root_hash) != self._root():
                first = min(covered_from, max(self._size - 1, 0))
                self._fail(
                    f"tree head size={head.size}",
                    f"signed root does not match entries [0, {head.size}): an entry in [{covered_from}, {head.size})"
                    " was altered together with its leaf hash, or the head was substituted",
                    first,
                )
                return
            self._next_head += 1

    def feed(self, entry: Mapping[str, object]) -> bool:
        """Check one more entry; False once the ledger has failed (stop feeding)."""
        if self._failure is not None:
            return False
        expected = self._size
        seq = entry.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            self._fail(f"entry after seq {expected - 1}", f"seq is not an integer: {seq!r}", expected)
            return False
        if seq != expected:
            reason = (
                f"expected seq {expected}, found seq {seq}: entry {expected} deleted or entries reordered"
                if seq > expected
                else f"seq {seq} appears again after seq {expected - 1}: duplicated or reordered"
            )
            self._fail(f"seq {expected}", reason, expected)
            return False
        payload = entry.get("payload")
        if isinstance(payload, str):
            data = payload.encode("utf-8")
        elif isinstance(payload, bytes):
            data = payload
        else:
            self._fail(f"seq {seq}", "payload is missing or not text", seq)
            return False
        leaf = hashlib.sha256(b"\x00" + data).digest()
        stored = entry.get("leaf_hash")
        try:
            stored_bytes = bytes.fromhex(stored) if isinstance(stored, str) else stored
        except ValueError:
            stored_bytes = None
        if stored_bytes != leaf:
            self._fail(f"seq {seq}", "payload does not match its stored leaf hash (payload or hash altered)", seq)
            return False
        problem = self._payload_problem(data, seq)
        if problem:
            self._fail(f"seq {seq}", problem, seq)
            return False
        _, self._frontier = append_nodes(self._size, self._frontier, [leaf])
        self._size += 1
        self._match_heads()
        return self._failure is None

    def _payload_problem(self, data: bytes, seq: int) -> str | None:
        try:
            parsed = json.loads(data)
        except ValueError:
            return "payload is not JSON"
        if isinstance(parsed, dict) and "seq" in parsed and parsed["seq"] != seq:
            return f"payload says seq {parsed['seq']!r}: entries swapped or moved"
        if self.check_canonical:
            try:
                canonical = canonical_text(parsed).encode("utf-8")
            except (TypeError, ValueError) as exc:
                return f"payload is not canonical JSON: {exc}"
            if canonical != data:
                return "payload is not RFC 8785 canonical JSON"
        return None

    def result(self) -> LedgerCheck:
        """The verdict once every entry was fed."""
        if self._failure is None and self._next_head < len(self._heads):
            head = self._heads[self._next_head]
            self._fail(
                f"tree head size={head.size}",
                f"covers seq up to {head.size - 1} but the ledger ends at seq {self._size - 1}: entries deleted",
                self._size,
            )
        if self._failure is not None:
            return self._failure
        return LedgerCheck(True, self._size, self._head_count)


def verify_ledger(
    entries: Iterable[Mapping[str, object]],
    tree_heads: Iterable[TreeHead | Mapping[str, object]],
    public_key: Ed25519PublicKey,
    *,
    check_canonical: bool = True,
) -> LedgerCheck:
    """Recompute every leaf and root of the ledger against its signed heads (see the module doc)."""
    verifier = LedgerVerifier(tree_heads, public_key, check_canonical=check_canonical)
    for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.result()


async def verify_ledger_async(
    entries: AsyncIterable[Mapping[str, object]],
    tree_heads: Iterable[TreeHead | Mapping[str, object]],
    public_key: Ed25519PublicKey,
    *,
    check_canonical: bool = True,
) -> LedgerCheck:
    """:func:`verify_ledger` over an async cursor (e.g. ``ledger.find().sort("seq")``)."""
    verifier = LedgerVerifier(tree_heads, public_key, check_canonical=check_canonical)
    async for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.result()
