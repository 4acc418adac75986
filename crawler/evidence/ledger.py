"""The append-only evidence ledger in MongoDB: gapless ``seq``, RFC 9162 tree, one writer at a time.

Layout (declared in ``storage/schema.py``):

- ``ledger``: ``_id = seq`` (0-based, gapless: the RFC 9162 leaf index; repeated as an indexed ``seq``
  field, which is what queries sort on: the embedded server orders ``_id`` values as text). ``payload`` is the RFC 8785
  canonical JSON text of the entry (it carries its own ``seq``), ``leaf_hash`` = SHA-256(0x00 ‖
  payload) in hex; ``kind``, ``at``, ``cases`` and ``subjects`` repeat payload members so queries
  use indexes (and ``capture_of`` = ``<message key>/v<version>`` on message captures, which makes the
  capture stage idempotent). Only the payload is evidence; the copies are conveniences.
- ``ledger_nodes``: ``_id = "<level>/<index>"`` for level ≥ 1, the complete-subtree hashes of
  :mod:`.merkle`; level 0 *is* ``ledger.leaf_hash``, so an entry costs one document plus about one
  node. A node is inserted once and never changed (a re-put must carry the same hash).
- ``ledger_writer``: one document ``_id = "writer"``: the single-writer lease (``holder``, ``until``)
  and ``nodes_size`` (how many leaves the node collection fully covers).

Concurrency. Several processes may append. Each append batch takes the writer lease (an atomic
``find_one_and_update`` guarded by ``until < now or holder == me``, upserting the first time), reads
the tail (``max(_id) + 1``), builds the payloads with their seqs, and inserts them *by ``_id``*. The
insert is the fence: should a lease expire under a stalled writer and a second one take over, one
of the two inserts hits a duplicate key and that batch is rebuilt on the new tail, so ``seq`` stays
gapless and unique whatever the timing. Nodes are written after the entries; a writer that dies in
between leaves ``nodes_size`` behind the tail, and the next lease holder recomputes the missing nodes
from the stored leaf hashes before appending.

Tree heads are signed under the same lease (see :mod:`.heads`) so their sizes and timestamps grow
together.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crawler.evidence.canonical import canonical_text, rfc3339_utc
from crawler.evidence.entries import jsonable
from crawler.evidence.merkle import EMPTY_ROOT, AsyncMerkleLog, NodeKey, leaf_hash
from foundation.errors import StoreError
from foundation.logs import get_logger
from foundation.models import utcnow
from storage.client import Doc, Store, translate_errors
from storage.owners import RETURN_AFTER, DuplicateKeyError, duplicate_only, insert_keeping_duplicates

if TYPE_CHECKING:
    from crawler.evidence.heads import HeadSigner

log = get_logger(__name__)

WRITER_ID = "writer"


def _node_id(key: NodeKey) -> str:
    return f"{key[0]}/{key[1]}"


class MongoNodeStore:
    """:class:`~crawler.evidence.merkle.AsyncNodeStore` over ``ledger`` (level 0) + ``ledger_nodes``."""

    def __init__(self, store: Store) -> None:
        self._entries = store["ledger"]
        self._nodes = store["ledger_nodes"]

    async def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        leaves = [i for lvl, i in keys if lvl == 0]
        inner = [_node_id(k) for k in keys if k[0] > 0]
        out: dict[NodeKey, bytes] = {}
        with translate_errors("read ledger nodes"):
            if leaves:
                async for doc in self._entries.find({"_id": {"$in": leaves}}, {"leaf_hash": 1}):
                    out[(0, int(doc["_id"]))] = bytes.fromhex(doc["leaf_hash"])
            if inner:
                async for doc in self._nodes.find({"_id": {"$in": inner}}):
                    level, index = doc["_id"].split("/")
                    out[(int(level), int(index))] = bytes.fromhex(doc["h"])
        return out

    async def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Insert the inner nodes; a node already there must have the same hash (``StoreError`` if not).

        Level-0 nodes are not written: they are the entries' own ``leaf_hash``.
        """
        docs = [{"_id": _node_id(k), "h": h.hex()} for k, h in nodes.items() if k[0] > 0]
        if not docs:
            return
        dup_ids = await insert_keeping_duplicates(self._nodes, docs, "write ledger nodes")
        if not dup_ids:
            return
        want = {d["_id"]: d["h"] for d in docs}
        with translate_errors("write ledger nodes"):
            async for doc in self._nodes.find({"_id": {"$in": dup_ids}}):
                if doc["h"] != want[doc["_id"]]:
                    raise StoreError(f"merkle node {doc['_id']} already stored with another hash") from None


