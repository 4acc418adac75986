"""What a collection owner that lives outside storage/ needs from the database driver, by our names.

Why: only storage/ imports pymongo (docs/architecture.md, tests/test_architecture.py), yet a few
owners sit in their feature (the evidence ledger, the candidate and target repositories). They take
the duplicate-key signal, the collection type and the insert helpers from here, so a driver change
is a change to storage/ alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import InsertOne, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from storage.client import DUPLICATE_KEY, Doc, translate_errors

__all__ = [
    "RETURN_AFTER",
    "DuplicateKeyError",
    "StoreCollection",
    "duplicate_only",
    "insert_keeping_duplicates",
    "insert_once",
]

#: one collection of the store, as ``Store[name]`` returns it
StoreCollection = AsyncCollection[Doc]

#: ``find_one_and_update(..., return_document=RETURN_AFTER)`` returns the document as updated
RETURN_AFTER: Any = ReturnDocument.AFTER


async def insert_once(coll: StoreCollection, doc: Doc, action: str) -> bool:
    """Insert a document keyed by a natural ``_id``; False when that id is already stored."""
    with translate_errors(action):
        try:
            await coll.insert_one(doc)
        except DuplicateKeyError:
            return False
    return True


async def insert_keeping_duplicates(coll: StoreCollection, docs: Sequence[Doc], action: str) -> list[Any]:
    """Insert every document (unordered); return the ``_id`` of each one that was already stored.

    For content-addressed documents whose caller must compare a stored copy with its own (the
    ledger's Merkle nodes): any failure other than a duplicate key is a ``StoreError``.
    """
    if not docs:
        return []
    with translate_errors(action):
        try:
            await coll.bulk_write([InsertOne(d) for d in docs], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [docs[e["index"]]["_id"] for e in errors]
    return []


def duplicate_only(cause: BaseException | None) -> bool:
    """True when a failed insert (the ``__cause__`` of a ``StoreError``) failed only on taken ids
    and wrote nothing: the sign that another writer got there first."""
    if isinstance(cause, DuplicateKeyError):
        return True
    if isinstance(cause, BulkWriteError):
        errors = cause.details.get("writeErrors", [])
        return int(cause.details.get("nInserted", 0)) == 0 and all(e.get("code") == DUPLICATE_KEY for e in errors)
    return False
