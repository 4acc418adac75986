"""What discovery passes around: a *sighting* of a room (one link seen once, with where and why),
the triage result of one preview page, and the candidate statuses.

Why sightings and not candidates: every source (aggregator page, message, tip) only knows what it
saw; merging sightings into one candidate per canonical link is the repository's job, so the same
room advertised on three sites and forwarded twice is one candidate with five provenance entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# TriageResult is built by a source (spiders.tme_preview), so it lives in the foundation; re-exported here.
from foundation.contracts import TriageResult as TriageResult
from foundation.errors import TgwatchError
from foundation.links import LinkKind, TgLink, normalize

__all__ = [
    "CandidateStatus",
    "InvalidLink",
    "ReviewConflict",
    "Sighting",
    "SourceKind",
    "TriageResult",
    "room_link",
]


class CandidateStatus(StrEnum):
    NEW = "new"  # seen, not yet triaged
    TRIAGED = "triaged"  # preview page read and scored: waiting for review
    APPROVED = "approved"  # a target exists
    REJECTED = "rejected"


class SourceKind(StrEnum):
    AGGREGATOR = "aggregator"
    SNOWBALL = "snowball"
    TIP = "tip"
    MTPROTO = "mtproto"  # Telegram's own recommendations and global search (telegram_watch.discover)


class InvalidLink(TgwatchError):
    """A link given by a person (tip, CLI) is not a Telegram room link."""

    kind = "invalid_link"


class ReviewConflict(TgwatchError):
    """A review step that the candidate's current status does not allow (e.g. rejecting an approved one)."""

    kind = "review_conflict"


def room_link(link: TgLink | str | None) -> TgLink | None:
    """The room a link leads to: usernames and invites as they are, a public post → its channel.

    Folders and private-post links (``t.me/c/ID/N``) name no room that a preview page can show,
    so they are not candidates.
    """
    if isinstance(link, str):
        link = normalize(link)
    if link is None:
        return None
    if link.kind in (LinkKind.USERNAME, LinkKind.INVITE):
        return link
    if link.kind is LinkKind.MESSAGE and link.username is not None:
        return normalize(f"https://t.me/{link.username}")
    return None


@dataclass(frozen=True)
class Sighting:
    """One room link seen once. ``link`` is canonical (``room_link(...).canonical``)."""

    link: str
    kind: LinkKind
    source_kind: SourceKind
    source: str  # aggregator site name, source channel key, or the tip's reporter
    seen_at: datetime
    page_url: str | None = None
    message_key: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # title, description, category, tags, text
    note: str | None = None
    depth: int = 0
    priority: int = 0

    @classmethod
    def of(cls, link: TgLink, source_kind: SourceKind, source: str, seen_at: datetime, **kw: Any) -> Sighting:
        return cls(link=link.canonical, kind=link.kind, source_kind=source_kind, source=source, seen_at=seen_at, **kw)

    def provenance(self) -> dict[str, Any]:
        """The stored provenance entry (times as ISO strings: they travel to JSON Lines unchanged)."""
        entry: dict[str, Any] = {
            "source_kind": self.source_kind.value,
            "source": self.source,
            "at": self.seen_at.isoformat(),
            "depth": self.depth,
        }
        for name in ("page_url", "message_key", "note"):
            value = getattr(self, name)
            if value:
                entry[name] = value
        context = {k: v for k, v in self.context.items() if v}
        if context:
            entry["context"] = context
        return entry

    def identity(self) -> tuple[str, str, str, str]:
        """Two sightings with the same identity are the same provenance (a page crawled twice)."""
        return (self.source_kind.value, self.source, self.page_url or "", self.message_key or "")
