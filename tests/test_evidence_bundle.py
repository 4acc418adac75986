"""The standalone bundle verifier: a bundle built to its documented layout verifies; every kind of
tampering is rejected with the right item named; it runs with nothing but the standard library."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cryptography
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import crawler.evidence.verify_bundle as vb
from crawler.evidence.canonical import canonical_text
from crawler.evidence.merkle import InMemoryNodeStore, MerkleLog, leaf_hash
from crawler.evidence.signing import TreeHead, public_key_pem, sign_tree_head

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test signing key").digest())
T = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
Members = dict[str, bytes]


def build_ledger(n: int = 12, salt: str = "") -> tuple[list[dict[str, object]], list[bytes], MerkleLog]:
    """A ledger whose even entries capture a record + raw page, odd ones a withheld media item."""
    log = MerkleLog(InMemoryNodeStore())
    entries, files = [], []
    for seq in range(n):
        record = canonical_text({"channel": "example", "msg_id": seq, "text": f"message {seq}{salt}"}).encode()
        capture = f"<div class='tgme_widget_message_text'>message {seq}{salt}</div>".encode()
        payload = canonical_text(
            {
                "seq": seq,
                "kind": "capture",
                "content_sha256": hashlib.sha256(record).hexdigest(),
                "raw_sha256": hashlib.sha256(capture).hexdigest(),
                "source_url": f"https://t.me/s/example/{seq}",
                "note": f"capture{salt}",
            }
        )
        leaf = leaf_hash(payload.encode())
        log.append(leaf)
        entries.append({"seq": seq, "payload": payload, "leaf_hash": leaf.hex()})
        files.append(record)
        files.append(capture)
    return entries, files, log


def build_bundle(
    seqs: tuple[int, ...] = (1, 2, 5, 8),
    key: Ed25519PrivateKey = KEY,
    salt: str = "",
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
) -> Members:
    """The bundle an export of ``seqs`` writes: their entries, files and proofs, plus the export entry
    (seq 12) that commits to the manifest, all proven against a head of size 13. ``edit_manifest``
    changes the manifest *before* it is committed: an exporter holding the key that lies."""
    entries, files, log = build_ledger(salt=salt)
    members: Members = {}
    manifest_files: list[dict[str, object]] = []
    for seq in seqs:
        record, capture = files[2 * seq], files[2 * seq + 1]
        members[f"records/example/{seq}.json"] = record
        manifest_files.append(
            {"path": f"records/example/{seq}.json", "sha256": hashlib.sha256(record).hexdigest(), "seq": seq}
        )
        if seq % 2:
            manifest_files.append({"path": None, "sha256": hashlib.sha256(capture).hexdigest(), "seq": seq,
                                   "withheld": "role may not receive raw captures"})  # fmt: skip
        else:
            members[f"captures/{seq}.html"] = capture
            manifest_files.append(
                {"path": f"captures/{seq}.html", "sha256": hashlib.sha256(capture).hexdigest(), "seq": seq}
            )
    members["verify_bundle.py"] = Path(vb.__file__).read_bytes()
    members["HOW-TO-VERIFY.txt"] = b"python verify_bundle.py THIS.zip\n"
    manifest = {
        "format": vb.FORMAT,
        "case": "C-1",
        "seqs": list(seqs),
        "files": manifest_files,
        "verifier": {name: hashlib.sha256(members[name]).hexdigest() for name in vb.VERIFIER_FILES},
    }
    if edit_manifest is not None:
        edit_manifest(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    export_seq = len(entries)
    export = canonical_text(
        {"seq": export_seq, "kind": "export", "case": "C-1", "seqs": list(seqs),
         "manifest_sha256": hashlib.sha256(members["manifest.json"]).hexdigest(), "cases": ["C-1"]}
    )  # fmt: skip
    leaf = leaf_hash(export.encode())
    log.append(leaf)
    entries.append({"seq": export_seq, "payload": export, "leaf_hash": leaf.hex()})
    head = sign_tree_head(key, log.size, log.root(), T)
    lines = []
    for seq in (*seqs, export_seq):
        lines.append(json.dumps(entries[seq]))
        proof = {"seq": seq, "leaf_index": seq, "tree_size": log.size,
                 "audit_path": [h.hex() for h in log.inclusion_proof(seq)]}  # fmt: skip
        members[f"proofs/{seq}.json"] = json.dumps(proof).encode()
    members["ledger/entries.jsonl"] = ("\n".join(lines) + "\n").encode()
    members["tree_head.json"] = json.dumps(head.to_dict()).encode()
    members["public_key.pem"] = public_key_pem(key.public_key())
    return members


def write_zip(path: Path, members: Members, extra: list[tuple[str, bytes]] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, data in extra or []:
            zf.writestr(name, data)
    return path


def check(tmp_path: Path, members: Members) -> vb.BundleCheck:
    return vb.verify_bundle(write_zip(tmp_path / "bundle.zip", members))


def test_an_honest_bundle_verifies(tmp_path: Path) -> None:
    result = check(tmp_path, build_bundle())
    assert result.ok, result.summary()
    assert (result.entries, result.files, result.withheld, result.tree_size) == (5, 6, 2, 13)
    assert (result.case, result.export_seq) == ("C-1", 12)
    assert result.key_id == hashlib.sha256(KEY.public_key().public_bytes_raw()).hexdigest()


def test_public_key_as_hex_works_too(tmp_path: Path) -> None:
    members = build_bundle()
    del members["public_key.pem"]
    members["public_key.hex"] = KEY.public_key().public_bytes_raw().hex().encode() + b"\n"
    assert check(tmp_path, members).ok


def test_byte_flip_in_a_record_names_the_record(tmp_path: Path) -> None:
    members = build_bundle()
    data = bytearray(members["records/example/5.json"])
    data[10] ^= 0x01
    members["records/example/5.json"] = bytes(data)
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "records/example/5.json")
    assert "file altered" in (result.reason or "")


def test_byte_flip_in_a_capture_names_the_capture(tmp_path: Path) -> None:
    members = build_bundle()
    members["captures/2.html"] = members["captures/2.html"].replace(b"message", b"massage")
    assert check(tmp_path, members).item == "captures/2.html"


def test_record_and_manifest_changed_together_are_caught_by_the_export_entry(tmp_path: Path) -> None:
    members = build_bundle()
    forged = b'{"text":"forged"}'
    members["records/example/5.json"] = forged
    manifest = json.loads(members["manifest.json"])
    for f in manifest["files"]:
        if f["path"] == "records/example/5.json":
            f["sha256"] = hashlib.sha256(forged).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "manifest.json")
    assert "the manifest was edited" in (result.reason or "")


def test_a_committed_manifest_still_binds_each_file_to_its_entry(tmp_path: Path) -> None:
    """Even an exporter holding the key cannot hand over bytes its ledger entry does not record."""
    forged = b'{"text":"forged"}'

    def swap(manifest: dict[str, Any]) -> None:
        for f in manifest["files"]:
            if f["path"] == "records/example/5.json":
                f["sha256"] = hashlib.sha256(forged).hexdigest()

    members = build_bundle(edit_manifest=swap)
    members["records/example/5.json"] = forged
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "records/example/5.json")
    assert "does not record" in (result.reason or "")


def _drop_entry(members: Members, seq: int) -> None:
    lines = members["ledger/entries.jsonl"].decode().splitlines()
    members["ledger/entries.jsonl"] = ("\n".join(x for x in lines if json.loads(x)["seq"] != seq) + "\n").encode()


def test_removed_entry_is_named(tmp_path: Path) -> None:
    members = build_bundle()
    _drop_entry(members, 5)
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "ledger entry seq 5")


def test_removed_entry_and_its_proof_are_named_by_the_export_entry(tmp_path: Path) -> None:
    members = build_bundle()
    _drop_entry(members, 5)
    del members["proofs/5.json"]
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "ledger entry seq 5")
    assert "listed in export entry seq 12 but missing" in (result.reason or "")


def test_edited_payload_is_named(tmp_path: Path) -> None:
    members = build_bundle()
    members["ledger/entries.jsonl"] = members["ledger/entries.jsonl"].replace(b"example/8", b"elsewhere/8")
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "ledger entry seq 8")


def test_edited_payload_with_recomputed_leaf_hash_fails_its_inclusion_proof(tmp_path: Path) -> None:
    members = build_bundle()
    lines = [json.loads(x) for x in members["ledger/entries.jsonl"].decode().splitlines()]
    for entry in lines:
        if entry["seq"] == 8:
            entry["payload"] = entry["payload"].replace("example/8", "elsewhere/8")
            entry["leaf_hash"] = leaf_hash(entry["payload"].encode()).hex()
    members["ledger/entries.jsonl"] = ("\n".join(json.dumps(e) for e in lines) + "\n").encode()
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "proofs/8.json")
    assert "signed root" in (result.reason or "")


def test_swapped_tree_head_from_another_log_is_rejected(tmp_path: Path) -> None:
    members = build_bundle()
    members["tree_head.json"] = build_bundle(salt="-other")["tree_head.json"]  # same key and size
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "proofs/1.json")
    assert "signed root" in (result.reason or "")


def test_tree_head_of_another_size_is_rejected(tmp_path: Path) -> None:
    members = build_bundle()
    _, _, log = build_ledger()
    log.extend([leaf_hash(b"export"), leaf_hash(b"later")])
    members["tree_head.json"] = json.dumps(sign_tree_head(KEY, log.size, log.root(), T).to_dict()).encode()
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "proofs/1.json")
    assert "tree size 13" in (result.reason or "")


def test_edited_tree_head_fails_its_signature(tmp_path: Path) -> None:
    members = build_bundle()
    head = json.loads(members["tree_head.json"])
    head["timestamp"] = "2026-03-03T12:00:01.000000Z"
    members["tree_head.json"] = json.dumps(head).encode()
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "tree_head.json")
    assert "signature" in (result.reason or "")


def test_replaced_public_key_is_rejected(tmp_path: Path) -> None:
    members = build_bundle()
    members["public_key.pem"] = public_key_pem(Ed25519PrivateKey.generate().public_key())
    result = check(tmp_path, members)
    assert (result.ok, result.item) == (False, "tree_head.json")
    assert "key_id" in (result.reason or "")


def test_whole_bundle_re_signed_with_another_key_verifies_but_shows_another_key_id(tmp_path: Path) -> None:
    """The bundled key proves nothing alone: the printed key id is what a court compares."""
    other = Ed25519PrivateKey.generate()
    result = check(tmp_path, build_bundle(key=other))
    assert result.ok
    assert result.key_id == TreeHead.from_dict(json.loads(build_bundle(key=other)["tree_head.json"])).key_id
    assert result.key_id != hashlib.sha256(KEY.public_key().public_bytes_raw()).hexdigest()


def test_withheld_item_must_be_bound_to_its_entry(tmp_path: Path) -> None:
    def rebind(manifest: dict[str, Any]) -> None:
        next(f for f in manifest["files"] if f["path"] is None)["sha256"] = "a" * 64

    result = check(tmp_path, build_bundle(edit_manifest=rebind))
    assert (result.ok, result.item) == (False, f"withheld item {'a' * 64}")


def test_unlisted_and_missing_files_are_named(tmp_path: Path) -> None:
    members = build_bundle()
    members["records/example/extra.json"] = b"{}"
    assert check(tmp_path, members).item == "records/example/extra.json"
    members = build_bundle()
    del members["captures/2.html"]
    result = check(tmp_path, members)
    assert (result.item, result.reason) == ("captures/2.html", "listed in the manifest but missing from the bundle")


def test_missing_proof_and_missing_members_are_named(tmp_path: Path) -> None:
    members = build_bundle()
    del members["proofs/2.json"]
    assert check(tmp_path, members).item == "proofs/2.json"
    for required in ("manifest.json", "tree_head.json", "ledger/entries.jsonl", "public_key.pem"):
        members = build_bundle()
        del members[required]
        assert check(tmp_path, members).item == required


def test_duplicate_member_names_are_rejected(tmp_path: Path) -> None:
    members = build_bundle()
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = write_zip(tmp_path / "dup.zip", members, extra=[("records/example/5.json", b"second copy")])
    result = vb.verify_bundle(path)
    assert (result.ok, result.item) == (False, "records/example/5.json")


def test_not_a_zip_is_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not a zip")
    result = vb.verify_bundle(bogus)
    assert not result.ok and "cannot read" in (result.reason or "")


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_zip(tmp_path / "good.zip", build_bundle())
    assert vb.main([str(good)]) == 0
    assert "OK: 5 ledger entries" in capsys.readouterr().out
    members = build_bundle()
    members["captures/2.html"] += b"!"
    bad = write_zip(tmp_path / "bad.zip", members)
    assert vb.main([str(bad)]) == 1
    assert "FAIL: captures/2.html" in capsys.readouterr().err
    assert vb.main([]) == 2
    assert vb.main([str(tmp_path / "absent.zip")]) == 2


SITE_PACKAGES = str(Path(str(cryptography.__file__)).resolve().parents[1])
# -S skips site processing, so neither site-packages nor tgwatch's editable-install hook is loaded;
# the second variant then adds site-packages back by hand: cryptography, but still no tgwatch.
WITH_CRYPTOGRAPHY = f"import sys, runpy; sys.path.append({SITE_PACKAGES!r}); "


@pytest.mark.parametrize(
    ("flags", "prelude"),
    [(["-I"], None), (["-I", "-S"], ""), (["-I", "-S"], WITH_CRYPTOGRAPHY)],
    ids=["isolated", "stdlib-only-pure-ed25519", "stdlib-plus-cryptography-no-tgwatch"],
)
def test_standalone_run(tmp_path: Path, flags: list[str], prelude: str | None) -> None:
    """The script alone in an empty directory verifies a good bundle and names a tampered item."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(vb.__file__, alone / "verify_bundle.py")
    good = write_zip(tmp_path / "case.zip", build_bundle())
    members = build_bundle()
    members["records/example/8.json"] = members["records/example/8.json"].replace(b"message", b"MESSAGE")
    bad = write_zip(tmp_path / "tampered.zip", members)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        if prelude is None:
            cmd = [sys.executable, *flags, "verify_bundle.py", *args]
        else:
            code = (prelude or "import sys, runpy; ") + (
                f"sys.argv = ['verify_bundle.py', *{list(args)!r}]; "
                "runpy.run_path('verify_bundle.py', run_name='__main__')"
            )
            cmd = [sys.executable, *flags, "-c", code]
        return subprocess.run(cmd, cwd=alone, capture_output=True, text=True, timeout=120)

    if prelude is not None:
        probe = subprocess.run(
            [sys.executable, *flags, "-c", (prelude or "") + "import crawler"], cwd=alone, capture_output=True
        )
        assert probe.returncode != 0  # tgwatch is not importable in that interpreter
        has_crypto = subprocess.run([sys.executable, *flags, "-c", (prelude or "") + "import cryptography"], cwd=alone)
        assert (has_crypto.returncode == 0) == bool(prelude)

    ok = run(str(good))
    assert ok.returncode == 0, ok.stderr
    assert "OK: 5 ledger entries, 6 files and 2 withheld items" in ok.stdout
    fail = run(str(bad))
    assert fail.returncode == 1
    assert "FAIL: records/example/8.json" in fail.stderr


def test_payloads_with_line_separator_characters_survive_the_jsonl(tmp_path: Path) -> None:
    """JCS leaves U+2028 literal; written with ensure_ascii=False it must not split a JSONL line."""
    members = build_bundle(salt="\u2028\u2029")
    lines = [json.loads(x) for x in members["ledger/entries.jsonl"].decode().split("\n") if x]
    members["ledger/entries.jsonl"] = ("\n".join(json.dumps(e, ensure_ascii=False) for e in lines) + "\n").encode()
    assert "\u2028".encode() in members["ledger/entries.jsonl"]
    assert check(tmp_path, members).ok
