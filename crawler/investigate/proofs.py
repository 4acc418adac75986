"""Ledger inclusion proofs for a message: which ledger entries name it, and the RFC 9162 path from
each to the newest signed tree head.

An entry appended after the newest signed head cannot be proved yet; it is listed with
``status = "awaiting signed head"`` rather than left out, so an investigator sees it is recorded.
"""

from __future__ import annotations

from typing import Any

from crawler.evidence.ledger import Ledger
from crawler.evidence.redaction import Readership, entry_restriction, withheld
from crawler.investigate.serialize import jsonable
from storage.client import Store

MAX_ENTRIES = 20
HEAD_FIELDS = ("size", "root_hash", "timestamp", "signature", "key_id")


async def subject_proofs(store: Store, subject: str, readers: Readership) -> dict[str, Any]:
    """Entries naming ``subject`` (e.g. ``message:<channel>/<id>``), each with its inclusion proof; a
    watchlist entry (a takedown made from a watchlist match) ``readers`` may not read is withheld."""
    ledger = Ledger(store)
    docs = await ledger.naming(subject, MAX_ENTRIES)
    head = await ledger.latest_head()
    size = int(head["size"]) if head else 0
    entries = []
    for doc in docs:
        seq = int(doc["seq"])
        item: dict[str, Any] = {
            "seq": seq,
            "kind": doc.get("kind"),
            "at": jsonable(doc.get("at")),
            "leaf_hash": doc.get("leaf_hash"),
            "payload": doc.get("payload"),
        }
        if not readers.may_read(entry_restriction(doc)):
            item.update(withheld(doc), at=None)
        if seq < size:
            path = await ledger.inclusion_proof(seq, size)
            item.update(status="proved", tree_size=size, inclusion_proof=[p.hex() for p in path])
        else:
            item.update(status="awaiting signed head", tree_size=None, inclusion_proof=None)
        entries.append(item)
    return {
        "subject": subject,
        "tree_head": {k: head.get(k) for k in HEAD_FIELDS} if head else None,
        "entries": entries,
    }
