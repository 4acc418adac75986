"""Whole-ledger check: an honest ledger passes; each kind of tampering is caught and pinpointed."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crawler.evidence.canonical import canonical_text
from crawler.evidence.merkle import InMemoryNodeStore, MerkleLog, leaf_hash
from crawler.evidence.signing import sign_tree_head
from crawler.evidence.verify_ledger import verify_ledger, verify_ledger_async

T0 = datetime(2026, 2, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
N, EVERY = 23, 5


def make_ledger(
    n: int = N, every: int = EVERY, key: Ed25519PrivateKey = KEY, salt: str = ""
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Entries as the ledger collection holds them, and a signed head every `every` entries + at the end."""
    log = MerkleLog(InMemoryNodeStore())
    entries: list[dict[str, object]] = []
    heads: list[dict[str, object]] = []
    for seq in range(n):
        payload = canonical_text(
            {"seq": seq, "kind": "capture", "sha256": f"{seq:064x}", "url": f"https://t.me/s/example/{seq}{salt}"}
        )
        leaf = leaf_hash(payload.encode())
        log.append(leaf)
        entries.append({"seq": seq, "payload": payload, "leaf_hash": leaf.hex()})
        if (seq + 1) % every == 0 or seq == n - 1:
            heads.append(sign_tree_head(key, seq + 1, log.root(), T0 + timedelta(minutes=seq)).to_dict())
    return entries, heads


def rewrite(entry: dict[str, object], **changes: object) -> None:
    """Change a payload and recompute its leaf hash, as a careful forger would."""
    doc = {"seq": entry["seq"], "kind": "capture", "sha256": "f" * 64, "url": "https://t.me/s/forged/1"}
    doc.update(changes)
    entry["payload"] = canonical_text(doc)
    entry["leaf_hash"] = leaf_hash(str(entry["payload"]).encode()).hex()


def test_an_honest_ledger_verifies() -> None:
    entries, heads = make_ledger()
    result = verify_ledger(entries, heads, KEY.public_key())
    assert result.ok, result.summary()
    assert (result.entries, result.tree_heads) == (N, len(heads))
    assert result.summary().startswith("OK: 23 entries")


def test_changed_payload_is_pinpointed_by_its_leaf_hash() -> None:
    entries, heads = make_ledger()
    entries[11]["payload"] = str(entries[11]["payload"]).replace("example", "exampl3")
    result = verify_ledger(entries, heads, KEY.public_key())
    assert not result.ok
    assert (result.first_bad_seq, result.item) == (11, "seq 11")
    assert "leaf hash" in (result.reason or "")


def test_changed_payload_with_recomputed_leaf_hash_is_caught_by_the_signed_root() -> None:
    entries, heads = make_ledger()
    rewrite(entries[12])
    result = verify_ledger(entries, heads, KEY.public_key())
    assert not result.ok
    assert result.item == "tree head size=15"  # the first head covering seq 12
    assert result.first_bad_seq == 10  # first seq only that head covers
    assert "[10, 15)" in (result.reason or "")


def test_deleted_entry_is_pinpointed() -> None:
    entries, heads = make_ledger()
    del entries[7]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq, result.item) == (False, 7, "seq 7")
    assert "deleted" in (result.reason or "")


def test_deleted_last_entries_are_caught_by_the_last_head() -> None:
    entries, heads = make_ledger()
    del entries[-2:]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq, result.item) == (False, N - 2, f"tree head size={N}")


def test_reordered_entries_are_pinpointed() -> None:
    entries, heads = make_ledger()
    entries[4], entries[9] = entries[9], entries[4]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq, result.item) == (False, 4, "seq 4")


def test_two_entries_swapped_under_their_seq_numbers_are_pinpointed() -> None:
    """Payload and leaf hash exchanged between seq 3 and 8, seq fields left in place."""
    entries, heads = make_ledger()
    for field in ("payload", "leaf_hash"):
        entries[3][field], entries[8][field] = entries[8][field], entries[3][field]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq, result.item) == (False, 3, "seq 3")
    assert "payload says seq 8" in (result.reason or "")


