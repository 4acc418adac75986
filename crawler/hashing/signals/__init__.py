"""Signal types and their registry, modelled on python-threatexchange's ``SignalType``.

A signal type (:class:`SignalType`, one module each) validates list values, hashes media, measures
distance and builds its index; the list parsers, the media matcher, ``hashes match`` and re-upload
detection all find types here by name. Adding a type is one module and one :func:`register` call.
"""

from __future__ import annotations

from crawler.hashing.signals.base import (
    DEFAULT_RULES,
    BruteForceIndex,
    ExactIndex,
    IndexHit,
    MatchRules,
    Rules,
    SignalIndex,
    SignalType,
)
from crawler.hashing.signals.md5 import Md5Signal
from crawler.hashing.signals.pdq import PdqSignal, PdqSignalIndex
from crawler.hashing.signals.sha256 import Sha256Signal
from crawler.hashing.signals.vpdq import VpdqSignal, VpdqSignalIndex

#: name → signal type, in matching order (exact identities first)
SIGNAL_TYPES: dict[str, type[SignalType]] = {}
REGISTRY = SIGNAL_TYPES  # the earlier name


def register(signal_type: type[SignalType]) -> type[SignalType]:
    """Make a signal type known by its (lower-case) name; usable as a class decorator."""
    name = signal_type.name
    if name != name.strip().lower() or not name:
        raise ValueError(f"signal type names are lower-case words, got {name!r}")
    if SIGNAL_TYPES.get(name, signal_type) is not signal_type:
        raise ValueError(f"signal type {name!r} is already registered")
    SIGNAL_TYPES[name] = signal_type
    return signal_type


def unregister(name: str) -> None:
    """Forget a signal type (tests register toy types and take them back)."""
    SIGNAL_TYPES.pop(name, None)


def get(name: str) -> type[SignalType]:
    """Signal type by name (case-insensitive); ``ValueError`` naming the unknown one."""
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown signal type {name!r}; known: {', '.join(sorted(SIGNAL_TYPES))}") from None


for _builtin in (Sha256Signal, Md5Signal, PdqSignal, VpdqSignal):
    register(_builtin)

__all__ = [
    "DEFAULT_RULES",
    "REGISTRY",
    "SIGNAL_TYPES",
    "BruteForceIndex",
    "ExactIndex",
    "IndexHit",
    "MatchRules",
    "Md5Signal",
    "PdqSignal",
    "PdqSignalIndex",
    "Rules",
    "Sha256Signal",
    "SignalIndex",
    "SignalType",
    "VpdqSignal",
    "VpdqSignalIndex",
    "get",
    "register",
    "unregister",
]
