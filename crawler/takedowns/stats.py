"""Removal figures: how fast requests go out, how fast content comes down, what is overdue.

Computed from the requests alone with an explicit ``now``, so the figures are reproducible (tests
drive them with controlled clocks) and the CLI, console, API and Prometheus all show the same
numbers. Definitions (also in ``docs/takedowns.md``):

- *detection → request*: request ``created_at`` − ``detected_at`` (earliest alert or first sighting);
- *request → removal*: per item, ``removed_at`` − the first sending that included the item (0 when
  it was gone before it was sent; an item added by a re-upload is measured from the sending after
  it); items still online are not in the durations but are in the shares;
- *removed within W* (24 h, 7 d, 30 d): among items sent at least W ago, the share found removed no
  later than W after their sending. Also per request (every such item removed within W);
- *overdue*: open requests with an item sent more than ``overdue_after`` ago and still not removed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.takedowns.models import OPEN_STATUSES, ItemStatus, TakedownRequest

WINDOWS: tuple[tuple[str, float], ...] = (("24h", 86_400.0), ("7d", 7 * 86_400.0), ("30d", 30 * 86_400.0))


@dataclass
class Durations:
    count: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        if not values:
            return cls()
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return cls(len(values), statistics.median(ordered), p90, statistics.fmean(ordered))

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "median_s": self.median, "p90_s": self.p90, "mean_s": self.mean}


@dataclass
class Share:
    eligible: int = 0
    removed: int = 0

    @property
    def share(self) -> float | None:
        return self.removed / self.eligible if self.eligible else None

    def as_dict(self) -> dict[str, Any]:
        return {"eligible": self.eligible, "removed": self.removed, "share": self.share}


@dataclass
class TakedownStats:
    at: datetime
    requests: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    detection_to_request: Durations = field(default_factory=Durations)
    request_to_removal: Durations = field(default_factory=Durations)
    removed_within_items: dict[str, Share] = field(default_factory=dict)
    removed_within_requests: dict[str, Share] = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)
    #: overdue requests left out of ``overdue`` because the reader may not see them (still counted)
    overdue_hidden: int = 0
    unsent: int = 0
    reopened_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "requests": {"total": sum(self.requests.values()), **dict(sorted(self.requests.items()))},
            "items": {"total": sum(self.items.values()), **dict(sorted(self.items.items()))},
            "detection_to_request": self.detection_to_request.as_dict(),
            "request_to_removal": self.request_to_removal.as_dict(),
            "removed_within": {
                "items": {k: v.as_dict() for k, v in self.removed_within_items.items()},
                "requests": {k: v.as_dict() for k, v in self.removed_within_requests.items()},
            },
            "overdue": {"count": len(self.overdue) + self.overdue_hidden, "requests": self.overdue},
            "unsent": self.unsent,
            "reopened": self.reopened_total,
        }


def compute_stats(requests: list[TakedownRequest], now: datetime, *, overdue_after: float) -> TakedownStats:
    out = TakedownStats(at=now)
    out.removed_within_items = {name: Share() for name, _ in WINDOWS}
    out.removed_within_requests = {name: Share() for name, _ in WINDOWS}
    to_request: list[float] = []
    to_removal: list[float] = []
    for req in requests:
        out.requests[req.status.value] += 1
        out.reopened_total += req.reopen_count
        for item in req.items:
            out.items[item.status.value] += 1
        if req.detected_at is not None:
            to_request.append(max(0.0, (req.created_at - req.detected_at).total_seconds()))
        if req.sent_at is None:
            out.unsent += 1
            continue
        # each item is measured from the first sending that included it (re-uploads join later)
        per_item: list[tuple[float, float | None]] = []  # (seconds since its sending, removal delay)
        for item in req.items:
            sent = next((x.at for x in req.sendings if x.at >= item.added_at), None)
            if sent is None:
                continue  # added after the last sending: not reported yet
            gone = item.status is ItemStatus.REMOVED and item.removed_at is not None
            delay = max(0.0, (item.removed_at - sent).total_seconds()) if gone and item.removed_at else None
            per_item.append(((now - sent).total_seconds(), delay))
            if delay is not None:
                to_removal.append(delay)
        req_age = (now - req.sent_at).total_seconds()
        for name, window in WINDOWS:
            eligible = [d for age, d in per_item if age >= window]
            item_share, req_share = out.removed_within_items[name], out.removed_within_requests[name]
            item_share.eligible += len(eligible)
            item_share.removed += sum(1 for d in eligible if d is not None and d <= window)
            if req_age >= window and eligible:
                req_share.eligible += 1
                req_share.removed += int(all(d is not None and d <= window for d in eligible))
        late = any(age > overdue_after and d is None for age, d in per_item)
        if late and req.status in OPEN_STATUSES:
            out.overdue.append(req.id)
    out.detection_to_request = Durations.of(to_request)
    out.request_to_removal = Durations.of(to_removal)
    out.overdue.sort()
    return out
