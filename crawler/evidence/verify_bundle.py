#!/usr/bin/env python3
"""Verify a tgwatch evidence bundle offline: ``python verify_bundle.py BUNDLE.zip``.

This one file is all a verifier needs: Python 3.11+ and its standard library. The single Ed25519
signature check uses the ``cryptography`` package when it is installed and otherwise the pure-Python
verification of RFC 8032 §5.1.7 / §6 included below. Exit status: 0 verified; 1 a check failed or
the archive is unreadable (the first failing item is named); 2 bad usage or no such file.

Bundle layout (a zip archive; every name is a POSIX path inside the zip)
-----------------------------------------------------------------------
``manifest.json``
    ``{"format": "tgwatch-evidence-bundle/1", "case": …, "created": …, "files": [FILE, …]}``
    where each FILE is ``{"path": "records/…" | "captures/…", "sha256": "<hex>", "seq": N}`` for a
    file in the bundle, or ``{"path": null, "sha256": "<hex>", "seq": N, "withheld": "<why>"}`` for an
    item whose bytes are not handed over (media the recipient may not receive: hash only). Other
    members (``case``, ``created``, …) are informational and not checked.
``ledger/entries.jsonl``
    One JSON object per line: ``{"seq": N, "payload": "<canonical JSON text>", "leaf_hash": "<hex>"}``.
    ``seq`` is the 0-based RFC 9162 leaf index in the whole ledger; ``payload`` is the exact text
    whose UTF-8 bytes were hashed: ``leaf_hash = SHA-256(0x00 ‖ payload)``.
``proofs/<seq>.json``
    One per entry: ``{"seq": N, "leaf_index": N, "tree_size": S, "audit_path": ["<hex>", …]}``, the
    RFC 9162 §2.1.3 inclusion proof of that entry in the tree of size S = the signed head's size.
``tree_head.json``
    ``{"size": S, "root_hash": "<hex>", "timestamp": "YYYY-MM-DDTHH:MM:SS.ffffffZ",
    "signature": "<base64>", "key_id": "<hex>"}``. The signature is Ed25519 over the UTF-8 bytes of
    ``{"root_hash":"<hex>","size":S,"timestamp":"<timestamp>"}`` exactly (RFC 8785 canonical JSON:
    these three members, this order, no spaces). ``key_id`` = SHA-256 of the raw 32-byte public key.
``public_key.pem`` (SubjectPublicKeyInfo PEM) or ``public_key.hex`` (64 hex digits)
    The log's Ed25519 public key. It comes with the bundle, so it proves nothing alone: compare the
    printed ``key_id`` with the one the operator published or swore to.
``records/…``, ``captures/…``
    Records (JSON) and raw captures / media, each listed in the manifest.
Anything else (this script, ``HOW-TO-VERIFY.txt``) is ignored. All hex is lower-case.

What is checked, in this order (the first failure is reported)
--------------------------------------------------------------
1. the archive opens and has no duplicate member names; the required members exist;
2. the public key parses, ``key_id`` matches it, and the tree head signature verifies;
3. each ledger line: well-formed, ``seq`` unique and below the head's size, ``leaf_hash`` equals
   SHA-256(0x00 ‖ payload);
4. each entry's inclusion proof verifies against the signed root (RFC 9162 §2.1.3.2), and there is
   no proof without an entry;
5. each manifest file: present, its SHA-256 equals the manifest's, its ``seq`` is a bundled entry,
   and that entry's payload carries the digest (as a string value anywhere in the payload's JSON),
   so every byte handed over is bound to a signed leaf; withheld items need the same binding;
6. no file under ``records/`` or ``captures/`` is left out of the manifest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FORMAT = "tgwatch-evidence-bundle/1"
REQUIRED = ("manifest.json", "ledger/entries.jsonl", "tree_head.json")
CONTENT_DIRS = ("records/", "captures/")

# --- Ed25519 verification, RFC 8032 §5.1.7 (after the §6 reference code; verification only) ----

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

_Point = tuple[int, int, int, int]  # extended homogeneous coordinates (X, Y, Z, T), x=X/Z, y=Y/Z, xy=T/Z


def _point_add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % _P
    pb = (y1 + x1) * (y2 + x2) % _P
    pc = t1 * 2 * _D * t2 % _P
    pd = z1 * 2 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _point_mul(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)  # neutral element
    while scalar > 0:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _point_equal(a: _Point, b: _Point) -> bool:
    x1, y1, z1, _ = a
    x2, y2, z2, _ = b
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _point_decompress(data: bytes) -> _Point | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G: _Point = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify_pure(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519 verification in pure Python (cofactorless, as the RFC's reference code)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _point_decompress(public_key)
    if a is None:
        return False
    r_bytes = signature[:32]
    r = _point_decompress(r_bytes)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % _L
    return _point_equal(_point_mul(s, _G), _point_add(r, _point_mul(h, a)))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification through ``cryptography`` when importable, else :func:`ed25519_verify_pure`."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return ed25519_verify_pure(public_key, message, signature)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- RFC 9162 -------------------------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 inclusion proof verification, step by step."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- the bundle -----------------------------------------------------------------------------

_SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")


class BundleError(Exception):
    """A failed check: ``item`` names the member or entry, ``reason`` says what is wrong."""

    def __init__(self, item: str, reason: str) -> None:
        super().__init__(f"{item}: {reason}")
        self.item = item
        self.reason = reason


@dataclass(frozen=True)
class BundleCheck:
    ok: bool
    item: str | None = None
    reason: str | None = None
    entries: int = 0
    files: int = 0
    withheld: int = 0
    tree_size: int = 0
    key_id: str = ""

    def summary(self) -> str:
        if not self.ok:
            return f"FAIL: {self.item}: {self.reason}"
        return (
            f"OK: {self.entries} ledger entries, {self.files} files and {self.withheld} withheld items verified"
            f" against the signed tree head of size {self.tree_size}\n"
            f"public key id {self.key_id}: compare it with the key id the operator published"
        )


def _is_hex(value: object, length: int = 64) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def _json(item: str, data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(item, f"not valid JSON ({exc})") from exc


def _obj(item: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BundleError(item, "expected a JSON object")
    return value


def _int(item: str, doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(item, f"{name} must be a non-negative integer, got {value!r}")
    return value


def _public_key(zf: zipfile.ZipFile, names: set[str]) -> bytes:
    if "public_key.pem" in names:
        text = zf.read("public_key.pem").decode("ascii", "replace")
        body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BundleError("public_key.pem", "not PEM") from exc
        if len(der) != 44 or not der.startswith(_SPKI_ED25519_PREFIX):
            raise BundleError("public_key.pem", "not an Ed25519 SubjectPublicKeyInfo")
        return der[12:]
    if "public_key.hex" in names:
        text = zf.read("public_key.hex").decode("ascii", "replace").strip().lower()
        if not _is_hex(text):
            raise BundleError("public_key.hex", "expected 64 hex digits")
        return bytes.fromhex(text)
    raise BundleError("public_key.pem", "missing (neither public_key.pem nor public_key.hex in the bundle)")


def _tree_head(zf: zipfile.ZipFile, public_key: bytes) -> tuple[int, bytes, str]:
    item = "tree_head.json"
    head = _obj(item, _json(item, zf.read(item)))
    size = _int(item, head, "size")
    root, ts, sig, kid = (head.get(k) for k in ("root_hash", "timestamp", "signature", "key_id"))
    if not _is_hex(root):
        raise BundleError(item, "root_hash must be 64 lower-case hex digits")
    if not isinstance(ts, str) or not ts.endswith("Z"):
        raise BundleError(item, "timestamp must be an RFC 3339 UTC string")
    if not isinstance(sig, str):
        raise BundleError(item, "signature must be base64 text")
    key_id = hashlib.sha256(public_key).hexdigest()
    if kid != key_id:
        raise BundleError(item, f"key_id {kid!r} is not the bundled public key's ({key_id})")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(item, "signature is not base64") from exc
    # for two hex/ASCII strings and an integer, this json.dumps call yields the RFC 8785 form exactly
    signed = {"root_hash": root, "size": size, "timestamp": ts}
    message = json.dumps(signed, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if not ed25519_verify(public_key, message.encode("utf-8"), signature):
        raise BundleError(item, "signature does not verify with the bundled public key")
    assert isinstance(root, str)
    return size, bytes.fromhex(root), key_id


def _entries(zf: zipfile.ZipFile, tree_size: int) -> dict[int, tuple[bytes, object]]:
    """seq -> (leaf hash, parsed payload)."""
    out: dict[int, tuple[bytes, object]] = {}
    # split on b"\n" only: str.splitlines() would also cut at U+2028 inside a payload string
    for number, line in enumerate(zf.read("ledger/entries.jsonl").split(b"\n"), 1):
        if not line.strip():
            continue
        item = f"ledger/entries.jsonl line {number}"
        entry = _obj(item, _json(item, line))
        seq = _int(item, entry, "seq")
        item = f"ledger entry seq {seq}"
        if seq in out:
            raise BundleError(item, "seq appears twice")
        if seq >= tree_size:
            raise BundleError(item, f"not covered by the signed tree head (size {tree_size})")
        payload, stored = entry.get("payload"), entry.get("leaf_hash")
        if not isinstance(payload, str):
            raise BundleError(item, "payload must be the canonical JSON text")
        leaf = hashlib.sha256(b"\x00" + payload.encode("utf-8")).digest()
        if stored != leaf.hex():
            raise BundleError(item, "leaf_hash is not SHA-256(0x00 ‖ payload): the payload or its hash was altered")
        out[seq] = (leaf, _json(item + " payload", payload.encode("utf-8")))
    return out


_Entries = dict[int, tuple[bytes, object]]


def _proofs(zf: zipfile.ZipFile, names: set[str], entries: _Entries, size: int, root: bytes) -> None:
    for seq in sorted(entries):
        item = f"proofs/{seq}.json"
        if item not in names:
            raise BundleError(item, f"missing: ledger entry seq {seq} has no inclusion proof")
        proof = _obj(item, _json(item, zf.read(item)))
        if _int(item, proof, "leaf_index") != seq or proof.get("seq") != seq:
            raise BundleError(item, "proof is for another entry")
        if _int(item, proof, "tree_size") != size:
            raise BundleError(item, f"proof is against tree size {proof['tree_size']}, the signed head has {size}")
        path = proof.get("audit_path")
        if not isinstance(path, list) or not all(_is_hex(p) for p in path):
            raise BundleError(item, "audit_path must be a list of 64-hex-digit hashes")
        if not verify_inclusion(entries[seq][0], seq, size, [bytes.fromhex(p) for p in path], root):
            raise BundleError(item, "inclusion proof does not lead to the signed root")
    for name in sorted(names):
        if name.startswith("proofs/") and name.endswith(".json"):
            stem = name[len("proofs/") : -len(".json")]
            if not stem.isdigit():
                raise BundleError(name, "proof files are named proofs/<seq>.json")
            if int(stem) not in entries:
                raise BundleError(
                    f"ledger entry seq {int(stem)}", f"missing from ledger/entries.jsonl but {name} is bundled"
                )


def _carries(value: object, digest: str) -> bool:
    if isinstance(value, str):
        return value == digest
    if isinstance(value, dict):
        return any(_carries(v, digest) for v in value.values())
    if isinstance(value, list):
        return any(_carries(v, digest) for v in value)
    return False


def _files(zf: zipfile.ZipFile, names: set[str], entries: dict[int, tuple[bytes, object]]) -> tuple[int, int]:
    manifest = _obj("manifest.json", _json("manifest.json", zf.read("manifest.json")))
    if manifest.get("format") != FORMAT:
        raise BundleError("manifest.json", f"format must be {FORMAT!r}, got {manifest.get('format')!r}")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise BundleError("manifest.json", "files must be a list")
    listed: set[str] = set()
    count = withheld = 0
    for i, raw in enumerate(files):
        item = f"manifest.json files[{i}]"
        doc = _obj(item, raw)
        path, digest = doc.get("path"), doc.get("sha256")
        seq = _int(item, doc, "seq")
        if not _is_hex(digest):
            raise BundleError(item, "sha256 must be 64 lower-case hex digits")
        assert isinstance(digest, str)
        if path is None:
            if not isinstance(doc.get("withheld"), str):
                raise BundleError(item, "an item without a path must say why it is withheld")
            item = f"withheld item {digest}"
            withheld += 1
        else:
            if not isinstance(path, str) or not path.startswith(CONTENT_DIRS) or ".." in path.split("/"):
                raise BundleError(item, f"path must lie under records/ or captures/, got {path!r}")
            item = path
            if path in listed:
                raise BundleError(item, "listed twice in the manifest")
            listed.add(path)
            if path not in names:
                raise BundleError(item, "listed in the manifest but missing from the bundle")
            sha = hashlib.sha256()
            with zf.open(path) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            if sha.hexdigest() != digest:
                raise BundleError(item, f"SHA-256 is {sha.hexdigest()}, the manifest says {digest}: file altered")
            count += 1
        if seq not in entries:
            raise BundleError(item, f"its ledger entry seq {seq} is not in the bundle")
        if not _carries(entries[seq][1], digest):
            raise BundleError(item, f"ledger entry seq {seq} does not record SHA-256 {digest}")
    for name in sorted(names):
        if name.startswith(CONTENT_DIRS) and not name.endswith("/") and name not in listed:
            raise BundleError(name, "in the bundle but not in the manifest")
    return count, withheld


def verify_bundle(path: str | Path) -> BundleCheck:
    """Run every check on the bundle at ``path``; the verdict names the first failing item."""
    try:
        with zipfile.ZipFile(path) as zf:
            all_names = [info.filename for info in zf.infolist()]
            names = set(all_names)
            if len(names) != len(all_names):
                dup = next(n for n in all_names if all_names.count(n) > 1)
                raise BundleError(dup, "appears twice in the archive")
            for required in REQUIRED:
                if required not in names:
                    raise BundleError(required, "missing from the bundle")
            public_key = _public_key(zf, names)
            size, root, key_id = _tree_head(zf, public_key)
            entries = _entries(zf, size)
            _proofs(zf, names, entries, size, root)
            files, withheld = _files(zf, names, entries)
    except BundleError as exc:
        return BundleCheck(False, exc.item, exc.reason)
    except (OSError, zipfile.BadZipFile) as exc:
        return BundleCheck(False, str(path), f"cannot read the bundle: {exc}")
    return BundleCheck(True, entries=len(entries), files=files, withheld=withheld, tree_size=size, key_id=key_id)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__)
        print("usage: python verify_bundle.py BUNDLE.zip", file=sys.stderr)
        return 2
    if not Path(args[0]).is_file():
        print(f"FAIL: {args[0]}: no such file", file=sys.stderr)
        return 2
    result = verify_bundle(args[0])
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
