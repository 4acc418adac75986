"""Video frame PDQ (vPDQ, after Meta's): one PDQ per second of video, and vPDQ's match rule.

Decoding uses PyAV (FFmpeg ships in its wheel). Hostile input is bounded before and during decode:
byte cap, declared frame size, declared duration, and a hard cap on decoded frames (a file may lie
about its duration). Consecutive frames whose hashes are within ``dedup_distance`` of the last kept
one are dropped — a still shot yields one hash, not one per second.

Match rule (Meta's ``vpdq_brute_matcher`` and its defaults): frames below quality 50 are ignored,
identical hashes counted once; a query frame *matches* when some target frame is within distance 31.
The videos match when at least 80 % of the query's frames match the target **and** at least 0 % of
the target's frames match the query (Meta's index default; raise it to demand a two-way overlap).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crawler.hashing.images import pdq_of_array
from crawler.hashing.pdqbits import as_words, hamming
from foundation.errors import Bomb, TooLarge, Undecodable

if TYPE_CHECKING:
    import av.container

QUALITY_THRESHOLD = 50
DISTANCE_THRESHOLD = 31
QUERY_MATCH_PERCENT = 80.0
INDEX_MATCH_PERCENT = 0.0

_PDQ_SIDE = 512


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 500 * 1024 * 1024
    max_pixels: int = 3840 * 2160  # per frame (4K)
    max_duration: float = 4 * 3600.0
    max_decoded_frames: int = 500_000
    seconds_per_hash: float = 1.0
    dedup_distance: int = 0  # 0 = drop exact repeats only (Meta's dedupe); a few bits drops near-repeats


@dataclass(frozen=True)
class FrameHash:
    """One vPDQ feature: Meta's compact form ``hex,quality,timestamp``."""

    pdq: str
    quality: int
    timestamp: float

    def __str__(self) -> str:
        return f"{self.pdq},{self.quality},{self.timestamp:.3f}"

    @classmethod
    def parse(cls, text: str) -> FrameHash:
        parts = text.split(",")
        try:
            pdq, quality, timestamp = parts
            frame = cls(pdq.strip().lower(), int(quality), float(timestamp))
        except ValueError:
            raise ValueError(f"invalid vPDQ frame {text!r}: expected 'hex,quality,timestamp'") from None
        if len(frame.pdq) != 64 or any(c not in "0123456789abcdef" for c in frame.pdq):
            raise ValueError(f"invalid vPDQ frame {text!r}: PDQ must be 64 hex characters")
        if not 0 <= frame.quality <= 100 or frame.timestamp < 0:
            raise ValueError(f"invalid vPDQ frame {text!r}: quality must be 0..100, timestamp ≥ 0")
        return frame


def frames_to_json(frames: Sequence[FrameHash]) -> str:
    """Meta's vPDQ serialization: a JSON list of ``"hex,quality,timestamp"`` strings."""
    return json.dumps([str(f) for f in frames], separators=(",", ":"))


def frames_from_json(text: str) -> list[FrameHash]:
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError:
        raise ValueError(f"invalid vPDQ signal {text[:80]!r}: not a JSON list") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"invalid vPDQ signal {text[:80]!r}: expected a JSON list of strings")
    return [FrameHash.parse(i) for i in items]