@dataclass(frozen=True)
class Appended:
    """One appended entry: its seq, leaf hash (hex) and canonical payload."""

    seq: int
    leaf_hash: str
    payload: str


class Ledger:
    """``append(entry) -> seq``, ``tree_head()``, ``inclusion_proof(seq)``, ``consistency_proof(a, b)``."""

    def __init__(
        self,
        store: Store,
        *,
        holder: str | None = None,
        lease_seconds: float = 30.0,
        wait_seconds: float = 60.0,
        signer: HeadSigner | None = None,
    ) -> None:
        self.store = store
        self._entries = store["ledger"]
        self._heads = store["ledger_heads"]
        self._writer = store["ledger_writer"]
        self.nodes = MongoNodeStore(store)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.signer = signer
        self._local = asyncio.Lock()
        self._log: AsyncMerkleLog | None = None

    # -- the writer lease -----------------------------------------------------------------------
    async def _try_lease(self) -> Doc | None:
        now = time.time()
        with translate_errors("take the ledger writer lease"):
            try:
                return await self._writer.find_one_and_update(
                    # not {"_id", "$or"}: the embedded server drops the _id from such an update filter
                    {"$and": [{"_id": WRITER_ID}, {"$or": [{"until": {"$lt": now}}, {"holder": self.holder}]}]},
                    {"$set": {"holder": self.holder, "until": now + self.lease_seconds}},
                    upsert=True,
                    return_document=RETURN_AFTER,
                )
            except DuplicateKeyError:
                return None

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Doc]:
        """Hold the single-writer lease (in this process and across processes) for one batch."""
        async with self._local:
            deadline = time.monotonic() + self.wait_seconds
            delay = 0.005
            while True:
                lease = await self._try_lease()
                if lease is not None and lease.get("holder") == self.holder:
                    break
                if time.monotonic() > deadline:
                    raise StoreError(f"ledger writer lease still held by another process after {self.wait_seconds:g}s")
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)
            try:
                yield lease
            finally:
                with translate_errors("release the ledger writer lease"):
                    await self._writer.update_one({"_id": WRITER_ID, "holder": self.holder}, {"$set": {"until": 0.0}})

    # -- reading the tail --------------------------------------------------------------------------
    async def size(self) -> int:
        """Entries stored: ``max(seq) + 1`` (the collection is gapless by construction)."""
        with translate_errors("read ledger tail"):
            last = await self._entries.find_one({}, {"_id": 1}, sort=[("seq", -1)])
        return 0 if last is None else int(last["_id"]) + 1

    async def locked_tree(self, lease: Doc) -> AsyncMerkleLog:
        """The tree at the current tail (caller holds ``lease``), repaired if a writer died after its entries."""
        size = await self.size()
        if self._log is not None and self._log.size == size:
            return self._log
        nodes_size = int(lease.get("nodes_size", 0))
        if nodes_size > size:  # only possible if entries were deleted: a tampered store
            raise StoreError(f"ledger has {size} entries but its nodes cover {nodes_size}: entries were removed")
        merkle = AsyncMerkleLog(self.nodes, nodes_size)
        if nodes_size < size:
            log.warning("repairing ledger nodes", from_seq=nodes_size, to_seq=size)
            with translate_errors("read ledger leaves"):
                cursor = self._entries.find({"_id": {"$gte": nodes_size}}, {"leaf_hash": 1}).sort("seq", 1)
                leaves = [bytes.fromhex(d["leaf_hash"]) async for d in cursor]
            await merkle.extend(leaves)
            await self._set_nodes_size(merkle.size)
        self._log = merkle
        return merkle

    async def _set_nodes_size(self, size: int) -> None:
        with translate_errors("record ledger nodes size"):
            await self._writer.update_one(
                {"_id": WRITER_ID, "holder": self.holder},
                {"$set": {"nodes_size": size}},
            )

    # -- appending -----------------------------------------------------------------------------------
    async def append(self, entry: Mapping[str, Any]) -> int:
        """Append one entry (a JSON-able mapping with ``kind``); returns its seq."""
        return (await self.append_many([entry]))[0].seq

    async def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """Append entries in order with consecutive seqs; one lease, one insert, one node write."""
        if not entries:
            return []
        for entry in entries:
            if not isinstance(entry.get("kind"), str):
                raise ValueError(f"ledger entry without a kind: {sorted(entry)}")
        base = [jsonable(dict(e)) for e in entries]
        for attempt in range(20):
            async with self.writing() as lease:
                merkle = await self.locked_tree(lease)
                start = merkle.size
                logged_at = rfc3339_utc(utcnow())
                docs: list[Doc] = []
                out: list[Appended] = []
                for offset, body in enumerate(base):
                    seq = start + offset
                    payload = canonical_text({**body, "seq": seq, "logged_at": body.get("logged_at", logged_at)})
                    leaf = leaf_hash(payload.encode("utf-8")).hex()
                    docs.append(
                        {
                            "_id": seq,
                            "seq": seq,
                            "payload": payload,
                            "leaf_hash": leaf,
                            "kind": body["kind"],
                            "at": logged_at,
                            "cases": [c for c in body.get("cases") or [] if isinstance(c, str)],
                            "subjects": [s for s in body.get("subjects") or [] if isinstance(s, str)],
                        }
                    )
                    if isinstance(body.get("capture_of"), str):
                        docs[-1]["capture_of"] = body["capture_of"]
                    out.append(Appended(seq, leaf, payload))
                try:
                    with translate_errors("append ledger entries"):
                        await self._entries.insert_many(docs, ordered=True)
                except StoreError as exc:
                    if _collided(exc.__cause__):
                        log.info("ledger tail moved under us, rebuilding the batch", attempt=attempt)
                        self._log = None
                        continue
                    raise
                await merkle.extend(bytes.fromhex(a.leaf_hash) for a in out)
                await self._set_nodes_size(merkle.size)
                if self.signer is not None:
                    await self.signer.maybe_sign(self, merkle)
            if self.signer is not None and self.signer.pending_tsa:
                await self.signer.stamp_pending(self)  # outside the lease: a slow TSA must not stall appends
            return out
        raise StoreError("ledger append kept colliding with another writer; giving up after 20 attempts")

    # -- reading -------------------------------------------------------------------------------------
    async def current_tree(self) -> AsyncMerkleLog:
        """A read-only view of the tree at the stored tail (nodes must be complete)."""
        with translate_errors("read ledger writer state"):
            state = await self._writer.find_one({"_id": WRITER_ID}) or {}
        size = await self.size()
        if int(state.get("nodes_size", 0)) < size:
            async with self.writing() as lease:  # repair first: a writer died after its entries
                return await self.locked_tree(lease)
        return AsyncMerkleLog(self.nodes, size)

    async def root(self, size: int | None = None) -> bytes:
        tree = await self.current_tree()
        n = tree.size if size is None else size
        return await tree.root(n) if n else EMPTY_ROOT

    async def inclusion_proof(self, seq: int, tree_size: int | None = None) -> list[bytes]:
        tree = await self.current_tree()
        return await tree.inclusion_proof(seq, tree_size)

    async def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        tree = await self.current_tree()
        return await tree.consistency_proof(first, second)

    async def entries(self, start: int = 0, stop: int | None = None, *, limit: int | None = None) -> list[Doc]:
        flt: Doc = {"_id": {"$gte": start, **({"$lt": stop} if stop is not None else {})}}
        with translate_errors("read ledger entries"):
            cursor = self._entries.find(flt).sort("seq", 1)
            if limit is not None:
                cursor = cursor.limit(limit)
            docs = await cursor.to_list(None)
        return [_entry_out(d) for d in docs]

    async def entry(self, seq: int) -> Doc | None:
        with translate_errors("read ledger entry"):
            doc = await self._entries.find_one({"_id": seq})
        return None if doc is None else _entry_out(doc)

    def iter_entries(self) -> AsyncIterator[Doc]:
        """Every entry in seq order, streamed (for the whole-ledger check)."""
        return _stream(self._entries.find({}, {"payload": 1, "leaf_hash": 1}).sort("seq", 1))

    async def heads(self, *, limit: int | None = None) -> list[Doc]:
        """Stored tree heads, oldest first (``limit`` keeps the newest ones)."""
        with translate_errors("read tree heads"):
            docs = await self._heads.find({}).sort("size", 1).to_list(None)
        return docs[-limit:] if limit else docs

    async def latest_head(self) -> Doc | None:
        with translate_errors("read latest tree head"):
            return await self._heads.find_one({}, sort=[("size", -1)])

    async def store_head(self, size: int, doc: Doc, *, upsert: bool = False, action: str = "store tree head") -> None:
        """Write the tree head of ``size`` (the signer's document, replaced when its TSA token comes)."""
        with translate_errors(action):
            await self._heads.replace_one({"_id": size}, doc, upsert=upsert)

    # -- lookups for other features (they ask the ledger, never its collection) -----------------------
    async def captures_of(self, versions: Sequence[str]) -> list[tuple[str, int]]:
        """``(capture_of, seq)`` of every capture entry of these ``<message key>/v<version>``."""
        if not versions:
            return []
        with translate_errors("read capture entries"):
            cursor = self._entries.find({"capture_of": {"$in": list(versions)}}, {"seq": 1, "capture_of": 1})
            return [(str(d["capture_of"]), int(d["seq"])) async for d in cursor]

    async def latest_seqs(self, subject: str, *, kind: str, limit: int) -> list[int]:
        """The seqs of the newest ``limit`` entries of ``kind`` about ``subject``, in seq order."""
        with translate_errors("read subject entries"):
            cursor = self._entries.find({"subjects": {"$in": [subject]}, "kind": kind}, {"seq": 1})
            seqs = [int(d["seq"]) async for d in cursor.sort("seq", -1).limit(limit)]
        return sorted(seqs)

    async def naming(self, subject: str, limit: int) -> list[Doc]:
        """The first ``limit`` entries naming ``subject`` (e.g. ``message:<channel>/<id>``), in seq order."""
        # ``$in``: an equality match on an indexed array field finds nothing on the embedded store
        with translate_errors("read ledger entries"):
            docs = await self._entries.find({"subjects": {"$in": [subject]}}).sort("seq", 1).limit(limit).to_list(None)
        return [_entry_out(d) for d in docs]

    async def about(
        self, case_id: str, subjects: Sequence[str], *, since: str | None = None, until: str | None = None
    ) -> list[Doc]:
        """Entries naming ``case_id`` or any of ``subjects``, in seq order; ``since``/``until`` are
        RFC 3339 UTC bounds on ``at`` (what ``Cases.entries`` asks; see crawler/evidence/cases.py)."""
        # `$in`, not equality: the embedded server misses equality matches on indexed array fields
        members: list[dict[str, Any]] = [{"cases": {"$in": [case_id]}}]
        if subjects:
            members.append({"subjects": {"$in": list(subjects)}})
        flt: dict[str, Any] = {"$or": members} if len(members) > 1 else members[0]
        span: dict[str, str] = {}
        if since:
            span["$gte"] = since
        if until:
            span["$lte"] = until
        if span:
            flt = {"$and": [flt, {"at": span}]}
        with translate_errors("read case entries"):
            docs = await self._entries.find(flt).sort("seq", 1).to_list(None)
        return [_entry_out(d) for d in docs]

    async def payloads(self, seqs: Sequence[int]) -> list[dict[str, Any]]:
        """The parsed payloads of these entries, in seq order (entries not stored are left out)."""
        with translate_errors("read ledger payloads"):
            docs = await self._entries.find({"_id": {"$in": list(seqs)}}).to_list(None)
        return [json.loads(d["payload"]) for d in sorted(docs, key=lambda d: int(d["seq"]))]


def _collided(cause: BaseException | None) -> bool:
    """True when an insert failed only because its first seq was taken (another writer won)."""
    return duplicate_only(cause)


def _entry_out(doc: Doc) -> Doc:
    out = dict(doc)
    out["seq"] = out.pop("_id")  # the _id is the fence; a tampered "seq" field must not hide a move
    return out


async def _stream(cursor: Any) -> AsyncIterator[Doc]:
    with translate_errors("stream ledger entries"):
        async for doc in cursor:
            yield _entry_out(doc)
