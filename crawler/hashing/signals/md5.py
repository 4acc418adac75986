"""MD5: exact bytes, as older lists (NCMEC, StopNCII's VideoMD5) still exchange them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crawler.hashing.digests import digest_bytes, digest_file
from crawler.hashing.signals.base import DEFAULT_RULES, ExactIndex, MatchRules, SignalType, hex_of_len

if TYPE_CHECKING:
    from crawler.hashing.pool import MediaHashes


class Md5Signal(SignalType):
    name = "md5"
    threshold = 0
    exact = True
    index_cls = ExactIndex

    @classmethod
    def validate(cls, signal: str) -> str:
        return hex_of_len(cls.name, signal, 32)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return (digest_file(data) if isinstance(data, Path) else digest_bytes(data)).md5

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return 0 if cls.validate(a) == cls.validate(b) else 1

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: MatchRules = DEFAULT_RULES) -> list[str]:
        return [media.md5]
