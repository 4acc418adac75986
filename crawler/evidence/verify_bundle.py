#!/usr/bin/env python3
"""Verify a tgwatch evidence bundle offline: ``python verify_bundle.py [--expect-key KEYID] BUNDLE.zip``.

This one file is all a verifier needs: Python 3.11+ and its standard library. The single Ed25519
signature check uses the ``cryptography`` package when it is installed and otherwise the pure-Python
verification of RFC 8032 §5.1.7 / §6 included below. Exit status: 0 verified; 1 a check failed or
the archive is unreadable (the first failing item is named); 2 bad usage or no such file.

Bundle layout (a zip archive; every name is a relative POSIX path inside the zip)
---------------------------------------------------------------------------------
``manifest.json``
    ``{"format": "tgwatch-evidence-bundle/2", "case": …, "created": …, "exported_by": …, "role": …,
    "from": …, "to": …, "key_id": "<hex>", "seqs": [N, …], "files": [FILE, …],
    "verifier": {"verify_bundle.py": "<hex>", "HOW-TO-VERIFY.txt": "<hex>"}}`` where ``seqs`` are the
    exported ledger entries, each FILE is ``{"path": "records/…" | "captures/…", "sha256": "<hex>",
    "seq": N}`` for a file in the bundle, or ``{"path": null, "sha256": "<hex>", "seq": N, "withheld":
    "<why>"}`` for an item whose bytes are not handed over (hash only), and ``verifier`` gives the
    SHA-256 of this script and of the how-to as exported. The exact bytes of ``manifest.json`` are
    committed to by the export entry (below), so no member of it can be edited.
``ledger/entries.jsonl``
    One JSON object per line: ``{"seq": N, "payload": "<canonical JSON text>", "leaf_hash": "<hex>"}``.
    ``seq`` is the 0-based RFC 9162 leaf index in the whole ledger; ``payload`` is the exact text
    whose UTF-8 bytes were hashed: ``leaf_hash = SHA-256(0x00 ‖ payload)``. Exactly the manifest's
    ``seqs`` plus the export entry: a payload ``{"kind": "export", "case": …, "seqs": [N, …],
    "manifest_sha256": "<SHA-256 of manifest.json>", …}`` appended to the log when the bundle was
    made. The export entry names the manifest, not the other way round, so there is no cycle.
    A line may instead be ``{"seq": N, "leaf_hash": "<hex>", "withheld": "<why>"}`` (no payload):
    an entry whose content the recipient may not read (a consent-based watchlist entry of a case
    they are not a principal of). Its inclusion proof is checked from the leaf hash as given; the
    manifest's ``"withheld_entries": [N, …]`` lists exactly these seqs (the export entry, which
    commits to the manifest, is never withheld, and no file is bound to a withheld entry).
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
    printed ``key_id`` with the one the operator published or swore to (``--expect-key KEYID``).
``records/…``, ``captures/…``
    Records (JSON) and raw captures / media, each listed in the manifest.
``web/archive.wacz`` (optional; the manifest's ``"web_archive": {"path", "sha256", "records"}``)
    A WACZ 1.1.1 web archive (``archive/*.warc.gz``, ``indexes/index.cdx``, ``pages/pages.jsonl``,
    ``datapackage.json``) of the bundled web captures, whole pages and screenshots, for replay tools
    (ReplayWeb.page, pywb). Each response/resource record's ``WARC-Payload-Digest`` is
    ``sha256:<base32>`` of its payload, the digest a bundled ledger entry records. A whole page's
    ``request`` and ``response`` records name their ``capture`` entry (``item: page``) in
    ``Tgwatch-Ledger-Seq`` and are written from it: method, URL and request headers; status line,
    headers (``Content-Length`` = the stored body's length, the server's ``Content-Length`` and
    ``Transfer-Encoding`` renamed ``Tgwatch-Orig-…``) and body (``page_sha256``).
``reports/gaps.json`` (optional; the manifest's ``"gap_report": {"path", "sha256"}``)
    For each of the case's channels: message ids held, deleted and recorded, missing and why.
``verify_bundle.py``, ``HOW-TO-VERIFY.txt``
    This script and the instructions; their digests are in the manifest. Nothing else may be present.

What is checked, in this order (the first failure is reported)
--------------------------------------------------------------
1. the archive opens, has no duplicate member names and no unsafe ones (absolute, ``..``, ``\\``,
   drive letters: a zip-slip attempt), no symbolic links; the required members exist; nothing
   outside the layout;
2. the public key parses, ``key_id`` matches it, the tree head signature verifies, and the key id
   is the expected one when ``--expect-key`` is given;
3. each ledger line: well-formed, ``seq`` unique and below the head's size, ``leaf_hash`` equals
   SHA-256(0x00 ‖ payload) (a withheld line: ``leaf_hash`` is well-formed; the manifest lists it);
4. each entry's inclusion proof verifies against the signed root (RFC 9162 §2.1.3.2), and there is
   no proof without an entry;
5. one export entry commits to the SHA-256 of ``manifest.json``; its ``case`` and ``seqs`` equal the
   manifest's; every listed seq is bundled (with its proof, step 4) and no other entry is;
6. each manifest file: present, its SHA-256 equals the manifest's, its ``seq`` is a bundled entry,
   and that entry's payload carries the digest (as a string value anywhere in the payload's JSON),
   so every byte handed over is bound to a signed leaf; withheld items need the same binding;
7. no file under ``records/`` or ``captures/`` is left out of the manifest; ``verify_bundle.py`` and
   ``HOW-TO-VERIFY.txt`` have the digests the manifest gives;
8. the web archive and the gap report are present exactly when the manifest names them, with its
   SHA-256; inside the WACZ every ``datapackage.json`` resource has its digest, and every WARC
   response/resource record's payload has the SHA-256 its ``WARC-Payload-Digest`` gives, a digest
   that a bundled ledger entry records (so the archive replays exactly what the ledger signed); a
   request or response record naming a page entry (``Tgwatch-Ledger-Seq``) has that entry's URL,
   method and request headers, or status line, response headers and body digest.

Hostile input is bounded: JSON nesting (64 levels), member sizes (1 MiB for a proof or the head,
32 MiB for the manifest, 8 MiB per ledger line) and the member count; each failure is a ``FAIL``
line, never a traceback. A replaced verifier can of course print anything: run a copy obtained
independently (e.g. ``tgwatch evidence verify``) when the bundle's origin is in doubt; this script
then reports a replaced ``verify_bundle.py``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

FORMAT = "tgwatch-evidence-bundle/2"
#: what a withheld ledger line says instead of its payload (see ``ledger/entries.jsonl`` above)
WITHHELD_ENTRY = "content withheld from this recipient (consent-based watchlist); leaf hash and proof only"
REQUIRED = ("manifest.json", "ledger/entries.jsonl", "tree_head.json")
CONTENT_DIRS = ("records/", "captures/")
VERIFIER_FILES = ("verify_bundle.py", "HOW-TO-VERIFY.txt")
WEB_ARCHIVE = "web/archive.wacz"
GAP_REPORT = "reports/gaps.json"
KNOWN_MEMBERS = (*REQUIRED, "public_key.pem", "public_key.hex", *VERIFIER_FILES, WEB_ARCHIVE, GAP_REPORT)

# bounds on hostile input (a real bundle stays far below them)
MAX_JSON_DEPTH = 64
MAX_SMALL_MEMBER = 1 << 20  # tree head, a proof, the public key
MAX_MANIFEST = 32 << 20
MAX_LEDGER_LINE = 8 << 20
MAX_LEDGER_BYTES = 2 << 30
MAX_MEMBERS = 2_000_000
MAX_WEB_ARCHIVE = 1 << 30  # the WACZ, and the WARC inside it once decompressed

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
    key_expected: bool = False
    export_seq: int = -1
    case: str = ""
    web_records: int = 0
    withheld_entries: int = 0

    def summary(self) -> str:
        if not self.ok:
            return f"FAIL: {self.item}: {self.reason}"
        key_line = (
            f"public key id {self.key_id}: the expected key"
            if self.key_expected
            else f"public key id {self.key_id}: compare it with the key id the operator published"
        )
        return (
            f"OK: {self.entries} ledger entries, {self.files} files and {self.withheld} withheld items verified"
            f" against the signed tree head of size {self.tree_size}; case {self.case!r}, handed over in export"
            f" entry seq {self.export_seq}"
            + (f"; web archive: {self.web_records} records match the ledger" if self.web_records else "")
            + (
                f"; {self.withheld_entries} entries withheld from this recipient (leaf hash and proof verified)"
                if self.withheld_entries
                else ""
            )
            + f"\n{key_line}"
        )


def _is_hex(value: object, length: int = 64) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def _unsafe_name(name: str) -> bool:
    """Names an unzip tool could write outside the target directory (zip slip), or ambiguous ones."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return True
    if len(name) > 1 and name[1] == ":":  # C:...
        return True
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    return any(part in ("", ".", "..") for part in parts)


