"""Evidence ledger: batched appends/s into the embedded store, and inclusion-proof time at 1M entries.

Goal (issue 7): >= 2,000 appends/s and an inclusion proof in < 50 ms at 1,000,000 entries.
Run: ``python bench/ledger.py [--entries 1000000] [--append-entries 20000] [--batch 500]``.

Two phases, both against one embedded nx-27017 store in a temporary data dir:

1. *appends*: ``--append-entries`` capture-shaped entries through ``Ledger.append_many`` in batches
   of ``--batch``: the real path (writer lease, tail read, canonical JSON, leaf hashes, entry insert,
   Merkle node insert, lease release) with a head signed every 1,000 entries;
2. *proofs at scale*: filling 1,000,000 entries through ``append_many`` would take most of an hour
   on the embedded server, so the rest of the ``--entries`` tree is built in bulk: entry documents
   of the same shape inserted with ``insert_many`` and the Merkle nodes computed with
   ``merkle.append_nodes`` and written through the same ``MongoNodeStore.put_nodes``. Then random
   inclusion and consistency proofs are taken through ``Ledger`` (each one verified against the
   root) and timed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from _table import Row, print_table

import config
from crawler.evidence.canonical import canonical_text
from crawler.evidence.heads import HeadSigner
from crawler.evidence.ledger import Ledger
from crawler.evidence.merkle import append_nodes, leaf_hash, verify_consistency, verify_inclusion
from crawler.evidence.signing import generate_key, load_private_key
from storage.client import open_store

WORKER = "bench:1"


def capture(i: int) -> dict[str, object]:
    return {
        "kind": "capture",
        "item": "message",
        "message": f"chan{i % 50}/{i}",
        "channel": f"chan{i % 50}",
        "version": 1,
        "record_sha256": f"{i:064x}",
        "raw_sha256": f"{i * 7:064x}",
        "raw_kind": "html",
        "source_url": f"https://t.me/s/chan{i % 50}/{i}",
        "captured_at": "2026-01-01T00:00:00.000000Z",
        "worker": WORKER,
        "account": None,
        "authorization": None,
        "cases": [],
        "subjects": [f"message:chan{i % 50}/{i}", f"channel:chan{i % 50}"],
    }


async def run(entries: int, append_entries: int, batch: int, samples: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.load(data_dir=Path(tmp), log_level="WARNING")
        generate_key(Path(tmp) / "keys")
        signer = HeadSigner(load_private_key(Path(tmp) / "keys" / "evidence-ed25519.pem"), every_entries=1000)
        async with open_store(settings) as store:
            ledger = Ledger(store, signer=signer)
            append_entries = min(append_entries, entries)
            t0 = time.perf_counter()
            for start in range(0, append_entries, batch):
                await ledger.append_many([capture(i) for i in range(start, min(start + batch, append_entries))])
            append_s = time.perf_counter() - t0

            # bulk fill up to `entries` through the same collections and node store
            t0 = time.perf_counter()
            tree = await ledger.current_tree()
            frontier_nodes = await ledger.nodes.get_nodes(_frontier(tree.size))
            frontier = [frontier_nodes[k] for k in _frontier(tree.size)]
            size = tree.size
            chunk = 20_000
            while size < entries:
                docs, leaves = [], []
                for seq in range(size, min(size + chunk, entries)):
                    payload = canonical_text({**capture(seq), "seq": seq, "logged_at": "2026-01-01T00:00:00.000000Z"})
                    leaf = leaf_hash(payload.encode())
                    leaves.append(leaf)
                    docs.append(
                        {
                            "_id": seq,
                            "seq": seq,
                            "payload": payload,
                            "leaf_hash": leaf.hex(),
                            "kind": "capture",
                            "at": "2026-01-01T00:00:00.000000Z",
                            "cases": [],
                            "subjects": [],
                        }
                    )
                await store["ledger"].insert_many(docs, ordered=False)
                nodes, frontier = append_nodes(size, frontier, leaves)
                await ledger.nodes.put_nodes(nodes)
                size += len(docs)
            await store["ledger_writer"].update_one({"_id": "writer"}, {"$set": {"nodes_size": size}})
            fill_s = time.perf_counter() - t0

            ledger = Ledger(store)  # a fresh reader, nothing cached
            root = await ledger.root()
            rng = random.Random(7)
            inclusion, consistency = [], []
            for _ in range(samples):
                seq = rng.randrange(size)
                t = time.perf_counter()
                path = await ledger.inclusion_proof(seq, size)
                inclusion.append(time.perf_counter() - t)
                entry = await ledger.entry(seq)
                assert entry is not None
                assert verify_inclusion(bytes.fromhex(entry["leaf_hash"]), seq, size, path, root)
                first = rng.randrange(1, size + 1)
                t = time.perf_counter()
                proof = await ledger.consistency_proof(first, size)
                consistency.append(time.perf_counter() - t)
                assert verify_consistency(first, size, proof, await ledger.root(first), root)
    inclusion.sort()
    return [
        Row("appends via Ledger.append_many", "entries", append_entries),
        Row("batched appends", "entries/s", append_entries / append_s, goal=">= 2,000"),
        Row("bulk fill (insert_many + put_nodes)", "entries/s", (size - append_entries) / fill_s if fill_s else 0.0),
        Row("tree size for proofs", "entries", size),
        Row("inclusion proof mean", "ms", statistics.fmean(inclusion) * 1e3, goal="< 50"),
        Row("inclusion proof p99", "ms", inclusion[int(0.99 * (len(inclusion) - 1))] * 1e3),
        Row("consistency proof mean", "ms", statistics.fmean(consistency) * 1e3),
    ]


def _frontier(size: int) -> list[tuple[int, int]]:
    from crawler.evidence.merkle import frontier_keys

    return frontier_keys(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="tree size for the proof timings")
    parser.add_argument("--append-entries", type=int, default=20_000, help="entries appended through the real path")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    rows = asyncio.run(run(args.entries, args.append_entries, args.batch, args.samples))
    print_table(rows, "evidence ledger (embedded store)")


if __name__ == "__main__":
    main()
