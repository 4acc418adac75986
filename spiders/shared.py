"""Live objects carried through Scrapy settings (the ingest door, a probe's sink).

Why a module of its own: ``spiders.settings`` builds the settings from the spider components
(``spiders.egress`` …), and those components read the shared objects back; with ``Shared`` here
neither side imports the other late.
"""

from __future__ import annotations

from typing import Any


class Shared:
    """A live object carried in Scrapy settings. Scrapy deep-copies its settings per crawler; an
    ingest door (sockets, locks) must be shared, not copied, so this wrapper copies as itself."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __copy__(self) -> Shared:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self


def shared(settings: Any, name: str) -> Any:
    """Read a ``Shared`` setting back (None when unset)."""
    value = settings.get(name)
    return value.value if isinstance(value, Shared) else value