def _open(data: bytes | Path, limits: VideoLimits) -> av.container.InputContainer:
    import av  # here, not at the top: only a process that decodes a video pays for PyAV (issue 17)

    size = data.stat().st_size if isinstance(data, Path) else len(data)
    if size > limits.max_bytes:
        raise TooLarge(f"video is {size} bytes, cap is {limits.max_bytes}")
    source: str | io.BytesIO = str(data) if isinstance(data, Path) else io.BytesIO(data)
    try:
        return av.open(source, mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise Undecodable(f"not a decodable video: {exc}") from exc


def hash_video(data: bytes | Path, limits: VideoLimits | None = None) -> list[FrameHash]:
    """vPDQ features of a video: PDQ of one frame per ``seconds_per_hash``, consecutive repeats dropped."""
    import av

    limits = limits or VideoLimits()
    container = _open(data, limits)
    try:
        if not container.streams.video:
            raise Undecodable("no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > limits.max_pixels:
            raise Bomb(f"video declares {width}×{height} frames, cap is {limits.max_pixels} pixels")
        duration = float(container.duration / 1_000_000) if container.duration else 0.0
        if duration > limits.max_duration:
            raise TooLarge(f"video lasts {duration:.0f} s, cap is {limits.max_duration:.0f} s")
        out: list[FrameHash] = []
        next_t = 0.0
        decoded = 0
        for frame in container.decode(stream):
            decoded += 1
            if decoded > limits.max_decoded_frames:
                raise Bomb(f"video has more than {limits.max_decoded_frames} frames")
            t = float(frame.time) if frame.time is not None else decoded / 25.0
            if t > limits.max_duration:
                raise TooLarge(f"video runs past {limits.max_duration:.0f} s")
            if t + 1e-6 < next_t:
                continue
            next_t = (int(t / limits.seconds_per_hash) + 1) * limits.seconds_per_hash
            if frame.width * frame.height > limits.max_pixels:
                raise Bomb(f"frame of {frame.width}×{frame.height} exceeds the pixel cap")
            scale = min(1.0, _PDQ_SIDE / max(frame.width, frame.height))
            rgb = frame.reformat(
                width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)), format="rgb24"
            ).to_ndarray()
            h = pdq_of_array(rgb)
            if out and hamming(as_words([h.hash]), as_words([out[-1].pdq]))[0] <= limits.dedup_distance:
                continue
            out.append(FrameHash(h.hash, h.quality, round(t, 3)))
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise Undecodable(f"video could not be decoded: {exc}") from exc
    finally:
        container.close()
    if not out:
        raise Undecodable("video has no decodable frame")
    return out


@dataclass(frozen=True)
class VpdqMatch:
    query_match_percent: float
    target_match_percent: float

    def is_match(self, query_percent: float = QUERY_MATCH_PERCENT, target_percent: float = INDEX_MATCH_PERCENT) -> bool:
        return self.query_match_percent >= query_percent and self.target_match_percent >= target_percent


def _prepared(frames: Sequence[FrameHash], quality: int) -> np.ndarray:
    unique = list(dict.fromkeys(f.pdq for f in frames if f.quality >= quality))
    return as_words(unique) if unique else np.empty((0, 4), dtype=np.uint64)


def compare(
    query: Sequence[FrameHash],
    target: Sequence[FrameHash],
    *,
    distance: int = DISTANCE_THRESHOLD,
    quality: int = QUALITY_THRESHOLD,
) -> VpdqMatch:
    """Share of each side's (quality-filtered, deduplicated) frames that match some frame of the other."""
    q, t = _prepared(query, quality), _prepared(target, quality)
    if not len(q) or not len(t):
        return VpdqMatch(0.0, 0.0)
    close = hamming(q[:, None, :], t[None, :, :]) <= distance
    return VpdqMatch(float(100.0 * close.any(axis=1).mean()), float(100.0 * close.any(axis=0).mean()))


def is_match(
    query: Sequence[FrameHash],
    target: Sequence[FrameHash],
    *,
    distance: int = DISTANCE_THRESHOLD,
    quality: int = QUALITY_THRESHOLD,
    query_percent: float = QUERY_MATCH_PERCENT,
    target_percent: float = INDEX_MATCH_PERCENT,
) -> bool:
    """Meta's vPDQ rule with its defaults; empty (all low-quality) sides never match."""
    result = compare(query, target, distance=distance, quality=quality)
    if result.query_match_percent == 0.0 and result.target_match_percent == 0.0:
        return False
    return result.is_match(query_percent, target_percent)