def test_duplicated_entry_is_pinpointed() -> None:
    entries, heads = make_ledger()
    entries.insert(6, copy.deepcopy(entries[5]))
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq) == (False, 6)


def test_non_canonical_payload_is_pinpointed() -> None:
    entries, heads = make_ledger()
    entries[2]["payload"] = '{"seq": 2}'
    entries[2]["leaf_hash"] = leaf_hash(b'{"seq": 2}').hex()
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 2, "payload is not RFC 8785 canonical JSON")
    assert verify_ledger(entries, heads, KEY.public_key(), check_canonical=False).item == "tree head size=5"


def test_substituted_tree_head_from_another_log_is_named() -> None:
    entries, heads = make_ledger()
    _, other_heads = make_ledger(salt="-other")  # same key, same sizes, other content
    heads[2] = other_heads[2]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.item, result.first_bad_seq) == (False, "tree head size=15", 10)


def test_tree_head_with_altered_root_or_foreign_key_fails_its_signature() -> None:
    entries, heads = make_ledger()
    forged = dict(heads[1])
    forged["root_hash"] = "0" * 64
    result = verify_ledger(entries, [heads[0], forged, *heads[2:]], KEY.public_key())
    assert (result.ok, result.item) == (False, "tree head size=10")
    assert "signature" in (result.reason or "")
    _, foreign = make_ledger(key=Ed25519PrivateKey.generate())
    result = verify_ledger(entries, foreign, KEY.public_key())
    assert (result.ok, result.item) == (False, "tree head size=5")


def test_swapped_tree_heads_are_caught_by_their_order() -> None:
    entries, heads = make_ledger()
    heads[1], heads[3] = heads[3], heads[1]
    result = verify_ledger(entries, heads, KEY.public_key())
    assert not result.ok
    # stored order is now 5, 20, 15, 10, 23: the order first breaks at 15, stored after 20
    assert result.item == "tree head size=15"
    assert "after the head of size 20 but signed earlier" in (result.reason or "")


def test_malformed_tree_head_is_named_by_position() -> None:
    entries, heads = make_ledger()
    heads[0] = {**heads[0], "size": "five"}
    result = verify_ledger(entries, heads, KEY.public_key())
    assert (result.ok, result.item) == (False, "tree head #0")


def test_malformed_entries_are_named() -> None:
    entries, heads = make_ledger()
    entries[0]["leaf_hash"] = "not hex"
    assert verify_ledger(entries, heads, KEY.public_key()).item == "seq 0"
    entries, heads = make_ledger()
    entries[1]["seq"] = "1"
    assert verify_ledger(entries, heads, KEY.public_key()).first_bad_seq == 1
    entries, heads = make_ledger()
    entries[1]["payload"] = None
    assert verify_ledger(entries, heads, KEY.public_key()).reason == "payload is missing or not text"


def test_empty_ledger_with_no_heads_verifies() -> None:
    assert verify_ledger([], [], KEY.public_key()).ok


async def test_async_cursor_variant_agrees() -> None:
    entries, heads = make_ledger()

    async def cursor(items: list[dict[str, object]]) -> AsyncIterator[dict[str, object]]:
        for item in items:
            yield item

    assert (await verify_ledger_async(cursor(entries), heads, KEY.public_key())).ok
    del entries[3]
    bad = await verify_ledger_async(cursor(entries), heads, KEY.public_key())
    assert (bad.ok, bad.first_bad_seq) == (False, 3)


@pytest.mark.parametrize("n", [1, 2, 5, 64, 65])
def test_heads_at_every_size_verify(n: int) -> None:
    entries, heads = make_ledger(n=n, every=1)
    assert verify_ledger(entries, heads, KEY.public_key()).ok
