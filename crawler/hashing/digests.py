"""Streaming SHA-256 + MD5: a media file is read once, in chunks, and never held whole for digests.

SHA-256 is the media's identity (``_id``); MD5 is kept because hash lists (NCMEC, StopNCII video)
still exchange it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


@dataclass
class Digester:
    """Feed chunks with :meth:`update`; read ``sha256``/``md5``/``size`` at the end."""

    _sha256: Any = field(default_factory=hashlib.sha256)
    _md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    size: int = 0

    def update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return str(self._sha256.hexdigest())

    @property
    def md5(self) -> str:
        return str(self._md5.hexdigest())


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str
    size: int


def _done(d: Digester) -> Digests:
    return Digests(sha256=d.sha256, md5=d.md5, size=d.size)


def digest_chunks(chunks: Iterable[bytes]) -> Digests:
    d = Digester()
    for chunk in chunks:
        d.update(chunk)
    return _done(d)


async def digest_stream(chunks: AsyncIterable[bytes]) -> Digests:
    """Digests of an async byte stream (e.g. an aiohttp body or a Telethon download)."""
    d = Digester()
    async for chunk in chunks:
        d.update(chunk)
    return _done(d)


def digest_bytes(data: bytes) -> Digests:
    return digest_chunks([data])


def digest_file(path: Path) -> Digests:
    with path.open("rb") as fh:
        return digest_chunks(iter(lambda: fh.read(CHUNK), b""))
