"""PDQ: Meta's photo hash, 256 bits as 64 hex; Hamming distance; match at ≤ 31.

Its index is the one ``PdqIndex`` (exact multi-index hashing); vPDQ indexes its frames with it too.
A PDQ below the quality floor is never a query: flat or tiny images collide with everything.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from crawler.hashing.images import hash_image
from crawler.hashing.index import PdqIndex
from crawler.hashing.pdqbits import hex_distance
from crawler.hashing.signals.base import DEFAULT_RULES, IndexHit, MatchRules, SignalIndex, SignalType, hex_of_len

if TYPE_CHECKING:
    from crawler.hashing.pool import MediaHashes


class PdqSignalIndex(SignalIndex):
    """``PdqIndex`` at ``rules.pdq_max_distance``. ``add`` is a bulk load: the tables are rebuilt
    after it, since both users build an index once per change of what they match against."""

    def __init__(self, signal_type: type[SignalType], rules: MatchRules = DEFAULT_RULES) -> None:
        super().__init__(signal_type, rules)
        self.pdq = PdqIndex(max_distance=rules.pdq_max_distance)

    def add(self, ids: Sequence[Hashable], signals: Sequence[str]) -> None:
        if signals:
            self.pdq.add(ids, signals)
            if self.pdq.pending:  # ``add`` may have rebuilt already (a large delta)
                self.pdq.rebuild()

    def query(self, signals: Sequence[str]) -> list[IndexHit]:
        return [IndexHit(m.query, m.id, m.distance) for m in self.pdq.query(signals)] if signals else []

    def __len__(self) -> int:
        return len(self.pdq)


class PdqSignal(SignalType):
    name = "pdq"
    threshold = 31
    quality_threshold: ClassVar[int] = 50
    index_cls = PdqSignalIndex

    @classmethod
    def validate(cls, signal: str) -> str:
        return hex_of_len(cls.name, signal, 64)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        return hash_image(data).pdq.hash

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return hex_distance(cls.validate(a), cls.validate(b))

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: MatchRules = DEFAULT_RULES) -> list[str]:
        """Usable PDQs of an image (frame 0 and animation frames), plus its dihedral set when asked."""
        floor = rules.pdq_quality_floor
        usable = [h.hash for h in (media.pdq, *media.frames) if h and h.quality >= floor]
        if rules.dihedral and media.pdq and media.pdq.quality >= floor:
            usable += list(media.dihedral)
        return usable
