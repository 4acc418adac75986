"""Gap reports: which message ids of a channel are held, which are missing, and why where we know.

A court asks "is this everything?". Telegram ids grow by one per message in a channel, so the ids
between the ones we hold say what we do not hold. Why an id is missing comes from what the crawl
itself recorded, never from a guess:

- ``deleted`` (held, not missing): we stored the message and later saw it disappear;
- ``never_fetched``: it lies in a range a truncated page could not give us (the web walker's
  checkpoint ``extra["gaps"]``), or above what the checkpoint has read;
- ``not_shown``: it lies inside a range that was read without a gap, yet the source did not show it
  (deleted before we read the page, a service message the preview omits, or never public);
- ``beyond_reach``: older than the oldest id the crawl reached (the walk has not reached the
  channel's first message);
- ``unknown``: no checkpoint of this channel says anything about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundation.models import Checkpoint, from_mongo_dt
from storage.client import Store
from storage.repos.channels import ChannelRepo
from storage.repos.checkpoints import CheckpointRepo
from storage.repos.messages import MessageRepo

REASONS = ("never_fetched", "not_shown", "beyond_reach", "unknown")
#: a channel whose id span is larger than this is reported in ranges only up to here (a hostile or
#: broken id must not make a report of billions of ids)
MAX_SPAN = 5_000_000


@dataclass
class GapReport:
    channel: str
    held: int = 0
    first_id: int | None = None
    last_id: int | None = None
    deleted: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missing_count(self) -> int:
        return sum(int(r["count"]) for r in self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "held": self.held,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "deleted": self.deleted,
            "missing": self.missing,
            "missing_count": self.missing_count,
            "streams": self.streams,
        }


def _streams(doc: dict[str, Any] | None, key: str, usernames: set[str]) -> list[str]:
    names = set(usernames)
    if doc and doc.get("username"):
        names.add(str(doc["username"]).lower())
    streams = [f"web:{n}" for n in sorted(names)] + [f"mtproto:{n}" for n in sorted(names)]
    if doc and doc.get("tg_id") is not None:
        streams.append(f"mtproto:id{doc['tg_id']}")
    if key.startswith("id") and key[2:].isdigit():
        streams.append(f"mtproto:{key}")
    return list(dict.fromkeys(streams))


def _reason(msg_id: int, checkpoints: list[Checkpoint]) -> str:
    """Why ``msg_id`` is missing, judged by every checkpoint of the channel (first rule that holds)."""
    for cp in checkpoints:
        for gap in cp.extra.get("gaps", []) or []:
            low, high = gap[0], gap[1] if len(gap) > 1 else None
            if low is not None and msg_id >= int(low) and (high is None or msg_id <= int(high)):
                return "never_fetched"
    read = [cp for cp in checkpoints if cp.oldest_id is not None and cp.newest_id is not None]
    for cp in read:
        assert cp.oldest_id is not None and cp.newest_id is not None
        if cp.oldest_id <= msg_id <= cp.newest_id or (cp.complete and msg_id < cp.oldest_id):
            return "not_shown"
    if read and all(msg_id > int(cp.newest_id or 0) for cp in read):
        return "never_fetched"
    if read and any(msg_id < int(cp.oldest_id or 0) and not cp.complete for cp in read):
        return "beyond_reach"
    return "unknown"


async def gap_report(store: Store, key: str) -> GapReport:
    """The gap report of one channel (by channel key)."""
    channels = ChannelRepo(store)
    doc = await channels.get(key)
    usernames = await channels.alias_usernames(key)
    repo = CheckpointRepo(store)
    checkpoints = [cp for s in _streams(doc, key, usernames) if (cp := await repo.get(s)) is not None]
    states = await MessageRepo(store).id_states(key)
    report = GapReport(channel=key, held=len(states))
    report.streams = [
        {"stream": cp.stream, "oldest_id": cp.oldest_id, "newest_id": cp.newest_id, "complete": cp.complete,
         "gaps": cp.extra.get("gaps", [])}
        for cp in checkpoints
    ]  # fmt: skip
    ids = sorted({int(d["msg_id"]) for d in states if d.get("msg_id") is not None})
    if not ids:
        return report
    report.first_id, report.last_id = ids[0], ids[-1]
    for d in states:
        if d.get("deleted") or d.get("deleted_at") is not None:
            at = from_mongo_dt(d.get("deleted_at"))
            when = at.isoformat() if at is not None else None
            report.deleted.append({"id": int(d["msg_id"]), "deleted_at": when})
    held = set(ids)
    start = max(1, ids[-1] - MAX_SPAN)
    run: dict[str, Any] | None = None
    for msg_id in range(start, ids[-1]):
        if msg_id in held:
            run = None
            continue
        reason = _reason(msg_id, checkpoints)
        if run is not None and run["reason"] == reason and run["to"] == msg_id - 1:
            run["to"], run["count"] = msg_id, run["count"] + 1
        else:
            run = {"from": msg_id, "to": msg_id, "count": 1, "reason": reason}
            report.missing.append(run)
    return report


def render_text(report: GapReport) -> str:
    """The report as lines a person reads in a terminal (CLI output stays English)."""
    lines = [
        f"channel {report.channel}: {report.held} held"
        + (f" (ids {report.first_id}..{report.last_id})" if report.first_id is not None else "")
        + f", {len(report.deleted)} deleted and recorded, {report.missing_count} missing"
    ]
    for d in report.deleted:
        lines.append(f"  deleted   {d['id']:<10} at {d['deleted_at']}")
    for r in report.missing:
        span = str(r["from"]) if r["from"] == r["to"] else f"{r['from']}..{r['to']}"
        lines.append(f"  missing   {span:<21} {r['reason']}")
    for s in report.streams:
        lines.append(
            f"  stream    {s['stream']}: read {s['oldest_id']}..{s['newest_id']}"
            + (" (complete)" if s["complete"] else "")
            + (f", unread ranges {s['gaps']}" if s["gaps"] else "")
        )
    return "\n".join(lines)
