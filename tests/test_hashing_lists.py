"""Hash-list parsers: every value validated, bad rows reported by line while the rest parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.hashing import lists, signals

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "cab08b36195edb1a1231d2d09fa450e0"
SHA = "a" * 64


def test_csv_good_and_bad_rows() -> None:
    text = (
        "signal_type,signal,label\n"
        f"pdq,{PDQ.upper()},campaign-a\n"
        "md5,zz,oops\n"
        f"sha256,{SHA}\n"
        "\n"
        f"tlsh,{MD5},x\n"
        f"md5, {MD5} ,\n"
    )
    parsed = lists.split(lists.parse(text, "csv"))
    assert [(r.line, r.signal_type, r.signal, r.label) for r in parsed.rows] == [
        (2, "pdq", PDQ, "campaign-a"),
        (4, "sha256", SHA, None),
        (7, "md5", MD5, None),
    ]
    assert [e.line for e in parsed.errors] == [3, 6]
    assert "'zz'" in parsed.errors[0].message and "tlsh" in parsed.errors[1].message


def test_csv_needs_its_header() -> None:
    errors = lists.split(lists.parse(f"pdq,{PDQ}\n", "csv")).errors
    assert errors and errors[0].line == 1 and "header" in errors[0].message


def test_jsonl() -> None:
    text = "\n".join(
        [
            json.dumps({"signal_type": "pdq", "signal": PDQ, "label": "x"}),
            "{broken",
            json.dumps({"signal_type": "md5"}),
            json.dumps(["not", "an", "object"]),
            json.dumps({"signal_type": "vpdq", "signal": f'["{PDQ},88,0.000"]'}),
        ]
    )
    parsed = lists.split(lists.parse(text, "jsonl"))
    assert [(r.line, r.signal_type) for r in parsed.rows] == [(1, "pdq"), (5, "vpdq")]
    assert [e.line for e in parsed.errors] == [2, 3, 4]


def test_stopncii_fetch_response_document() -> None:
    doc = {
        "count": 4,
        "nextPageToken": "",
        "hasMoreRecords": False,
        "hashRecords": [
            {"signalType": "ImagePDQ", "hashValue": PDQ, "hashStatus": "Active", "caseNumbers": {"C-2": "Active"}},
            {"signalType": "VideoMD5", "hashValue": MD5, "hashStatus": "Received", "caseNumbers": {}},
            {"signalType": "VideoTMK", "hashValue": "abc", "hashStatus": "Active", "caseNumbers": {}},
            {"signalType": "ImagePDQ", "hashValue": PDQ, "hashStatus": "Withdrawn", "caseNumbers": {}},
            {"signalType": "ImagePDQ", "hashValue": "123", "hashStatus": "Active", "caseNumbers": {}},
        ],
    }
    parsed = lists.split(lists.parse(json.dumps(doc), "stopncii"))
    assert [(r.line, r.signal_type, r.label) for r in parsed.rows] == [(1, "pdq", "C-2"), (2, "md5", None)]
    assert [e.line for e in parsed.errors] == [3, 4, 5]
    assert "Withdrawn" in parsed.errors[1].message


def test_stopncii_one_record_per_line() -> None:
    good = json.dumps({"signalType": "ImagePDQ", "hashValue": PDQ, "hashStatus": "Active"})
    parsed = lists.split(lists.parse(f"{good}\nnope\n{good}\n", "stopncii"))
    assert [r.line for r in parsed.rows] == [1, 3]
    assert [e.line for e in parsed.errors] == [2]


def test_threatexchange_csv_and_plain_forms() -> None:
    text = (
        "collab,signal_type,signal_str,category,tags\n"
        f"Sample Data,pdq,{PDQ},TRUE_POSITIVE,media_priority_s1\n"
        f"Sample Data,video_md5,{MD5},TRUE_POSITIVE,\n"
        "Sample Data,url,https://example.org,TRUE_POSITIVE,\n"
    )
    parsed = lists.split(lists.parse(text, "threatexchange"))
    assert [(r.line, r.signal_type, r.label) for r in parsed.rows] == [
        (2, "pdq", "Sample Data/TRUE_POSITIVE [media_priority_s1]"),
        (3, "md5", "Sample Data/TRUE_POSITIVE"),
    ]
    assert [e.line for e in parsed.errors] == [4]
    plain = lists.split(lists.parse(f"pdq {PDQ}\nvideo_md5 {MD5}\ngarbage\n", "threatexchange"))
    assert [r.signal_type for r in plain.rows] == ["pdq", "md5"] and [e.line for e in plain.errors] == [3]


def test_parse_file_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"\ufeffsignal_type,signal\npdq,{PDQ}\n", encoding="utf-8")
    assert len(lists.parse_file(path, "csv").rows) == 1
    with pytest.raises(ValueError, match="unknown hash-list format"):
        lists.parse("", "xml")


def test_signal_types_validate_and_compare() -> None:
    assert signals.get("PDQ") is signals.PdqSignal
    with pytest.raises(ValueError, match="'nope'"):
        signals.get("nope")
    assert signals.Md5Signal.validate(f"  {MD5.upper()} ") == MD5
    with pytest.raises(ValueError, match="'xyz'"):
        signals.Sha256Signal.validate("xyz")
    assert signals.Sha256Signal.hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert signals.Md5Signal.hash(b"abc") == "900150983cd24fb0d6963f7d28e17f72"
    assert signals.Sha256Signal.matches(SHA, SHA.upper()) and not signals.Sha256Signal.matches(SHA, "b" * 64)
    other = PDQ[:-1] + "3"  # last nibble 2 → 3: one bit
    assert signals.PdqSignal.distance(PDQ, other) == 1 and signals.PdqSignal.threshold == 31
    assert signals.VpdqSignal.validate(PDQ) == f'["{PDQ},100,0.000"]'
