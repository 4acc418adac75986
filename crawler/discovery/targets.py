"""The hand-off from discovery to the scheduler: approving a candidate creates a crawl target.

``storage.repos.targets.TargetRepo`` owns the ``targets`` collection (schema entry, scheduling
fields, pausing); discovery only ever creates a target through this one function, with the agreed document shape::

    {_id: canonical link, kind, method: "web" | "mtproto", source: "candidate", created_at, paused: false}

(an invite target also records the ``authorization_id`` that allowed it). Creating an existing
target is a no-op that returns the stored document, so approving twice cannot duplicate work.
"""

from __future__ import annotations

from typing import Any, Literal

from foundation.errors import ConfigError
from foundation.links import LinkKind, normalize
from foundation.models import utcnow
from storage.client import Doc, Store
from storage.repos.targets import TargetRepo

Method = Literal["web", "mtproto"]
METHODS: tuple[Method, ...] = ("web", "mtproto")


async def create_target(
    store: Store, link: str, method: Method, *, authorization_id: str | None = None, **extra: Any
) -> Doc:
    """Create (or return the existing) crawl target for a canonical room link."""
    parsed = normalize(link)
    if parsed is None or parsed.kind not in (LinkKind.USERNAME, LinkKind.INVITE):
        raise ConfigError(f"{link!r} is not a room link a target can be made of", code="targets.bad_name",
                          params={"name": link})  # fmt: skip
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}", code="targets.bad_method",
                          params={"value": method})  # fmt: skip
    if parsed.kind is LinkKind.INVITE and method != "mtproto":
        raise ConfigError("an invite can only be followed over MTProto (method 'mtproto')",
                          code="targets.invite_needs_mtproto", params={"name": link})  # fmt: skip
    doc: Doc = {
        "_id": parsed.canonical,
        "kind": parsed.kind.value,
        "method": method,
        "source": "candidate",
        "created_at": utcnow(),
        "paused": False,
        **extra,
    }
    if authorization_id is not None:
        doc["authorization_id"] = authorization_id
    return await TargetRepo(store).insert_new(doc)


async def get_target(store: Store, link: str) -> Doc | None:
    return await TargetRepo(store).get_key(link)


async def existing_targets(store: Store, links: list[str]) -> set[str]:
    """Which of these canonical links are targets already (the snowball skips them)."""
    return await TargetRepo(store).existing(links)
