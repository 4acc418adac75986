"""Stored documents as JSON-ready values: datetimes as RFC 3339 UTC, ``_id`` kept as ``key``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foundation.models import from_mongo_dt
from storage.client import Doc

#: message fields that are bookkeeping, not evidence, and are left out of API answers
HIDDEN = {"_id", "content_hash"}


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def when(value: Any) -> datetime | None:
    """A stored datetime (or the string the embedded store sometimes keeps) as aware UTC."""
    try:
        return from_mongo_dt(value) if isinstance(value, datetime | str) else None
    except ValueError:
        return None


def message_json(doc: Doc) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in HIDDEN}
    out["key"] = doc["_id"]
    out["deleted"] = doc.get("deleted_at") is not None
    return jsonable(out)


def with_key(doc: Doc) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "_id"}
    out["key"] = doc["_id"]
    return jsonable(out)
