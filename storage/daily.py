"""Counts per UTC day and per value, for the console's dashboard, in the aggregation subset every store runs.

Why these shapes: the embedded nx-27017 server evaluates a ``$group`` key that is one expression
(``"$kind"``, ``{"$dateToString": ...}``) but not a document of several (it groups everything under
the literal document), nor ``$floor``; so each count is a ``$match`` on a datetime range and a
``$group`` on one expression, which MongoDB 7 answers the same way. The owners of the collections call
these with their own collection handle (nobody else touches a collection).
"""

from __future__ import annotations

from datetime import datetime

from storage.client import Doc, translate_errors
from storage.owners import StoreCollection

DAY_FORMAT = "%Y-%m-%d"


async def per_day(
    coll: StoreCollection, field: str, since: datetime, until: datetime, match: Doc | None = None
) -> dict[str, int]:
    """``{"YYYY-MM-DD": n}`` of documents whose datetime ``field`` is in [since, until) (UTC days)."""
    pipeline: list[Doc] = [
        {"$match": {**(match or {}), field: {"$gte": since, "$lt": until}}},
        {"$group": {"_id": {"$dateToString": {"format": DAY_FORMAT, "date": f"${field}"}}, "n": {"$sum": 1}}},
    ]
    return await _grouped(coll, pipeline, f"count {coll.name} per day")


async def per_value(
    coll: StoreCollection, key: str, field: str, since: datetime, until: datetime, match: Doc | None = None
) -> dict[str, int]:
    """``{value of key: n}`` of documents whose datetime ``field`` is in [since, until)."""
    pipeline: list[Doc] = [
        {"$match": {**(match or {}), field: {"$gte": since, "$lt": until}}},
        {"$group": {"_id": f"${key}", "n": {"$sum": 1}}},
    ]
    return await _grouped(coll, pipeline, f"count {coll.name} per {key}")


async def _grouped(coll: StoreCollection, pipeline: list[Doc], action: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with translate_errors(action):
        async for row in await coll.aggregate(pipeline):
            out[str(row["_id"])] = int(row["n"])
    return out

