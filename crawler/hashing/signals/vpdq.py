"""vPDQ: video frame PDQ, Meta's JSON list of ``"hex,quality,timestamp"`` frames.

``distance`` is ``100 - query match percent`` (a's frames matched in b), so the default
``threshold`` of 20 is vPDQ's 80 % rule; :func:`crawler.hashing.video.is_match` applies the full
two-way rule. A bare 64-hex PDQ is accepted as a one-frame signal.

The index is Meta's vPDQ index shape: every usable frame of every listed video in one ``PdqIndex``,
then per listed video the share of the query's frames that found one of its frames and the share
of its frames found. That is ``video.compare`` for every listed video, without comparing each.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from crawler.hashing import video
from crawler.hashing.index import PdqIndex
from crawler.hashing.signals.base import DEFAULT_RULES, IndexHit, MatchRules, SignalIndex, SignalType, hex_of_len

if TYPE_CHECKING:
    from crawler.hashing.pool import MediaHashes


def _usable(signal: str, floor: int) -> list[str]:
    """The distinct PDQs of a vPDQ signal's frames at or above the quality floor (vPDQ's prefilter)."""
    return list(dict.fromkeys(f.pdq for f in video.frames_from_json(signal) if f.quality >= floor))


class VpdqSignalIndex(SignalIndex):
    """A hit is a listed video the query matches by ``rules.vpdq_query_percent`` of the query's
    frames and ``rules.vpdq_target_percent`` of the listed video's; its distance is
    ``100 - query match percent`` rounded to 2 places. Hits come in list order."""

    def __init__(self, signal_type: type[SignalType], rules: MatchRules = DEFAULT_RULES) -> None:
        super().__init__(signal_type, rules)
        self._frames = PdqIndex(max_distance=rules.pdq_max_distance)
        self._ids: list[Hashable] = []
        self._sizes: list[int] = []  # usable distinct frames per listed video

    def add(self, ids: Sequence[Hashable], signals: Sequence[str]) -> None:
        if len(ids) != len(signals):
            raise ValueError(f"{len(ids)} ids for {len(signals)} signals")
        frame_ids: list[tuple[int, int]] = []
        frame_hashes: list[str] = []
        for ident, signal in zip(ids, signals, strict=True):
            entry = len(self._ids)
            frames = _usable(signal, self.rules.pdq_quality_floor)
            self._ids.append(ident)
            self._sizes.append(len(frames))
            frame_ids += [(entry, n) for n in range(len(frames))]
            frame_hashes += frames
        if frame_hashes:
            self._frames.add(frame_ids, frame_hashes)
            if self._frames.pending:  # ``add`` may have rebuilt already (a large delta)
                self._frames.rebuild()

    def query(self, signals: Sequence[str]) -> list[IndexHit]:
        return [hit for q, signal in enumerate(signals) for hit in self._query_one(q, signal)]

    def _query_one(self, q: int, signal: str) -> list[IndexHit]:
        query_pct, target_pct = self.rules.vpdq_query_percent, self.rules.vpdq_target_percent
        frames = _usable(signal, self.rules.pdq_quality_floor)
        query_found: dict[int, set[int]] = {}  # listed video → its query frames that matched
        target_found: dict[int, set[int]] = {}  # listed video → its frames that matched
        for match in self._frames.query(frames) if frames else ():
            entry, n = cast(tuple[int, int], match.id)
            query_found.setdefault(entry, set()).add(match.query)
            target_found.setdefault(entry, set()).add(n)
        # with both shares allowed to be 0 %, even a listed video no frame reached matches (as in compare)
        candidates = range(len(self._ids)) if query_pct <= 0 and target_pct <= 0 else sorted(query_found)
        hits = []
        for entry in candidates:
            size = self._sizes[entry]
            if frames and size:
                query_match = 100.0 * (len(query_found.get(entry, ())) / len(frames))
                target_match = 100.0 * (len(target_found.get(entry, ())) / size)
            else:
                query_match = target_match = 0.0
            if query_match >= query_pct and target_match >= target_pct:
                hits.append(IndexHit(q, self._ids[entry], round(100 - query_match, 2)))
        return hits

    def __len__(self) -> int:
        return len(self._ids)


class VpdqSignal(SignalType):
    name = "vpdq"
    threshold = 100.0 - video.QUERY_MATCH_PERCENT
    index_cls = VpdqSignalIndex

    @classmethod
    def validate(cls, signal: str) -> str:
        if not isinstance(signal, str):
            raise ValueError(f"invalid {cls.name} signal {signal!r}: not a string")
        text = signal.strip()
        if text and not text.startswith("["):
            one = hex_of_len(cls.name, text, 64) if "," not in text else None
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

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: MatchRules = DEFAULT_RULES) -> list[str]:
        """A video's usable frames as one signal (none for media that is not a video)."""
        if not media.video_frames:
            return []
        return [video.frames_to_json([f for f in media.video_frames if f.quality >= rules.pdq_quality_floor])]
