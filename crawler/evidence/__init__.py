"""The evidence ledger's cryptographic core: canonical JSON, RFC 9162 Merkle log, signed tree heads.

- :mod:`.canonical`: RFC 8785 canonical JSON, the bytes every leaf hash is taken over;
- :mod:`.merkle`: RFC 9162 hashing, proofs and verification over a complete-subtree node store;
- :mod:`.signing`: Ed25519 keys (private key only ever in a 0600 file) and signed tree heads;
- :mod:`.verify_ledger`: recompute a whole ledger against its signed heads, name the first bad seq;
- :mod:`.verify_bundle`: the standalone offline verifier shipped inside every case bundle
  (standard library only; it documents the bundle layout);
- :mod:`.bench`: append and proof timings for ``bench/ledger.py``.
"""

from __future__ import annotations

from crawler.evidence.canonical import canonical_text, canonicalize, rfc3339_utc
from crawler.evidence.merkle import (
    EMPTY_ROOT,
    AsyncMerkleLog,
    AsyncNodeStore,
    InMemoryNodeStore,
    MerkleLog,
    NodeKey,
    NodeStore,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from crawler.evidence.signing import (
    TreeHead,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    sign_tree_head,
    verify_tree_head,
)
from crawler.evidence.verify_ledger import LedgerCheck, verify_ledger, verify_ledger_async

__all__ = [
    "EMPTY_ROOT",
    "AsyncMerkleLog",
    "AsyncNodeStore",
    "InMemoryNodeStore",
    "LedgerCheck",
    "MerkleLog",
    "NodeKey",
    "NodeStore",
    "TreeHead",
    "canonical_text",
    "canonicalize",
    "generate_key",
    "key_id",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "node_hash",
    "rfc3339_utc",
    "sign_tree_head",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
    "verify_ledger_async",
    "verify_tree_head",
]
