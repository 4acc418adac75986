"""Signal types, modelled on python-threatexchange's ``SignalType``.

A signal type knows how to validate (normalise, or raise ``ValueError`` naming the bad value) a
signal string from a hash list, how to compute it from media, and how far apart two signals are.
``threshold`` is the largest distance still called a match. ``REGISTRY`` finds a type by name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from crawler.hashing import video
from crawler.hashing.digests import digest_bytes, digest_file
from crawler.hashing.images import hash_image
from crawler.hashing.pdqbits import hex_distance

_HEX = re.compile(r"[0-9a-f]+")


def _hex_of_len(cls_name: str, value: str, length: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"invalid {cls_name} signal {value!r}: not a string")
    norm = value.strip().lower()
    if len(norm) != length or not _HEX.fullmatch(norm):
        raise ValueError(f"invalid {cls_name} signal {value!r}: expected {length} hex characters")
    return norm


class SignalType:
    """Base: subclasses set ``name`` and ``threshold`` and implement the four classmethods."""

    name: ClassVar[str]
    threshold: ClassVar[float]

    @classmethod
    def validate(cls, signal: str) -> str:
        raise NotImplementedError

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        raise NotImplementedError

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        raise NotImplementedError

    @classmethod
    def matches(cls, a: str, b: str, threshold: float | None = None) -> bool:
        return cls.distance(a, b) <= (cls.threshold if threshold is None else threshold)


class Sha256Signal(SignalType):
    """Exact bytes: the media's identity."""

    name = "sha256"
    threshold = 0

    @classmethod
    def validate(cls, signal: str) -> str:
        return _hex_of_len(cls.name, signal, 64)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return (digest_file(data) if isinstance(data, Path) else digest_bytes(data)).sha256

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return 0 if cls.validate(a) == cls.validate(b) else 1


class Md5Signal(Sha256Signal):
    """Exact bytes, as older lists (and StopNCII's VideoMD5) exchange them."""

    name = "md5"

    @classmethod
    def validate(cls, signal: str) -> str:
        return _hex_of_len(cls.name, signal, 32)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return (digest_file(data) if isinstance(data, Path) else digest_bytes(data)).md5


class PdqSignal(SignalType):
    """Meta's PDQ photo hash: 256 bits as 64 hex; Hamming distance; match at ≤ 31."""

    name = "pdq"
    threshold = 31
    quality_threshold: ClassVar[int] = 50

    @classmethod
    def validate(cls, signal: str) -> str:
        return _hex_of_len(cls.name, signal, 64)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return hash_image(data).pdq.hash

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return hex_distance(cls.validate(a), cls.validate(b))


class VpdqSignal(SignalType):
    """Video frame PDQ (vPDQ): Meta's JSON list of ``"hex,quality,timestamp"`` frames.

    ``distance`` is ``100 - query match percent`` (a's frames matched in b), so the default
    ``threshold`` of 20 is vPDQ's 80 % rule; :func:`crawler.hashing.video.is_match` applies the
    full two-way rule. A bare 64-hex PDQ is accepted as a one-frame signal.
    """

    name = "vpdq"
    threshold = 100.0 - video.QUERY_MATCH_PERCENT

    @classmethod
    def validate(cls, signal: str) -> str:
        if not isinstance(signal, str):
            raise ValueError(f"invalid {cls.name} signal {signal!r}: not a string")
        text = signal.strip()
        if text and not text.startswith("["):
            one = _hex_of_len(cls.name, text, 64) if "," not in text else None
            frames = [video.FrameHash(one, 100, 0.0)] if one else [video.FrameHash.parse(text)]
        else:
            frames = video.frames_from_json(text)
        if not frames:
            raise ValueError(f"invalid {cls.name} signal {signal!r}: no frames")
        return video.frames_to_json(frames)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return video.frames_to_json(video.hash_video(data))

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        fa = video.frames_from_json(cls.validate(a))
        fb = video.frames_from_json(cls.validate(b))
        return 100.0 - video.compare(fa, fb).query_match_percent


REGISTRY: dict[str, type[SignalType]] = {t.name: t for t in (Sha256Signal, Md5Signal, PdqSignal, VpdqSignal)}


def get(name: str) -> type[SignalType]:
    """Signal type by name (case-insensitive); ``ValueError`` naming the unknown one."""
    try:
        return REGISTRY[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown signal type {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
