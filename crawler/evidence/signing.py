"""Ed25519 keys and signed tree heads.

The private key lives in a file on the signing host, written with mode 0600 by :func:`generate_key`
(and refused by :func:`load_private_key` if group or others can read it, as ssh does). It is never
stored in MongoDB and never logged: only the public key and its ``key_id`` travel.

A signed tree head (STH) is::

    {"size": N, "root_hash": "<64 lower-case hex>", "timestamp": "<RFC 3339 UTC>",
     "signature": "<standard base64 with padding>", "key_id": "<64 lower-case hex>"}

- ``root_hash`` is the RFC 9162 MTH of the first ``size`` ledger entries;
- ``timestamp`` is when the head was signed, spelled ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
- ``key_id`` is SHA-256 of the 32-byte raw Ed25519 public key, hex;
- ``signature`` is Ed25519 (RFC 8032, pure, no pre-hash) over exactly these bytes, the RFC 8785
  canonical JSON of the three signed members::

      {"root_hash":"<hex>","size":<N>,"timestamp":"<RFC 3339>"}

  (UTF-8, no whitespace, no trailing newline; members in that order because JCS sorts names).
  ``key_id`` is not signed: it only says which key to try, and a wrong one fails verification.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crawler.evidence.canonical import canonicalize, rfc3339_utc
from foundation.errors import ConfigError

PRIVATE_KEY_FILE = "evidence-ed25519.pem"
PUBLIC_KEY_FILE = "evidence-ed25519.pub.pem"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")  # the one spelling rfc3339_utc makes


@dataclass(frozen=True)
class KeyFiles:
    private_path: Path
    public_path: Path
    key_id: str


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head; ``to_dict()`` is the JSON form stored and bundled."""

    size: int
    root_hash: str
    timestamp: str
    signature: str
    key_id: str

    def signed_message(self) -> bytes:
        return tree_head_message(self.size, self.root_hash, self.timestamp)

    def to_dict(self) -> dict[str, object]:
        return {
            "size": self.size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "signature": self.signature,
            "key_id": self.key_id,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> TreeHead:
        """Parse and validate the shape (not the signature); ``ValueError`` names the bad member."""
        size, root, ts, sig, kid = (doc.get(k) for k in ("size", "root_hash", "timestamp", "signature", "key_id"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"tree head size must be a non-negative integer, got {size!r}")
        if not isinstance(root, str) or not _HEX64.fullmatch(root):
            raise ValueError(f"tree head root_hash must be 64 lower-case hex digits, got {root!r}")
        if not isinstance(ts, str) or not _RFC3339_UTC.fullmatch(ts):
            raise ValueError(f"tree head timestamp must be RFC 3339 UTC YYYY-MM-DDTHH:MM:SS.ffffffZ, got {ts!r}")
        if not isinstance(sig, str):
            raise ValueError("tree head signature must be a base64 string")
        if not isinstance(kid, str) or not _HEX64.fullmatch(kid):
            raise ValueError(f"tree head key_id must be 64 lower-case hex digits, got {kid!r}")
        return cls(size=size, root_hash=root, timestamp=ts, signature=sig, key_id=kid)


def tree_head_message(size: int, root_hash_hex: str, timestamp: str) -> bytes:
    """The exact bytes a tree head signature covers (see the module docstring)."""
    return canonicalize({"size": size, "root_hash": root_hash_hex, "timestamp": timestamp})


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: how heads name their key."""
    return hashlib.sha256(public_key_raw(public_key)).hexdigest()


def generate_key(directory: Path, *, name: str = PRIVATE_KEY_FILE) -> KeyFiles:
    """Create a new signing key: private PEM (PKCS#8) with mode 0600, public PEM beside it.

    Refuses to overwrite an existing key (``ConfigError``): replacing a key silently would orphan
    every tree head signed with it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / name
    public_path = directory / (name.removesuffix(".pem") + ".pub.pem")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"an evidence signing key already exists at {private_path}; not overwriting it") from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        os.write(fd, pem)
    finally:
        os.close(fd)
    public = key.public_key()
    public_path.write_bytes(public_key_pem(public))
    return KeyFiles(private_path=private_path, public_path=public_path, key_id=key_id(public))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the signing key; refuses a file that group or others may read (``ConfigError``)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the evidence signing key at {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"evidence signing key {path} is accessible by group/others (mode {mode & 0o777:o}); chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM, 64 hex digits, or 32 raw bytes."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"PEM holds a {type(key).__name__}, not an Ed25519 key")
            return key
        raw = bytes.fromhex(text.decode("ascii")) if len(text) == 64 else data
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an Ed25519 public key: {exc}") from exc


def sign_tree_head(private_key: Ed25519PrivateKey, size: int, root_hash: bytes, timestamp: datetime) -> TreeHead:
    """Sign the head of the first ``size`` entries whose RFC 9162 root is ``root_hash``."""
    ts = rfc3339_utc(timestamp)
    root_hex = root_hash.hex()
    signature = private_key.sign(tree_head_message(size, root_hex, ts))
    return TreeHead(
        size=size,
        root_hash=root_hex,
        timestamp=ts,
        signature=base64.b64encode(signature).decode("ascii"),
        key_id=key_id(private_key.public_key()),
    )


def verify_tree_head(head: TreeHead, public_key: Ed25519PublicKey) -> bool:
    """True when ``head`` names ``public_key`` and its signature over the signed members holds."""
    if head.key_id != key_id(public_key):
        return False
    try:
        signature = base64.b64decode(head.signature, validate=True)
        public_key.verify(signature, head.signed_message())
    except (ValueError, InvalidSignature):
        return False
    return True
