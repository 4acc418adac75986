"""The MongoDB ledger: gapless seqs, proofs, heads, tampering in the store pinpointed, two writers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pymerkle import InmemoryTree

from crawler.evidence.heads import HeadSigner
from crawler.evidence.ledger import Ledger
from crawler.evidence.merkle import leaf_hash, verify_consistency, verify_inclusion
from crawler.evidence.signing import generate_key, load_private_key, load_public_key, sign_tree_head
from crawler.evidence.verify_ledger import LedgerCheck, verify_ledger_async
from foundation.models import utcnow
from storage.client import Store


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    generate_key(tmp_path / "keys")
    return tmp_path / "keys"


def signer_for(key_dir: Path, every: int = 1000) -> HeadSigner:
    return HeadSigner(load_private_key(key_dir / "evidence-ed25519.pem"), every_entries=every, every_seconds=3600)


async def check(ledger: Ledger, key_dir: Path) -> LedgerCheck:
    public = load_public_key((key_dir / "evidence-ed25519.pub.pem").read_bytes())
    heads = [{k: h[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")} for h in await ledger.heads()]
    return await verify_ledger_async(ledger.iter_entries(), heads, public)


async def test_appends_are_gapless_and_proofs_verify(store: Store) -> None:
    ledger = Ledger(store)
    seqs = [await ledger.append({"kind": "query", "n": i}) for i in range(5)]
    batch = await ledger.append_many([{"kind": "query", "n": i} for i in range(5, 37)])
    assert seqs + [a.seq for a in batch] == list(range(37))
    docs = await ledger.entries()
    assert [d["seq"] for d in docs] == list(range(37))
    assert all(json.loads(d["payload"])["seq"] == d["seq"] for d in docs)
    root = await ledger.root()
    for seq in (0, 1, 17, 36):
        proof = await ledger.inclusion_proof(seq)
        assert verify_inclusion(bytes.fromhex(docs[seq]["leaf_hash"]), seq, 37, proof, root)
    for first in (1, 5, 16, 36):
        proof = await ledger.consistency_proof(first, 37)
        assert verify_consistency(first, 37, proof, await ledger.root(first), root)


async def test_roots_match_an_independent_rfc9162_implementation(store: Store) -> None:
    ledger = Ledger(store)
    reference = InmemoryTree(algorithm="sha256")
    for size in (1, 2, 3, 7, 8, 13):
        appended = await ledger.append_many([{"kind": "query", "i": size * 100 + j} for j in range(size)])
        for a in appended:
            reference.append_entry(a.payload.encode())
        total = reference.get_size()
        assert await ledger.root() == reference.get_root(total)
        if total > size:
            assert await ledger.root(total - size) == reference.get_root(total - size)


async def test_a_new_ledger_object_continues_the_same_tree(store: Store) -> None:
    await Ledger(store).append_many([{"kind": "query", "i": i} for i in range(11)])
    later = Ledger(store)
    await later.append_many([{"kind": "query", "i": i} for i in range(11, 20)])
    fresh = Ledger(store)
    reference = InmemoryTree(algorithm="sha256")
    for d in await fresh.entries():
        reference.append_entry(d["payload"].encode())
    assert await fresh.root() == reference.get_root(20)


async def test_heads_every_n_entries_and_the_whole_ledger_verifies(store: Store, key_dir: Path) -> None:
    ledger = Ledger(store, signer=signer_for(key_dir, every=10))
    for i in range(35):
        await ledger.append({"kind": "query", "i": i})
    sizes = [h["size"] for h in await ledger.heads()]
    assert sizes == [10, 20, 30]
    assert all(h["tsa"] is None for h in await ledger.heads())
    result = await check(ledger, key_dir)
    assert result.ok, result.summary()
    assert (result.entries, result.tree_heads) == (35, 3)


async def _tampering_setup(store: Store, key_dir: Path) -> Ledger:
    ledger = Ledger(store, signer=signer_for(key_dir, every=8))
    await ledger.append_many([{"kind": "query", "i": i} for i in range(8)])
    await ledger.append_many([{"kind": "query", "i": i} for i in range(8, 16)])
    await ledger.append_many([{"kind": "query", "i": i} for i in range(16, 24)])
    assert (await check(ledger, key_dir)).ok
    return ledger


async def test_changed_payload_in_the_store_is_pinpointed(store: Store, key_dir: Path) -> None:
    ledger = await _tampering_setup(store, key_dir)
    doc = await store["ledger"].find_one({"_id": 11})
    assert doc is not None
    await store["ledger"].update_one({"_id": 11}, {"$set": {"payload": doc["payload"].replace('"i":11', '"i":99')}})
    result = await check(ledger, key_dir)
    assert not result.ok and result.first_bad_seq == 11


async def test_changed_payload_with_recomputed_leaf_hash_is_caught_by_the_signed_head(
    store: Store, key_dir: Path
) -> None:
    ledger = await _tampering_setup(store, key_dir)
    doc = await store["ledger"].find_one({"_id": 11})
    assert doc is not None
    payload = doc["payload"].replace('"i":11', '"i":99')
    await store["ledger"].update_one(
        {"_id": 11}, {"$set": {"payload": payload, "leaf_hash": leaf_hash(payload.encode()).hex()}}
    )
    result = await check(ledger, key_dir)
    assert not result.ok and result.item == "tree head size=16" and result.first_bad_seq == 8


async def test_deleted_entry_is_pinpointed(store: Store, key_dir: Path) -> None:
    ledger = await _tampering_setup(store, key_dir)
    await store["ledger"].delete_one({"_id": 5})
    result = await check(ledger, key_dir)
    assert not result.ok and result.first_bad_seq == 5 and "deleted" in (result.reason or "")


async def test_reordered_entries_are_pinpointed(store: Store, key_dir: Path) -> None:
    ledger = await _tampering_setup(store, key_dir)
    a, b = await store["ledger"].find_one({"_id": 3}), await store["ledger"].find_one({"_id": 4})
    assert a is not None and b is not None
    # the two documents' contents change places (their _id/seq slots stay)
    await store["ledger"].update_one({"_id": 3}, {"$set": {"payload": b["payload"], "leaf_hash": b["leaf_hash"]}})
    await store["ledger"].update_one({"_id": 4}, {"$set": {"payload": a["payload"], "leaf_hash": a["leaf_hash"]}})
    result = await check(ledger, key_dir)
    assert not result.ok and result.first_bad_seq == 3 and "seq" in (result.reason or "")


async def test_swapped_tree_head_is_detected(store: Store, key_dir: Path) -> None:
    ledger = await _tampering_setup(store, key_dir)
    h8, h16 = await store["ledger_heads"].find_one({"_id": 8}), await store["ledger_heads"].find_one({"_id": 16})
    assert h8 is not None and h16 is not None
    # the head of size 16 now claims the root of size 8 (with its valid signature for that root)
    await store["ledger_heads"].replace_one({"_id": 16}, {**h16, "root_hash": h8["root_hash"]})
    result = await check(ledger, key_dir)
    assert not result.ok and result.item == "tree head size=16"
    # a head re-signed for the right root by another key is refused as well
    generate_key(key_dir.parent / "other")
    other = load_private_key(key_dir.parent / "other" / "evidence-ed25519.pem")
    forged = sign_tree_head(other, 16, await ledger.root(16), utcnow())
    await store["ledger_heads"].replace_one({"_id": 16}, {"_id": 16, **forged.to_dict(), "tsa": None})
    result = await check(ledger, key_dir)
    assert not result.ok and result.item == "tree head size=16" and "signature" in (result.reason or "")


async def test_tsa_unreachable_is_recorded_never_faked(store: Store, key_dir: Path) -> None:
    from crawler.evidence.heads import TsaClient

    signer = signer_for(key_dir, every=2)
    signer.tsa = TsaClient("http://127.0.0.1:9/tsa", timeout=2.0)
    ledger = Ledger(store, signer=signer)
    await ledger.append_many([{"kind": "query"}, {"kind": "query"}])
    heads = await ledger.heads()
    assert len(heads) == 1
    tsa = heads[0]["tsa"]
    assert tsa["url"] == "http://127.0.0.1:9/tsa" and tsa["error"] and "token" not in tsa


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pymongo import AsyncMongoClient
    from crawler.evidence.ledger import Ledger
    from storage.client import Store

    async def main(uri, name, tag):
        client = AsyncMongoClient(uri, tz_aware=True)
        store = Store(client=client, db=client[name], uri=uri, kind="embedded")
        ledger = Ledger(store, lease_seconds=5.0)
        for i in range(30):
            await ledger.append_many([{"kind": "query", "writer": tag, "i": i, "j": j} for j in range(1 + i % 4)])
        await client.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_two_processes_appending_keep_seq_gapless(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen([sys.executable, str(script), embedded_uri, store.db.name, tag], cwd=root)
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    per_writer = sum(1 + i % 4 for i in range(30))
    ledger = Ledger(store)
    docs = await ledger.entries()
    assert [d["seq"] for d in docs] == list(range(2 * per_writer))
    writers = [json.loads(d["payload"])["writer"] for d in docs]
    assert writers.count("a") == writers.count("b") == per_writer
    reference = InmemoryTree(algorithm="sha256")
    for d in docs:
        reference.append_entry(d["payload"].encode())
    assert await ledger.root() == reference.get_root(len(docs))
