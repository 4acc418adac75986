"""A partial download on disk, sealed chunk by chunk, that a later attempt can resume.

Media being downloaded may be the very abuse material tgwatch exists to find; once fetched it is
kept only encrypted (the quarantine). Its partial file must not be the exception: each 128 KiB
plaintext chunk is one AES-256-GCM record (``nonce ‖ ciphertext ‖ tag``, the file name and the
chunk's index as associated data, so records cannot be moved between files or reordered) at a fixed
place in the file. What is on disk is therefore always "N whole chunks, perhaps a torn record",
which tells the next attempt where to resume; a record that does not authenticate (another key, a
tampered file) sends the download back to zero.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12
TAG = 16


class SealedPart:
    def __init__(self, path: Path, key: bytes, chunk: int) -> None:
        self.path = path
        self.chunk = chunk
        self.record = NONCE + chunk + TAG
        self._aead = AESGCM(key)

    def _aad(self, index: int) -> bytes:
        return f"{self.path.name}:{index}".encode()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def have(self) -> int:
        """Plaintext bytes held in whole chunks (a short final chunk counts only when it authenticates)."""
        size = self._size()
        full, rest = divmod(size, self.record)
        if full and self._read_record(0, self.record) is None:
            return 0  # sealed under another key, or not ours at all: start again
        held = full * self.chunk
        if rest > NONCE + TAG:
            tail = self._read_record(full, rest)
            if tail is not None:
                held += len(tail)
        return held

    def _read_record(self, index: int, length: int) -> bytes | None:
        with self.path.open("rb") as fh:
            fh.seek(index * self.record)
            blob = fh.read(length)
        try:
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], self._aad(index))
        except InvalidTag:
            return None

    def open_at(self, index: int) -> BinaryIO:
        """The file opened for writing record ``index`` onwards (anything after it cut off)."""
        out = self.path.open("r+b" if self.path.exists() else "wb")
        out.truncate(index * self.record)
        out.seek(index * self.record)
        return out

    def seal(self, index: int, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plain, self._aad(index))

    def read_all(self) -> bytes | None:
        """Every chunk decrypted in order, or None if any record does not authenticate."""
        data = self.path.read_bytes()
        out = bytearray()
        for index, start in enumerate(range(0, len(data), self.record)):
            blob = data[start : start + self.record]
            try:
                out += self._aead.decrypt(blob[:NONCE], blob[NONCE:], self._aad(index))
            except InvalidTag:
                return None
        return bytes(out)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
