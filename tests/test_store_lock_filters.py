"""Lock semantics of the takedown request lock and the ledger writer lease.

The embedded server drops ``_id`` from an ``{_id, $or}`` filter in ``update_one`` (any document
matching the ``$or`` is changed; ``find_one_and_update`` happened to behave), so every lock filter is
written as an ``$and`` of the two. These tests pin the behaviour the lock must keep: it lands on the
named document only, a held lock is refused, and the writer lease stays one document."""

from __future__ import annotations

import time

from crawler.evidence.ledger import WRITER_ID, Ledger
from storage.client import Store
from storage.repos.takedowns import TakedownRepo


async def test_a_takedown_lock_lands_on_the_request_it_names(store: Store) -> None:
    repo = TakedownRepo(store)
    for request_id in ("TD-000001", "TD-000002"):
        await repo.insert({"_id": request_id, "status": "draft", "lock": None, "lock_until": None})
    now = time.time()
    assert await repo.lock("TD-000002", "holder-b", now, 60)
    first, second = await repo.get("TD-000001"), await repo.get("TD-000002")
    assert first is not None and first["lock"] is None and first["lock_until"] is None
    assert second is not None and second["lock"] == "holder-b"
    # a held lock is refused to another holder, and the free request is still free to lock
    assert not await repo.lock("TD-000002", "holder-c", now + 1, 60)
    assert await repo.lock("TD-000001", "holder-c", now + 1, 60)
    assert (await repo.get("TD-000002") or {})["lock"] == "holder-b"


async def test_the_ledger_writer_lease_is_one_document_named_writer(store: Store) -> None:
    ledger = Ledger(store, holder="process-a", lease_seconds=30)
    async with ledger.writing():
        pass
    async with Ledger(store, holder="process-b", lease_seconds=30).writing():
        pass
    docs = await store["ledger_writer"].find({}).to_list(None)
    assert [d["_id"] for d in docs] == [WRITER_ID] and docs[0]["holder"] == "process-b"
