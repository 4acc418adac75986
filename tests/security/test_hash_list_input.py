"""Hostile hash-list files and non-media files: a clear error and a non-zero exit, never a traceback;
labels are bounded; ``hashes match`` says ``not_media`` for a file that is neither image nor video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from crawler.hashing import lists as hashlists
from storage.client import Store
from storage.repos.hashlists import MAX_LABEL_CHARS, HashListRepo

ROOT = Path(__file__).resolve().parents[2]
PDQ = "f" * 64
FIVE_MB = 5 * 1024 * 1024


@pytest.fixture
def env(embedded_uri: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    return clean | {"TGWATCH_MONGODB_URI": embedded_uri, "TGWATCH_DATABASE": f"t_hl_{uuid.uuid4().hex[:8]}"}


def tgwatch(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=ROOT,
    )


def import_list(env: dict[str, str], tmp_path: Path, path: Path, fmt: str = "csv") -> subprocess.CompletedProcess[str]:
    return tgwatch(env, tmp_path / "d", "hashes", "import", str(path), "--list", "l1", "--format", fmt)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "NUL bytes"),
        (f"signal_type,signal,label\npdq,{PDQ},x\n".encode("utf-16"), "UTF-16"),
        (f"signal_type,signal,label\npdq,{PDQ},x\n".encode("utf-16-le"), "NUL bytes"),
        ("signal_type,signal,label\npdq,{PDQ},caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    ],
    ids=["binary", "utf-16-bom", "utf-16-no-bom", "latin-1"],
)
def test_unreadable_files_are_a_clear_error(env: dict[str, str], tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    run = import_list(env, tmp_path, path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "hash_list:" in run.stderr and says in run.stderr, run.stderr


def test_a_5_mb_label_is_rejected_and_the_other_rows_kept(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    rows = [
        {"signal_type": "pdq", "signal": PDQ, "label": "L" * FIVE_MB},
        {"signal_type": "sha256", "signal": "a" * 64, "label": "case 7"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = import_list(env, tmp_path, path, "jsonl")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert f"{path}:1: label is {FIVE_MB} characters long; the limit is {MAX_LABEL_CHARS}" in run.stderr
    assert "1 valid rows, 1 new (sha256=1), 1 rejected" in run.stdout
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps(rows[0]) + "\n")
    run = import_list(env, tmp_path, only_bad, "jsonl")
    assert run.returncode == 1 and "Traceback" not in run.stderr and "label is" in run.stderr


def test_every_parser_bounds_labels() -> None:
    long = "x" * (MAX_LABEL_CHARS + 1)
    texts = {
        "csv": f"signal_type,signal,label\npdq,{PDQ},{long}\n",
        "jsonl": json.dumps({"signal_type": "pdq", "signal": PDQ, "label": long}),
        "stopncii": json.dumps({"signalType": "ImagePDQ", "hashValue": PDQ, "caseNumbers": [long]}),
        "threatexchange": f"collab,signal_type,signal_str,category,tags\nc,pdq,{PDQ},{long},\n",
    }
    for fmt, text in texts.items():
        parsed = hashlists.split(hashlists.parse(text, fmt))
        assert parsed.rows == [] and "label is" in parsed.errors[0].message, fmt
    ok = hashlists.split(hashlists.parse(f"signal_type,signal,label\npdq,{PDQ},{'x' * MAX_LABEL_CHARS}\n", "csv"))
    assert ok.rows[0].label == "x" * MAX_LABEL_CHARS


async def test_the_repository_never_stores_a_longer_label(store: Store) -> None:
    repo = HashListRepo(store)
    await repo.add_entries("direct", "csv", [("pdq", PDQ, "L" * FIVE_MB)])
    (doc,) = await repo.entries("pdq", {"direct"})
    assert len(doc["label"]) == MAX_LABEL_CHARS


def test_match_on_a_text_file_named_jpg_reports_not_media(env: dict[str, str], tmp_path: Path) -> None:
    text_file = tmp_path / "x.jpg"
    text_file.write_text("just some text pretending to be a picture\n")
    run = tgwatch(env, tmp_path / "d", "hashes", "match", "--json", str(text_file))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    line = json.loads(run.stdout)
    assert line["error"] == "not_media" and line["pdq"] is None and line["sha256"]
    plain = tgwatch(env, tmp_path / "d", "hashes", "match", str(text_file))
    assert "error=not_media" in plain.stdout
