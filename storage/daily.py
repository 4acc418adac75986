"""Counts per UTC day and per value, for the console's dashboard, with queries every store answers alike.

Why ``count_documents`` per day and not one ``$group`` per day: inside ``aggregate`` the embedded
nx-27017 server does not apply a ``$match`` comparison on a datetime (every document passes), nor
evaluate a compound ``$group`` key or ``$floor``; ``count_documents`` and ``distinct`` with range
filters behave as on MongoDB 7 (``tests/test_dashboard.py`` runs them on the embedded server). A
week is seven small counts, each served by the field's index where there is one. The owners of the
collections call these with their own collection handle (nobody else touches a collection).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.client import Doc, translate_errors
from storage.owners import StoreCollection

DAY_FORMAT = "%Y-%m-%d"


def _bounds(start: datetime, end: datetime, epoch: bool) -> Doc:
    if epoch:
        return {"$gte": start.timestamp(), "$lt": end.timestamp()}
    return {"$gte": start, "$lt": end}


async def per_day(
    coll: StoreCollection,
    field: str,
    since: datetime,
    until: datetime,
    match: Doc | None = None,
    *,
    epoch: bool = False,
) -> dict[str, int]:
    """``{"YYYY-MM-DD": n}`` for each UTC day from ``since`` to before ``until`` (both at midnight);
    ``epoch``: the field holds epoch seconds rather than a datetime."""
    out: dict[str, int] = {}
    day = since
    with translate_errors(f"count {coll.name} per day"):
        while day < until:
            nxt = day + timedelta(days=1)
            n = await coll.count_documents({**(match or {}), field: _bounds(day, min(nxt, until), epoch)})
            if n:
                out[day.strftime(DAY_FORMAT)] = n
            day = nxt
    return out


async def per_value(
    coll: StoreCollection, key: str, field: str, since: datetime, until: datetime, match: Doc | None = None
) -> dict[str, int]:
    """``{value of key: n}`` of documents whose datetime ``field`` is in [since, until)."""
    out: dict[str, int] = {}
    with translate_errors(f"count {coll.name} per {key}"):
        for value in await coll.distinct(key, match or {}):
            n = await coll.count_documents({**(match or {}), key: value, field: _bounds(since, until, False)})
            if n:
                out[str(value)] = n
    return out