def _read(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refusing more than ``limit`` (declared or actual: the header can lie)."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise BundleError(name, f"too large ({info.file_size} bytes; the limit is {limit})")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise BundleError(name, f"too large (more than {limit} bytes)")
    return data


def _too_deep(value: object) -> bool:
    """Nesting beyond :data:`MAX_JSON_DEPTH` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: list[object]
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json(item: str, data: bytes) -> object:
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise BundleError(item, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except MemoryError:
        raise BundleError(item, "JSON too large to parse in memory") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(item, f"not valid JSON ({exc})") from exc
    if _too_deep(value):
        raise BundleError(item, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _obj(item: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BundleError(item, "expected a JSON object")
    return value


def _int(item: str, doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(item, f"{name} must be a non-negative integer, got {value!r}")
    return value


def _sha256_member(zf: zipfile.ZipFile, name: str) -> str:
    sha = hashlib.sha256()
    with zf.open(name) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _members(zf: zipfile.ZipFile) -> set[str]:
    """Every member name, checked: unique, safe, required ones present, nothing outside the layout."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError("the archive", f"{len(infos)} members; the limit is {MAX_MEMBERS}")
    names: set[str] = set()
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise BundleError(repr(name), "unsafe member name (absolute, '..', '\\' or empty part): zip slip")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise BundleError(name, "a symbolic link: unpacked, it could point anywhere")
        if name in names:
            raise BundleError(name, "appears twice in the archive")
        names.add(name)
    for required in REQUIRED:
        if required not in names:
            raise BundleError(required, "missing from the bundle")
    for name in sorted(names):
        if name.endswith("/") or name in KNOWN_MEMBERS or name.startswith(CONTENT_DIRS):
            continue
        if name.startswith("proofs/") and name.endswith(".json"):
            continue
        raise BundleError(name, "not part of the bundle layout (slipped in)")
    return names


def _public_key(zf: zipfile.ZipFile, names: set[str]) -> bytes:
    if "public_key.pem" in names:
        text = _read(zf, "public_key.pem", MAX_SMALL_MEMBER).decode("ascii", "replace")
        body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BundleError("public_key.pem", "not PEM") from exc
        if len(der) != 44 or not der.startswith(_SPKI_ED25519_PREFIX):
            raise BundleError("public_key.pem", "not an Ed25519 SubjectPublicKeyInfo")
        return der[12:]
    if "public_key.hex" in names:
        text = _read(zf, "public_key.hex", MAX_SMALL_MEMBER).decode("ascii", "replace").strip().lower()
        if not _is_hex(text):
            raise BundleError("public_key.hex", "expected 64 hex digits")
        return bytes.fromhex(text)
    raise BundleError("public_key.pem", "missing (neither public_key.pem nor public_key.hex in the bundle)")


def _tree_head(zf: zipfile.ZipFile, public_key: bytes) -> tuple[int, bytes, str]:
    item = "tree_head.json"
    head = _obj(item, _json(item, _read(zf, item, MAX_SMALL_MEMBER)))
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


_Entries = dict[int, tuple[bytes, object]]


def _entries(zf: zipfile.ZipFile, tree_size: int) -> _Entries:
    """seq -> (leaf hash, parsed payload), read line by line (each line bounded)."""
    out: _Entries = {}
    name = "ledger/entries.jsonl"
    info = zf.getinfo(name)
    if info.file_size > MAX_LEDGER_BYTES:
        raise BundleError(name, f"too large ({info.file_size} bytes; the limit is {MAX_LEDGER_BYTES})")
    with zf.open(info) as fh:
        number = 0
        while True:
            # binary readline splits on b"\n" only: str.splitlines() would also cut at U+2028
            line = fh.readline(MAX_LEDGER_LINE + 1)
            if not line:
                break
            number += 1
            if len(line) > MAX_LEDGER_LINE and not line.endswith(b"\n"):
                raise BundleError(f"{name} line {number}", f"longer than {MAX_LEDGER_LINE} bytes")
            if not line.strip():
                continue
            item = f"{name} line {number}"
            entry = _obj(item, _json(item, line))
            seq = _int(item, entry, "seq")
            item = f"ledger entry seq {seq}"
            if seq in out:
                raise BundleError(item, "seq appears twice")
            if seq >= tree_size:
                raise BundleError(item, f"not covered by the signed tree head (size {tree_size})")
            payload, stored = entry.get("payload"), entry.get("leaf_hash")
            if payload is None and isinstance(entry.get("withheld"), str):
                if not _is_hex(stored):
                    raise BundleError(item, "a withheld entry still gives its leaf_hash (64 lower-case hex digits)")
                assert isinstance(stored, str)
                out[seq] = (bytes.fromhex(stored), None)
                continue
            if not isinstance(payload, str):
                raise BundleError(item, "payload must be the canonical JSON text")
            leaf = hashlib.sha256(b"\x00" + payload.encode("utf-8")).digest()
            if stored != leaf.hex():
                raise BundleError(item, "leaf_hash is not SHA-256(0x00 ‖ payload): the payload or its hash was altered")
            out[seq] = (leaf, _json(item + " payload", payload.encode("utf-8")))
    return out


def _proofs(zf: zipfile.ZipFile, names: set[str], entries: _Entries, size: int, root: bytes) -> None:
    for seq in sorted(entries):
        item = f"proofs/{seq}.json"
        if item not in names:
            raise BundleError(item, f"missing: ledger entry seq {seq} has no inclusion proof")
        proof = _obj(item, _json(item, _read(zf, item, MAX_SMALL_MEMBER)))
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


def _manifest(zf: zipfile.ZipFile) -> tuple[dict[str, object], str]:
    data = _read(zf, "manifest.json", MAX_MANIFEST)
    manifest = _obj("manifest.json", _json("manifest.json", data))
    if manifest.get("format") != FORMAT:
        raise BundleError("manifest.json", f"format must be {FORMAT!r}, got {manifest.get('format')!r}")
    return manifest, hashlib.sha256(data).hexdigest()


def _seq_list(item: str, value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise BundleError(item, "seqs must be a list of non-negative integers")
    if len(set(value)) != len(value):
        raise BundleError(item, "seqs lists an entry twice")
    return value


def _export(entries: _Entries, manifest: dict[str, object], digest: str) -> int:
    """The export entry that commits to this manifest; the bundled entries are exactly the ones it lists."""
    exports = sorted(seq for seq, (_, p) in entries.items() if isinstance(p, dict) and p.get("kind") == "export")
    matching = [seq for seq in exports if _obj_get(entries[seq][1], "manifest_sha256") == digest]
    if not matching:
        committed = [seq for seq in exports if _is_hex(_obj_get(entries[seq][1], "manifest_sha256"))]
        if committed:
            newest = committed[-1]
            raise BundleError(
                "manifest.json",
                f"its SHA-256 is {digest}, export entry seq {newest} commits to "
                f"{_obj_get(entries[newest][1], 'manifest_sha256')}: the manifest was edited",
            )
        raise BundleError(
            "export entry",
            "missing: no bundled ledger entry of kind 'export' commits to manifest.json "
            f"(SHA-256 {digest}), so nothing signed says what was handed over",
        )
    if len(matching) > 1:
        raise BundleError(f"ledger entry seq {matching[1]}", "a second export entry commits to the same manifest")
    export_seq = matching[0]
    item = f"export entry seq {export_seq}"
    payload = _obj(item, entries[export_seq][1])
    seqs = _seq_list(item, payload.get("seqs"))
    if manifest.get("case") != payload.get("case"):
        raise BundleError(
            "manifest.json", f"case {manifest.get('case')!r} is not the export entry's {payload.get('case')!r}"
        )
    if _seq_list("manifest.json", manifest.get("seqs")) != seqs:
        raise BundleError("manifest.json", f"seqs differ from the ones {item} lists")
    if export_seq in seqs:
        raise BundleError(item, "lists itself among the exported entries")
    for seq in seqs:
        if seq not in entries:
            raise BundleError(
                f"ledger entry seq {seq}",
                f"listed in {item} but missing from ledger/entries.jsonl: an entry was removed",
            )
    extra = sorted(set(entries) - set(seqs) - {export_seq})
    if extra:
        raise BundleError(f"ledger entry seq {extra[0]}", f"in the bundle but not listed in {item}")
    return export_seq


def _withheld(entries: _Entries, manifest: dict[str, object]) -> int:
    """The entries bundled without a payload are exactly the ones the manifest lists as withheld."""
    listed = manifest.get("withheld_entries", [])
    declared = set(_seq_list("manifest.json withheld_entries", listed))
    bare = {seq for seq, (_, payload) in entries.items() if payload is None}
    for seq in sorted(bare ^ declared):
        if seq in bare:
            raise BundleError(f"ledger entry seq {seq}", "has no payload but the manifest does not list it as withheld")
        raise BundleError(
            f"ledger entry seq {seq}",
            "listed as withheld in the manifest but bundled with its payload"
            if seq in entries
            else "listed as withheld in the manifest but missing from the bundle",
        )
    return len(bare)


def _obj_get(value: object, name: str) -> object:
    return value.get(name) if isinstance(value, dict) else None


def _carries(value: object, digest: str) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node == digest:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _files(zf: zipfile.ZipFile, names: set[str], entries: _Entries, manifest: dict[str, object]) -> tuple[int, int]:
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
            if not isinstance(path, str) or not path.startswith(CONTENT_DIRS) or _unsafe_name(path):
                raise BundleError(item, f"path must lie under records/ or captures/, got {path!r}")
            item = path
            if path in listed:
                raise BundleError(item, "listed twice in the manifest")
            listed.add(path)
            if path not in names:
                raise BundleError(item, "listed in the manifest but missing from the bundle")
            actual = _sha256_member(zf, path)
            if actual != digest:
                raise BundleError(item, f"SHA-256 is {actual}, the manifest says {digest}: file altered")
            count += 1
        if seq not in entries:
            raise BundleError(item, f"its ledger entry seq {seq} is not in the bundle")
        if not _carries(entries[seq][1], digest):
            raise BundleError(item, f"ledger entry seq {seq} does not record SHA-256 {digest}")
    for name in sorted(names):
        if name.startswith(CONTENT_DIRS) and not name.endswith("/") and name not in listed:
            raise BundleError(name, "in the bundle but not in the manifest")
    return count, withheld


def _verifier_files(zf: zipfile.ZipFile, names: set[str], manifest: dict[str, object]) -> None:
    digests = _obj("manifest.json verifier", manifest.get("verifier"))
    for name in VERIFIER_FILES:
        want = digests.get(name)
        if not _is_hex(want):
            raise BundleError("manifest.json", f"verifier must give the SHA-256 of {name}")
        if name not in names:
            raise BundleError(name, "missing from the bundle")
        actual = _sha256_member(zf, name)
        if actual != want:
            raise BundleError(name, f"SHA-256 is {actual}, the manifest says {want}: replaced after export")


def _extra_member(zf: zipfile.ZipFile, names: set[str], manifest: dict[str, object], key: str, path: str) -> bool:
    """A derived member (web archive, gap report): present exactly when the manifest names it, with
    the manifest's SHA-256. Returns whether it is there."""
    doc = manifest.get(key)
    if doc is None:
        if path in names:
            raise BundleError(path, f"in the bundle but manifest.json has no {key}")
        return False
    doc = _obj(f"manifest.json {key}", doc)
    if doc.get("path") != path or not _is_hex(doc.get("sha256")):
        raise BundleError(f"manifest.json {key}", f"must name {path} and its SHA-256")
    if path not in names:
        raise BundleError(path, "listed in the manifest but missing from the bundle")
    actual = _sha256_member(zf, path)
    if actual != doc["sha256"]:
        raise BundleError(path, f"SHA-256 is {actual}, the manifest says {doc['sha256']}: file altered")
    return True


def _label_hex(label: str) -> str | None:
    """The hex SHA-256 in a WARC digest label ``sha256:<base32 or hex>``."""
    algo, _, value = label.partition(":")
    if algo.strip().lower() != "sha256":
        return None
    value = value.strip()
    try:
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b32decode(value.upper())
    except (ValueError, binascii.Error):
        return None
    return raw.hex() if len(raw) == 32 else None


def _warc_records(item: str, data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, block) of every record of a WARC (plain or gzip, one member per record or one in all)."""
    if data[:2] == b"\x1f\x8b":
        out = bytearray()
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    out += block
                    if len(out) > MAX_WEB_ARCHIVE:
                        raise BundleError(item, "decompresses to more than the limit")
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(item, f"not a readable gzip WARC: {exc}") from None
        data = bytes(out)
    records: list[tuple[dict[str, str], bytes]] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0 or not data.startswith(b"WARC/", pos):
            raise BundleError(item, f"not a WARC record at byte {pos}")
        lines = data[pos:end].decode("utf-8", "replace").split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            raise BundleError(item, f"a record at byte {pos} has no Content-Length") from None
        start = end + 4
        if length < 0 or start + length > len(data):
            raise BundleError(item, f"a record at byte {pos} is cut short")
        records.append((headers, data[start : start + length]))
        pos = start + length
        while data.startswith(b"\r\n", pos):
            pos += 2
    return records


#: response headers the archive rewrites for a stored (decoded) body; tgwatch's writer
#: (``crawler.captures.warc.archived_headers``) applies the same rule
TRANSFER_HEADERS = ("content-length", "transfer-encoding")


def archived_headers(headers: list[tuple[str, str]], body_length: int) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k.lower() not in TRANSFER_HEADERS]
    out += [(f"Tgwatch-Orig-{k}", v) for k, v in headers if k.lower() in TRANSFER_HEADERS]
    out.append(("Content-Length", str(body_length)))
    return out


def _http_head(where: str, block: bytes) -> tuple[list[str], list[tuple[str, str]], bytes]:
    """(first line's three parts, headers, body) of an ``application/http`` record block."""
    split = block.find(b"\r\n\r\n")
    if split < 0:
        raise BundleError(where, "the HTTP message has no end of headers")
    lines = block[:split].decode("utf-8", "replace").split("\r\n")
    first = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return first, headers, block[split + 4 :]


def _pair_list(value: object) -> list[tuple[str, str]] | None:
    if not isinstance(value, list):
        return None
    out = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            return None
        out.append((pair[0], pair[1]))
    return out


def _same_headers(got: list[tuple[str, str]], want: list[tuple[str, str]]) -> bool:
    """Equal in order, names case-insensitively; a value that is not ASCII is written %-encoded by
    WARC writers (RFC 8187), so for it only the name is compared."""
    if len(got) != len(want):
        return False
    for (gk, gv), (wk, wv) in zip(got, want, strict=True):
        if gk.lower() != wk.lower() or (wv.isascii() and gv != wv.strip()):
            return False
    return True


def _target(url: str) -> str:
    """The request target of ``url`` (path and query), as the archive writes it."""
    parts = urlsplit(url)
    return f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


def _page_entry(where: str, headers: dict[str, str], entries: _Entries) -> dict[str, object] | None:
    """The ``item: page`` entry a record names in ``Tgwatch-Ledger-Seq``, or None if it names none."""
    raw = headers.get("tgwatch-ledger-seq")
    if raw is None:
        return None
    try:
        seq = int(raw)
    except ValueError:
        raise BundleError(where, f"Tgwatch-Ledger-Seq {raw!r} is not a number") from None
    if seq not in entries:
        raise BundleError(where, f"names ledger entry seq {seq}, which is not in the bundle")
    payload = entries[seq][1]
    if not isinstance(payload, dict) or payload.get("item") != "page":
        return None
    if payload.get("source_url") != headers.get("warc-target-uri"):
        raise BundleError(where, f"is for {headers.get('warc-target-uri')!r}, ledger entry seq {seq} for another URL")
    return payload


def _check_request(where: str, block: bytes, page: dict[str, object]) -> None:
    request = page.get("request")
    sent = _pair_list(_obj_get(request, "headers"))
    if sent is None:
        raise BundleError(where, "its ledger entry has no request headers")
    first, headers, _ = _http_head(where, block)
    if first[:2] != [_obj_get(request, "method"), _target(str(page.get("source_url")))]:
        raise BundleError(where, f"request line {' '.join(first)!r} is not the one the ledger entry records")
    if not any(k.lower() == "host" for k, _ in sent):  # the HTTP client adds it; so does the archive
        headers = [(k, v) for k, v in headers if k.lower() != "host"]
    if not _same_headers(headers, sent):
        raise BundleError(where, "request headers differ from the ones the ledger entry records")


def _check_response(where: str, block: bytes, page: dict[str, object]) -> None:
    response = page.get("response")
    kept = _pair_list(_obj_get(response, "headers"))
    if kept is None:
        raise BundleError(where, "its ledger entry has no response headers")
    first, headers, body = _http_head(where, block)
    status = _obj_get(response, "status")
    if len(first) < 2 or first[1] != str(status):
        raise BundleError(where, f"status line {' '.join(first)!r} is not status {status} the ledger entry records")
    if not _same_headers(headers, archived_headers(kept, len(body))):
        raise BundleError(where, "response headers differ from the ones the ledger entry records")
    if hashlib.sha256(body).hexdigest() != page.get("page_sha256"):
        raise BundleError(where, "the body is not the page whose SHA-256 the ledger entry records")


def _web_archive(zf: zipfile.ZipFile, entries: _Entries) -> int:
    """Every response/resource record of the WACZ's WARCs: its payload has the SHA-256 its
    ``WARC-Payload-Digest`` gives, and a bundled ledger entry records that digest."""
    item = WEB_ARCHIVE
    try:
        inner = zipfile.ZipFile(io.BytesIO(_read(zf, WEB_ARCHIVE, MAX_WEB_ARCHIVE)))
    except zipfile.BadZipFile as exc:
        raise BundleError(item, f"not a WACZ (zip) file: {exc}") from None
    with inner:
        inner_names = set(inner.namelist())
        if any(_unsafe_name(n) for n in inner_names):
            raise BundleError(item, "holds an unsafe member name")
        package = _obj(f"{item} datapackage.json", _json(item, _read(inner, "datapackage.json", MAX_MANIFEST))
                       if "datapackage.json" in inner_names else None)  # fmt: skip
        resources = package.get("resources")
        if not isinstance(resources, list):
            raise BundleError(f"{item} datapackage.json", "resources must be a list")
        for res in resources:
            res = _obj(f"{item} datapackage.json resource", res)
            path, want = res.get("path"), res.get("hash")
            if not isinstance(path, str) or path not in inner_names or not isinstance(want, str):
                raise BundleError(f"{item} datapackage.json", f"resource {path!r} is missing from the WACZ")
            actual = "sha256:" + _sha256_member(inner, path)
            if actual != want:
                raise BundleError(f"{item} {path}", f"digest is {actual}, datapackage.json says {want}")
        digests: set[str] = set()
        for _, payload in entries.values():
            stack: list[object] = [payload]
            while stack:
                node = stack.pop()
                if isinstance(node, str) and _is_hex(node):
                    digests.add(node)
                elif isinstance(node, dict):
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
        count = 0
        for name in sorted(n for n in inner_names if n.startswith("archive/") and not n.endswith("/")):
            for headers, block in _warc_records(f"{item} {name}", _read(inner, name, MAX_WEB_ARCHIVE)):
                kind = headers.get("warc-type")
                where = f"{item} {name} record {headers.get('warc-record-id', '?')}"
                if kind in ("request", "response"):
                    page = _page_entry(where, headers, entries)
                    if page is not None:
                        (_check_request if kind == "request" else _check_response)(where, block, page)
                if kind not in ("response", "resource"):
                    continue
                body = block
                if kind == "response" and headers.get("content-type", "").startswith("application/http"):
                    split = block.find(b"\r\n\r\n")
                    if split < 0:
                        raise BundleError(where, "the HTTP response has no end of headers")
                    body = block[split + 4 :]
                want = _label_hex(headers.get("warc-payload-digest", ""))
                if want is None:
                    raise BundleError(where, "has no sha256 WARC-Payload-Digest")
                actual = hashlib.sha256(body).hexdigest()
                if actual != want:
                    raise BundleError(where, f"payload SHA-256 is {actual}, its WARC-Payload-Digest says {want}")
                if want not in digests:
                    raise BundleError(where, f"SHA-256 {want} is recorded by no bundled ledger entry")
                count += 1
    return count


def _normal_key_id(value: str) -> str:
    return value.strip().lower()


def verify_bundle(path: str | Path, *, expect_key: str | None = None) -> BundleCheck:
    """Run every check on the bundle at ``path``; the verdict names the first failing item.

    ``expect_key``: the key id the operator published; a bundle signed by any other key fails.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = _members(zf)
            public_key = _public_key(zf, names)
            size, root, key_id = _tree_head(zf, public_key)
            if expect_key is not None and key_id != _normal_key_id(expect_key):
                raise BundleError(
                    "tree_head.json", f"signed by key id {key_id}, not the expected {_normal_key_id(expect_key)}"
                )
            entries = _entries(zf, size)
            _proofs(zf, names, entries, size, root)
            manifest, digest = _manifest(zf)
            export_seq = _export(entries, manifest, digest)
            withheld_entries = _withheld(entries, manifest)
            files, withheld = _files(zf, names, entries, manifest)
            _verifier_files(zf, names, manifest)
            web_records = 0
            if _extra_member(zf, names, manifest, "web_archive", WEB_ARCHIVE):
                web_records = _web_archive(zf, entries)
            _extra_member(zf, names, manifest, "gap_report", GAP_REPORT)
    except BundleError as exc:
        return BundleCheck(False, exc.item, exc.reason)
    except RecursionError:
        return BundleCheck(False, str(path), "nested too deeply to check")
    except MemoryError:
        return BundleCheck(False, str(path), "too large to check in memory")
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        return BundleCheck(False, str(path), f"cannot read the bundle: {exc}")
    return BundleCheck(
        True,
        entries=len(entries),
        files=files,
        withheld=withheld,
        tree_size=size,
        key_id=key_id,
        key_expected=expect_key is not None,
        export_seq=export_seq,
        case=str(manifest.get("case")),
        web_records=web_records,
        withheld_entries=withheld_entries,
    )


USAGE = "usage: python verify_bundle.py [--expect-key KEYID] BUNDLE.zip"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        print(USAGE, file=sys.stderr)
        return 2
    expect_key: str | None = None
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--expect-key" and args:
            expect_key = args.pop(0)
        elif arg.startswith("--expect-key="):
            expect_key = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if (
        len(rest) != 1
        or rest[0].startswith("--")
        or (expect_key is not None and not _is_hex(_normal_key_id(expect_key)))
    ):
        print(USAGE + "  (KEYID: 64 hex digits)", file=sys.stderr)
        return 2
    if not Path(rest[0]).is_file():
        print(f"FAIL: {rest[0]}: no such file", file=sys.stderr)
        return 2
    result = verify_bundle(rest[0], expect_key=expect_key)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
