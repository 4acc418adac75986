"""List hygiene: per-list thresholds, allow-lists, and the quarantine of runaway entries.

The heaviest users of shared hash lists report lists that suddenly match far too much (a StopNCII
hash of an ordinary image, an "overzealous" PDQ): one bad entry then floods reviewers and, with an
``auto`` takedown policy, sends requests about innocent media. Three guards, all per list:

- ``max_distance``: a list's own near-match threshold, at most the global one (a list known to be
  noisy is matched more strictly);
- ``role: allow``: a list of known-benign digests and PDQs (platform logos, common stickers); media
  matching an allow-list entry raise no match on any list;
- runaway quarantine: an entry that matches more than ``exchanges.quarantine_after`` distinct media
  within ``exchanges.quarantine_window`` stops matching and staff get a ``hash_list_quarantine``
  alert; a reviewer releases it (``hashes release``) or leaves it held. The match that tipped it
  over raises no match alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from config.exchanges import ExchangeSettings
from crawler.media.matcher import ALLOW, BLOCK, ROLES, MatchHit, allow_hits, apply_rules
from foundation.models import Alert, AlertKind, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo

__all__ = ["ALLOW", "BLOCK", "ROLES", "RunawayGuard", "allow_hits", "apply_rules", "entry_id", "list_row"]


def entry_id(hit: MatchHit) -> str:
    return f"{hit.list}/{hit.signal_type}/{hit.value}"


class RunawayGuard:
    """Counts the distinct media each entry matches and quarantines the ones that run away."""

    def __init__(self, store: Store, settings: ExchangeSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._lists = HashListRepo(store)
        self._alerts = AlertRepo(store)
        self._settings = settings
        self._clock = clock

    async def admit(self, sha256: str, hits: list[MatchHit]) -> list[MatchHit]:
        """Record ``sha256`` against every hit entry; the hits still to alert on (an entry that just
        passed the limit is quarantined and its hit dropped)."""
        limit = self._settings.quarantine_after
        if not hits or limit <= 0:
            return hits
        now = self._clock()
        ids = {entry_id(h) for h in hits}
        await self._lists.record_hits(ids, sha256, now)
        kept: list[MatchHit] = []
        for hit in hits:
            eid = entry_id(hit)
            seen = await self._lists.distinct_hits(eid, now - self._settings.quarantine_window)
            if seen <= limit:
                kept.append(hit)
                continue
            reason = f"matched {seen} distinct media within {self._settings.quarantine_window:g} s (limit {limit})"
            if await self._lists.quarantine(eid, reason, now):
                await self._alerts.raise_alert(_quarantine_alert(hit, seen, reason))
        return kept


def _quarantine_alert(hit: MatchHit, seen: int, reason: str) -> Alert:
    details: dict[str, Any] = {**hit.to_json(), "entry": entry_id(hit), "distinct_media": seen, "reason": reason}
    return Alert(
        key=f"quarantine/{entry_id(hit)}",
        kind=AlertKind.HASH_LIST_QUARANTINE,
        summary=f"list {hit.list!r}: entry {hit.signal_type} {hit.value[:16]} quarantined ({reason})",
        details=details,
        channels=[],
        raised_at=utcnow(),
    )


def list_row(doc: dict[str, Any], reviews: dict[str, int]) -> dict[str, Any]:
    """The figures ``hashes lists`` shows for one list (precision: confirmed / reviewed matches)."""
    sync = doc.get("sync") or {}
    confirmed, rejected = int(reviews.get("confirmed", 0)), int(reviews.get("rejected", 0))
    last = sync.get("last_sync_ts")
    return {
        "source": doc.get("source") or f"file:{doc.get('format', '?')}",
        "last_sync": datetime.fromtimestamp(float(last), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last else "-",
        "last_status": sync.get("last_status"),
        "entries": sum(int(v) for v in (doc.get("counts") or {}).values()),
        "withdrawn": int(doc.get("withdrawn", 0)),
        "quarantined": int(doc.get("quarantined", 0)),
        "confirmed": confirmed,
        "rejected": rejected,
        "unreviewed": int(reviews.get("unreviewed", 0)),
        "precision": confirmed / (confirmed + rejected) if confirmed + rejected else None,
        "role": doc.get("role") or "block",
    }
