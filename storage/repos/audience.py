"""The ``audience`` collection: an entity's audience figures over time (growth).

Why a collection of its own and not the channel snapshots: triage of discovered rooms and bots (a bot
found in a message's button has no channel document) records figures too, and growth questions ("who
grew fastest this week") read every entity's points at once, which one small document per sighting
answers without reading whole header snapshots. ``_id`` is ``{entity}|{source}|{at ISO}``: ingesting
the same snapshot (or triage result) twice stores one point.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime

from storage.client import Doc, Store, translate_errors
from storage.owners import insert_once

#: the audience figures a point may carry (``foundation.models.Counters`` and ``TriageResult`` names)
FIGURES: tuple[str, ...] = ("subscribers", "members", "online", "monthly_users")


def point_id(entity: str, source: str, at: datetime) -> str:
    return f"{entity}|{source}|{at.isoformat()}"


class AudienceRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["audience"]

    async def record(
        self, entity: str, *, source: str, at: datetime, kind: str | None, figures: Mapping[str, int | None]
    ) -> bool:
        """Keep one point; False when it holds no figure or is already stored (same entity, source, time)."""
        values = {name: int(v) for name, v in figures.items() if name in FIGURES and v is not None and v >= 0}
        if not values:
            return False
        doc: Doc = {
            "_id": point_id(entity, source, at),
            "entity": entity,
            "source": source,
            "kind": kind,
            "at": at,
            "at_ts": at.timestamp(),
            **values,
        }
        return await insert_once(self._coll, doc, "record audience")

    async def series(self, entity: str, *, limit: int = 5000) -> builtins.list[Doc]:
        """One entity's points, oldest first."""
        with translate_errors("read audience"):
            cursor = self._coll.find({"entity": entity}, {"_id": 0}).sort("at_ts", 1).limit(limit)
            return await cursor.to_list(None)

    async def since(self, since_ts: float, *, limit: int = 200_000) -> builtins.list[Doc]:
        """Every point at or after ``since_ts`` (epoch seconds), oldest first: the growth ranking's input."""
        with translate_errors("read audience"):
            cursor = self._coll.find({"at_ts": {"$gte": since_ts}}, {"_id": 0}).sort("at_ts", 1).limit(limit)
            return await cursor.to_list(None)
