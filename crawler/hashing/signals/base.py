"""The signal-type contract, modelled on python-threatexchange's ``SignalType`` and ``SignalTypeIndex``.

A signal type owns everything one kind of hash needs, so adding one is one module plus one
:func:`crawler.hashing.signals.register` call:

- ``validate``: normalise a signal string from a hash list, or raise ``ValueError`` naming the bad value;
- ``hash``: compute the signal from media bytes; ``media_signals``: pick it from what the hash pool
  already computed (``MediaHashes``), so matching never decodes twice;
- ``distance`` / ``threshold``: how far apart two signals are, and the largest distance still a match;
- ``index_cls``: an in-memory index over many signals (``add`` once, ``query`` many times).

``exact`` types match by equality of normalised values. Their lists can be millions of entries, so
the matcher lets the store's ``(signal_type, value)`` index answer for them instead of holding the
lists in memory; :class:`ExactIndex` is their in-memory index where the set is small (re-uploads).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from crawler.hashing.digests import digest_bytes, digest_file

if TYPE_CHECKING:
    from crawler.hashing.pool import MediaHashes

_HEX = re.compile(r"[0-9a-f]+")


class MatchRules(Protocol):
    """The matching knobs an index or a query needs (``config.MatchingSettings`` satisfies it)."""

    @property
    def pdq_max_distance(self) -> int: ...
    @property
    def pdq_quality_floor(self) -> int: ...
    @property
    def dihedral(self) -> bool: ...
    @property
    def vpdq_query_percent(self) -> float: ...
    @property
    def vpdq_target_percent(self) -> float: ...


@dataclass(frozen=True)
class Rules:
    """Meta's defaults: PDQ match at ≤ 31, quality ≥ 50; vPDQ 80 % of query frames, 0 % of target's."""

    pdq_max_distance: int = 31
    pdq_quality_floor: int = 50
    dihedral: bool = False
    vpdq_query_percent: float = 80.0
    vpdq_target_percent: float = 0.0


DEFAULT_RULES = Rules()


class IndexHit(NamedTuple):
    """One hit: which query (position in the batch), which indexed id, at what distance."""

    query: int
    id: Hashable
    distance: float


class SignalIndex(ABC):
    """Many signals of one type under caller-chosen ids (one id may carry several signals)."""

    def __init__(self, signal_type: type[SignalType], rules: MatchRules = DEFAULT_RULES) -> None:
        self.signal_type = signal_type
        self.rules = rules

    @abstractmethod
    def add(self, ids: Sequence[Hashable], signals: Sequence[str]) -> None:
        """Bulk load ``signals[i]`` under ``ids[i]`` (values already normalised by ``validate``)."""

    @abstractmethod
    def query(self, signals: Sequence[str]) -> list[IndexHit]:
        """Every indexed signal that matches each query, by query position then distance."""

    @abstractmethod
    def __len__(self) -> int: ...


class ExactIndex(SignalIndex):
    """Equality of normalised values: a dict. Shared by every exact signal type."""

    def __init__(self, signal_type: type[SignalType], rules: MatchRules = DEFAULT_RULES) -> None:
        super().__init__(signal_type, rules)
        self._ids: dict[str, list[Hashable]] = {}

    def add(self, ids: Sequence[Hashable], signals: Sequence[str]) -> None:
        if len(ids) != len(signals):
            raise ValueError(f"{len(ids)} ids for {len(signals)} signals")
        for ident, signal in zip(ids, signals, strict=True):
            self._ids.setdefault(signal, []).append(ident)

    def query(self, signals: Sequence[str]) -> list[IndexHit]:
        return [IndexHit(q, ident, 0) for q, signal in enumerate(signals) for ident in self._ids.get(signal, ())]

    def __len__(self) -> int:
        return len(self._ids)


class BruteForceIndex(SignalIndex):
    """Every query against every signal with the type's ``distance``: the default for a new type,
    right for small lists; a type with many signals brings its own index (PDQ does)."""

    def __init__(self, signal_type: type[SignalType], rules: MatchRules = DEFAULT_RULES) -> None:
        super().__init__(signal_type, rules)
        self._entries: list[tuple[Hashable, str]] = []

    def add(self, ids: Sequence[Hashable], signals: Sequence[str]) -> None:
        if len(ids) != len(signals):
            raise ValueError(f"{len(ids)} ids for {len(signals)} signals")
        self._entries += zip(ids, signals, strict=True)

    def query(self, signals: Sequence[str]) -> list[IndexHit]:
        kind = self.signal_type
        hits: list[IndexHit] = []
        for q, signal in enumerate(signals):
            found = [IndexHit(q, ident, kind.distance(signal, value)) for ident, value in self._entries]
            hits += sorted((h for h in found if h.distance <= kind.threshold), key=lambda h: h.distance)
        return hits

    def __len__(self) -> int:
        return len(self._entries)


class SignalType(ABC):
    """Base: subclasses set ``name`` and ``threshold`` and implement ``validate``, ``hash``, ``distance``."""

    name: ClassVar[str]
    threshold: ClassVar[float]
    exact: ClassVar[bool] = False
    index_cls: ClassVar[type[SignalIndex]] = BruteForceIndex

    @classmethod
    @abstractmethod
    def validate(cls, signal: str) -> str: ...

    @classmethod
    @abstractmethod
    def hash(cls, data: bytes | Path) -> str: ...

    @classmethod
    @abstractmethod
    def distance(cls, a: str, b: str) -> float: ...

    @classmethod
    def matches(cls, a: str, b: str, threshold: float | None = None) -> bool:
        return cls.distance(a, b) <= (cls.threshold if threshold is None else threshold)

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: MatchRules = DEFAULT_RULES) -> list[str]:
        """This type's signals of one hashed medium, the queries matching runs (none by default)."""
        return []

    @classmethod
    def build_index(
        cls, ids: Sequence[Hashable], signals: Sequence[str], rules: MatchRules = DEFAULT_RULES
    ) -> SignalIndex:
        index = cls.index_cls(cls, rules)
        index.add(ids, signals)
        return index


class ExactDigestSignal(SignalType):
    """A cryptographic digest of the bytes: equal or not. Subclasses name the digest (``field`` of
    :class:`~crawler.hashing.digests.Digests` and of ``MediaHashes``) and its hex length."""

    threshold = 0
    exact = True
    index_cls = ExactIndex
    hex_length: ClassVar[int]
    field: ClassVar[str]

    @classmethod
    def validate(cls, signal: str) -> str:
        return hex_of_len(cls.name, signal, cls.hex_length)

    @classmethod
    def hash(cls, data: bytes | Path) -> str:
        digests = digest_file(data) if isinstance(data, Path) else digest_bytes(data)
        return str(getattr(digests, cls.field))

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        return 0 if cls.validate(a) == cls.validate(b) else 1

    @classmethod
    def media_signals(cls, media: MediaHashes, rules: MatchRules = DEFAULT_RULES) -> list[str]:
        return [str(getattr(media, cls.field))]


def hex_of_len(type_name: str, value: str, length: int) -> str:
    """``value`` lower-cased and stripped if it is ``length`` hex characters, else ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"invalid {type_name} signal {value!r}: not a string")
    norm = value.strip().lower()
    if len(norm) != length or not _HEX.fullmatch(norm):
        raise ValueError(f"invalid {type_name} signal {value!r}: expected {length} hex characters")
    return norm
