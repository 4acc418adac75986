"""Growth over time: an entity's audience series and the ranking of the fastest-growing rooms and bots.

Pure functions over the points ``storage.repos.audience.AudienceRepo`` returns, so the CLI
(``tgwatch channels growth|growing``) and the console (channel list, channel page) show the same
numbers. The *audience* of a point is the one figure that measures the entity's reach: a bot's
monthly users, a channel's subscribers, a group's members (whichever the point carries, in that
order); ``online`` is charted but never ranked (it swings within a day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: the figure that measures reach, first present wins
REACH_ORDER: tuple[str, ...] = ("monthly_users", "subscribers", "members")
KINDS: tuple[str, ...] = ("bot", "channel", "group")


def reach(point: Mapping[str, Any]) -> int | None:
    for name in REACH_ORDER:
        value = point.get(name)
        if isinstance(value, int):
            return value
    return None


def kind_of(points: Sequence[Mapping[str, Any]]) -> str:
    """``bot``, ``group`` or ``channel``: from the sources' kind words, else from the figures present."""
    words = {str(p.get("kind") or "").lower() for p in points}
    if "bot" in words or any(p.get("monthly_users") is not None for p in points):
        return "bot"
    if words & {"group", "megagroup", "supergroup"} or any(p.get("members") is not None for p in points):
        return "group"
    return "channel"


@dataclass(frozen=True)
class Growth:
    entity: str
    kind: str
    first: int
    last: int
    first_at: datetime
    last_at: datetime
    points: int

    @property
    def change(self) -> int:
        return self.last - self.first

    @property
    def ratio(self) -> float | None:
        """Relative change (0.5 = +50 %); None when the first figure is 0."""
        return self.change / self.first if self.first else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "kind": self.kind,
            "first": self.first,
            "last": self.last,
            "change": self.change,
            "ratio": self.ratio,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "points": self.points,
        }


def growth_of(entity: str, points: Sequence[Mapping[str, Any]]) -> Growth | None:
    """First and last reach figure among ``points`` (oldest first); None with fewer than two."""
    measured = [(p, reach(p)) for p in points]
    usable = [(p, v) for p, v in measured if v is not None]
    if len(usable) < 2:
        return None
    (first, first_value), (last, last_value) = usable[0], usable[-1]
    assert first_value is not None and last_value is not None
    return Growth(entity, kind_of(points), first_value, last_value, first["at"], last["at"], len(usable))


def by_entity(points: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for point in points:
        grouped.setdefault(str(point["entity"]), []).append(point)
    for series in grouped.values():
        series.sort(key=lambda p: float(p.get("at_ts") or 0.0))
    return grouped


def ranking(points: Iterable[Mapping[str, Any]], *, kind: str | None = None, limit: int = 50) -> list[Growth]:
    """Entities by absolute growth of their reach (largest first; then relative growth, then name)."""
    found = [g for e, series in by_entity(points).items() if (g := growth_of(e, series)) is not None]
    if kind is not None:
        found = [g for g in found if g.kind == kind]
    found.sort(key=lambda g: (-g.change, -(g.ratio or 0.0), g.entity))
    return found[:limit]
