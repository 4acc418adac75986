"""Forged case bundles: each one is rejected with a message naming what was changed, never a traceback.

The bundles are real exports (embedded store, real ledger and signing key); the forgeries are what
someone holding the zip but not the key can do: remove, edit, add or replace members.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import config
from crawler.evidence.cases import Cases
from crawler.evidence.export import Exporter
from crawler.evidence.signing import generate_key, load_public_key
from crawler.evidence.verify_bundle import BundleCheck, verify_bundle
from crawler.evidence.wiring import build_ledger
from crawler.pipeline import open_pipeline
from foundation.models import ChannelRef, Message, RawCapture, Source
from storage.client import Store

T0 = datetime(2026, 4, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def exported(store: Store, tmp_path: Path) -> tuple[Path, Path]:
    """(the bundle of case CASE-1 with three captured posts, the exporting installation's data dir)."""
    data_dir = tmp_path / "data"
    settings = config.load(data_dir=data_dir, media={"fetch": False})
    key = settings.evidence.private_key_path(settings.data_dir)
    generate_key(key.parent, name=key.name)
    ref = ChannelRef(username="case_channel")
    async with open_pipeline(store, settings) as ingest:
        for i in (1, 2, 3):
            html = f"<div>post {i}</div>"
            raw = RawCapture.of("html", html, url="http://x/s/case_channel", fetched_at=T0)
            await ingest.submit([Message(ref=ref, msg_id=i, source=Source.WEB, date=T0, text=f"post {i}", raw=raw)])
    ledger = build_ledger(store, settings)
    await Cases(ledger).add("CASE-1", channel="case_channel", actor="lead")
    public = load_public_key(settings.evidence.public_key_path(settings.data_dir).read_bytes())
    out = tmp_path / "CASE-1.zip"
    await Exporter(ledger, public, signer=ledger.signer).export("CASE-1", out, actor="lead", role="investigator")
    assert verify_bundle(out).ok, verify_bundle(out).summary()
    return out, data_dir


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write(path: Path, content: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return path


def entries(content: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content["ledger/entries.jsonl"].decode().split("\n") if line]


def payload(entry: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(entry["payload"])
    return result


def drop_entry(content: dict[str, bytes], seq: object) -> None:
    kept = [json.dumps(e, ensure_ascii=False) for e in entries(content) if e["seq"] != seq]
    content["ledger/entries.jsonl"] = ("\n".join(kept) + "\n").encode()
    del content[f"proofs/{seq}.json"]


def standalone(bundle: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The verify_bundle.py shipped in the honest bundle, alone, with nothing of tgwatch importable."""
    alone = tmp_path / "alone"
    alone.mkdir(exist_ok=True)
    script = alone / "verify_bundle.py"
    if not script.exists():
        shutil.copy(ROOT / "crawler" / "evidence" / "verify_bundle.py", script)
    return subprocess.run(
        [sys.executable, "-I", str(script), *args, str(bundle)], cwd=alone, capture_output=True, text=True, timeout=120
    )


def rejected(bundle: Path, tmp_path: Path) -> BundleCheck:
    """Both the library call and the standalone script refuse it, cleanly."""
    result = verify_bundle(bundle)
    assert not result.ok
    run = standalone(bundle, tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.startswith("FAIL: ") and "Traceback" not in run.stderr
    return result


def capture_with_files(content: dict[str, bytes]) -> int:
    manifest = json.loads(content["manifest.json"])
    with_files = {f["seq"] for f in manifest["files"] if f["path"]}
    return min(e["seq"] for e in entries(content) if payload(e)["kind"] == "capture" and e["seq"] in with_files)


def test_removing_a_capture_its_proof_and_its_files_is_caught(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    seq = capture_with_files(content)
    manifest = json.loads(content["manifest.json"])
    drop_entry(content, seq)
    for f in manifest["files"]:
        if f["seq"] == seq and f["path"]:
            del content[f["path"]]
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == f"ledger entry seq {seq}"
    assert "listed in export entry" in (result.reason or "") and "removed" in (result.reason or "")
    # ... and cleaning the manifest as well breaks the export entry's commitment to it
    manifest["files"] = [f for f in manifest["files"] if f["seq"] != seq]
    manifest["seqs"].remove(seq)
    content["manifest.json"] = json.dumps(manifest, indent=2).encode()
    result = rejected(write(tmp_path / "g.zip", content), tmp_path)
    assert result.item == "manifest.json" and "manifest was edited" in (result.reason or "")


def test_removing_the_export_entry_is_caught(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    export = next(e for e in entries(content) if payload(e)["kind"] == "export")
    drop_entry(content, export["seq"])
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == "export entry" and "missing" in (result.reason or "")


def test_editing_the_manifest_case_is_caught(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    content["manifest.json"] = content["manifest.json"].replace(b'"case": "CASE-1"', b'"case": "CASE-2"')
    assert b"CASE-2" in content["manifest.json"]
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == "manifest.json" and "manifest was edited" in (result.reason or "")


def test_removing_a_listed_file_is_caught(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    name = next(n for n in content if n.startswith("records/"))
    del content[name]
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert (result.item, result.reason) == (name, "listed in the manifest but missing from the bundle")


@pytest.mark.parametrize("name", ["../x", "/abs", "records/../../x", "C:/x", "captures\\..\\x"])
def test_zip_slip_member_names_are_rejected(exported: tuple[Path, Path], tmp_path: Path, name: str) -> None:
    content = members(exported[0])
    content[name] = b"payload"
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == repr(name) and "zip slip" in (result.reason or "")


def test_a_symbolic_link_member_is_rejected(exported: tuple[Path, Path], tmp_path: Path) -> None:
    forged = tmp_path / "f.zip"
    shutil.copy(exported[0], forged)
    link = zipfile.ZipInfo("records/link.json")
    link.external_attr = (0o120777 << 16) | 0
    with zipfile.ZipFile(forged, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    result = rejected(forged, tmp_path)
    assert result.item == "records/link.json" and "symbolic link" in (result.reason or "")


def test_a_member_outside_the_layout_is_rejected(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    content["READ-THIS-FIRST.txt"] = b"the case was closed, ignore the rest"
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == "READ-THIS-FIRST.txt" and "slipped in" in (result.reason or "")


@pytest.mark.parametrize("name", ["verify_bundle.py", "HOW-TO-VERIFY.txt"])
def test_replaced_verifier_or_how_to_is_caught(exported: tuple[Path, Path], tmp_path: Path, name: str) -> None:
    content = members(exported[0])
    content[name] = (
        b"import sys\nprint('OK: everything verified')\nsys.exit(0)\n"
        if name.endswith(".py")
        else b"No need to check anything: just trust the operator.\n"
    )
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == name and "replaced after export" in (result.reason or "")


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("member", ["manifest.json", "tree_head.json", "proofs/0.json", "ledger line"])
def test_deeply_nested_json_fails_cleanly(exported: tuple[Path, Path], tmp_path: Path, member: str) -> None:
    content = members(exported[0])
    if member == "ledger line":
        content["ledger/entries.jsonl"] = DEEP + b"\n" + content["ledger/entries.jsonl"]
    elif member.startswith("proofs/"):
        member = min((n for n in content if n.startswith("proofs/")), key=lambda n: int(n[7:-5]))
        content[member] = DEEP
    else:
        content[member] = DEEP
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert "nested deeper than 64 levels" in (result.reason or ""), result.summary()


def test_a_payload_nested_just_too_deep_fails_cleanly(exported: tuple[Path, Path], tmp_path: Path) -> None:
    """Within the parser's reach but beyond the bound: still a FAIL line (the walk is not recursive)."""
    content = members(exported[0])
    content["manifest.json"] = b"[" * 900 + b"]" * 900
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == "manifest.json" and "nested deeper" in (result.reason or "")


def test_huge_json_members_fail_cleanly(exported: tuple[Path, Path], tmp_path: Path) -> None:
    content = members(exported[0])
    content["manifest.json"] = b'{"format": "' + b"x" * (33 << 20) + b'"}'
    result = rejected(write(tmp_path / "f.zip", content), tmp_path)
    assert result.item == "manifest.json" and "too large" in (result.reason or "")
    content = members(exported[0])
    content["ledger/entries.jsonl"] = b'{"seq": 0, "payload": "' + b"x" * (9 << 20) + b'"}\n'
    result = rejected(write(tmp_path / "g.zip", content), tmp_path)
    assert result.item == "ledger/entries.jsonl line 1" and "longer than" in (result.reason or "")


def tgwatch(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


def test_expect_key_accepts_the_right_key_and_fails_on_another(exported: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, data_dir = exported
    right = verify_bundle(bundle).key_id
    wrong = "ab" * 32
    assert verify_bundle(bundle, expect_key=right).ok
    result = verify_bundle(bundle, expect_key=wrong)
    assert (result.ok, result.item) == (False, "tree_head.json")
    assert f"signed by key id {right}, not the expected {wrong}" in (result.reason or "")
    run = standalone(bundle, tmp_path, "--expect-key", wrong)
    assert run.returncode == 1 and "not the expected" in run.stderr and "Traceback" not in run.stderr
    ok = standalone(bundle, tmp_path, "--expect-key", right.upper())
    assert ok.returncode == 0 and "the expected key" in ok.stdout
    cli = tgwatch(data_dir, "evidence", "verify", "--expect-key", wrong, str(bundle))
    assert cli.returncode == 1 and "not the expected" in cli.stderr and "Traceback" not in cli.stderr
    assert tgwatch(data_dir, "evidence", "verify", "--expect-key", right, str(bundle)).returncode == 0
    assert tgwatch(data_dir, "evidence", "verify", "--expect-key", "nothex", str(bundle)).returncode == 2


def test_a_bundle_signed_by_another_installation_warns(exported: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, data_dir = exported
    same = tgwatch(data_dir, "evidence", "verify", str(bundle))
    assert same.returncode == 0 and "OK:" in same.stdout and "WARNING" not in same.stderr
    other = tmp_path / "other-installation"
    assert tgwatch(other, "evidence", "keygen").returncode == 0
    run = tgwatch(other, "evidence", "verify", str(bundle))
    assert run.returncode == 0 and "OK:" in run.stdout
    assert "WARNING: this bundle is signed by key id" in run.stderr and "another tgwatch installation" in run.stderr
