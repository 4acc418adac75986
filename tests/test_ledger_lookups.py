"""Other features ask the ``Ledger`` for entries (captures of message versions, a subject's newest
entries, payloads by seq, a case's entries) instead of querying its collection: these lookups return
what the old raw queries returned."""

from __future__ import annotations

import json

from crawler.evidence.cases import Cases
from crawler.evidence.ledger import Ledger
from storage.client import Store


async def _filled(store: Store) -> Ledger:
    ledger = Ledger(store)
    await ledger.append_many(
        [
            {"kind": "capture", "capture_of": "news/1/v1", "subjects": ["channel:news", "message:news/1"]},
            {"kind": "capture", "capture_of": "news/1/v2", "subjects": ["channel:news", "message:news/1"]},
            {"kind": "capture", "capture_of": "other/5/v1", "subjects": ["channel:other", "message:other/5"]},
            {"kind": "verdict", "subjects": ["channel:news"]},
            {"kind": "capture", "capture_of": "news/2/v1", "subjects": ["channel:news", "message:news/2"]},
        ]
    )
    return ledger


async def test_captures_of_names_each_capture_entry_by_version(store: Store) -> None:
    ledger = await _filled(store)
    found = await ledger.captures_of(["news/1/v1", "news/1/v2", "news/1/v3", "news/2/v1"])
    assert sorted(found) == [("news/1/v1", 0), ("news/1/v2", 1), ("news/2/v1", 4)]
    assert await ledger.captures_of([]) == []


async def test_latest_seqs_keeps_the_newest_entries_of_a_kind_in_seq_order(store: Store) -> None:
    ledger = await _filled(store)
    assert await ledger.latest_seqs("channel:news", kind="capture", limit=2) == [1, 4]
    assert await ledger.latest_seqs("channel:news", kind="capture", limit=10) == [0, 1, 4]
    assert await ledger.latest_seqs("channel:gone", kind="capture", limit=10) == []


async def test_payloads_are_parsed_in_seq_order_and_missing_seqs_left_out(store: Store) -> None:
    ledger = await _filled(store)
    payloads = await ledger.payloads([3, 0, 99])
    assert [p["seq"] for p in payloads] == [0, 3]
    assert payloads[1]["kind"] == "verdict"
    assert payloads == [json.loads((await ledger.entry(s) or {})["payload"]) for s in (0, 3)]


async def test_about_returns_what_a_case_reads(store: Store) -> None:
    ledger = await _filled(store)
    cases = Cases(ledger)
    await cases.add("C-1", message="news/1", actor="officer")
    entries = await ledger.about("C-1", await cases.subjects("C-1"))
    assert [e["seq"] for e in entries] == [0, 1, 5]
    assert entries == await cases.entries("C-1")
    assert [e["seq"] for e in await ledger.about("C-1", [])] == [5]
    assert await ledger.about("C-1", ["message:news/1"], since="2999-01-01T00:00:00Z") == []
