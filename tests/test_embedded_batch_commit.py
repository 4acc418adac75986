"""One SQLite transaction per insert command on the embedded server (storage/_nx_27017_unix.py).

nx-27017 inserts a command's documents one by one on an autocommit connection (one commit each);
tgwatch's listener wraps the command in one transaction. These tests pin both halves: the commit
is one per command, and what the driver sees (new ids stored, a duplicate ``_id`` reported as a
write error without losing the others) is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from storage._nx_27017_unix import batch_commit_handler
from storage.client import insert_new


def _insert(handler: Any, coll: str, docs: list[dict[str, Any]], request_id: int) -> dict[str, Any]:
    msg = {
        "request_id": request_id,
        "sections": [("body", {"insert": coll, "$db": "tgw", "ordered": False}), ("payload_docs", docs)],
    }
    _, reply = handler.handle_insert(msg)
    return dict(reply)


def test_every_document_of_one_insert_command_is_written_inside_one_transaction(tmp_path: Path) -> None:
    handler = batch_commit_handler(tmp_path, "WAL")
    _insert(handler, "things", [{"_id": "warm-up"}], 1)  # table and connection exist from here on
    conn = handler.get_database("tgw").db
    inserts_in_transaction: list[bool] = []

    def on_statement(sql: str) -> None:
        if sql.lstrip().upper().startswith("INSERT"):
            inserts_in_transaction.append(conn.in_transaction)

    conn.set_trace_callback(on_statement)
    reply = _insert(handler, "things", [{"_id": f"d{i}", "n": i} for i in range(20)], 2)
    conn.set_trace_callback(None)

    assert reply["ok"] == 1 and reply["n"] == 20
    assert len(inserts_in_transaction) == 20
    assert all(inserts_in_transaction), "a document was committed on its own (autocommit)"
    assert not conn.in_transaction  # committed at the end of the command
    stored = {d["_id"] for d in handler.get_database("tgw")["things"].find({})}
    assert stored == {"warm-up", *(f"d{i}" for i in range(20))}


def test_every_statement_of_one_update_command_is_applied_inside_one_transaction(tmp_path: Path) -> None:
    handler = batch_commit_handler(tmp_path, "WAL")
    _insert(handler, "things", [{"_id": f"d{i}", "n": i} for i in range(10)], 1)
    conn = handler.get_database("tgw").db
    writes_in_transaction: list[bool] = []

    def on_statement(sql: str) -> None:
        if sql.lstrip().upper().startswith(("UPDATE", "INSERT")):
            writes_in_transaction.append(conn.in_transaction)

    conn.set_trace_callback(on_statement)
    updates = [{"q": {"_id": f"d{i}"}, "u": {"_id": f"d{i}", "n": i * 10}, "upsert": True} for i in range(12)]
    msg = {
        "request_id": 2,
        "sections": [("body", {"update": "things", "$db": "tgw", "ordered": False}), ("payload", {"updates": updates})],
    }
    _, reply = handler.handle_command(msg)
    conn.set_trace_callback(None)

    assert reply["ok"] == 1 and reply["n"] == 12 and reply["nModified"] == 10
    assert [u["_id"] for u in reply["upserted"]] == ["d10", "d11"]
    assert len(writes_in_transaction) >= 12 and all(writes_in_transaction)
    assert not conn.in_transaction
    docs = {d["_id"]: d["n"] for d in handler.get_database("tgw")["things"].find({})}
    assert docs == {f"d{i}": i * 10 for i in range(12)}


def test_a_duplicate_id_fails_alone_and_the_rest_of_the_command_is_committed(tmp_path: Path) -> None:
    handler = batch_commit_handler(tmp_path, "WAL")
    _insert(handler, "things", [{"_id": "d5", "n": "old"}], 1)
    reply = _insert(handler, "things", [{"_id": f"d{i}", "n": i} for i in range(10)], 2)

    assert reply["n"] == 9
    assert [e["index"] for e in reply["writeErrors"]] == [5]
    assert reply["writeErrors"][0]["code"] == 11000
    conn = handler.get_database("tgw").db
    assert not conn.in_transaction
    docs = {d["_id"]: d["n"] for d in handler.get_database("tgw")["things"].find({})}
    assert docs == {**{f"d{i}": i for i in range(10)}, "d5": "old"}


async def test_over_the_wire_a_replayed_batch_stores_only_what_is_new(db: AsyncDatabase[dict[str, Any]]) -> None:
    coll = db["things"]
    assert await insert_new(coll, [{"_id": f"k{i}"} for i in range(0, 300, 2)], "first") == 150
    # a replay overlapping the first batch: half new, half already stored
    assert await insert_new(coll, [{"_id": f"k{i}"} for i in range(300)], "replay") == 150
    assert await coll.estimated_document_count() == 300
    result = await coll.bulk_write([InsertOne({"_id": "fresh"})], ordered=False)
    assert result.inserted_count == 1
