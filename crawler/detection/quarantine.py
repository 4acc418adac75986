"""Encrypted media quarantine: bytes kept for detection and evidence, never in plaintext on disk.

Each item is ``data_dir/quarantine/ab/<sha256>.bin`` = 12-byte nonce ‖ AES-256-GCM(bytes) with the
SHA-256 as associated data, so a file swapped for another's fails authentication. Items are removed
once their detection is done and the retention has passed, unless under legal hold.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from foundation.errors import TgwatchError


class QuarantineError(TgwatchError):
    kind = "quarantine"


class Quarantine:
    def __init__(self, root: Path, key: bytes) -> None:
        self._root = root
        self._aead = AESGCM(key)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise QuarantineError(f"not a sha256: {sha256!r}")
        return self._root / sha256[:2] / f"{sha256}.bin"

    def put(self, data: bytes) -> str:
        """Store bytes encrypted; returns their SHA-256. Storing the same bytes again is a no-op."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path(sha)
        if path.exists():
            return sha
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = secrets.token_bytes(12)
        blob = nonce + self._aead.encrypt(nonce, data, sha.encode())
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        tmp.replace(path)  # atomic: a reader never sees half a file
        return sha

    def get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise QuarantineError(f"media {sha256} is not in quarantine") from exc
        try:
            data = self._aead.decrypt(blob[:12], blob[12:], sha256.encode())
        except InvalidTag as exc:
            raise QuarantineError(f"media {sha256} failed authentication (tampered or wrong key)") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise QuarantineError(f"media {sha256} decrypted to other bytes")
        return data

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> bool:
        try:
            self.path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False

    def purge(self, removable: set[str], retention_seconds: float, *, now: float | None = None) -> list[str]:
        """Delete items in ``removable`` whose file is older than the retention; return what went."""
        now = time.time() if now is None else now
        removed = []
        for sha in sorted(removable):
            path = self.path(sha)
            try:
                if now - path.stat().st_mtime >= retention_seconds:
                    path.unlink()
                    removed.append(sha)
            except FileNotFoundError:
                continue
        return removed
