"""A request as the people and systems who act on it need to read it.

Two renderings, both documented in ``docs/takedowns.md``:

- **text**: a plain-text report for Telegram's abuse channels (e-mail to the abuse address, the
  in-app report's free text, the abuse bot). It names what to remove and why, in words a moderator
  can act on in a minute: links first, then per item the channel, message, date and media digests.
  It never includes or describes the content itself.
- **JSON** (``schema: "tgwatch.takedown/1"``): for a national hotline's case system. Everything in
  the text plus identifiers a machine needs: channel keys and numeric ids, media SHA-256/MD5/PDQ,
  the evidence ledger seqs of each item's captures and of the request's own history, and the
  latest signed tree head so the receiver can ask for inclusion proofs.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

from config.takedowns import TakedownSettings
from crawler.evidence.ledger import Ledger
from crawler.investigate.serialize import jsonable
from crawler.takedowns.models import ItemKind, TakedownItem, TakedownRequest

SCHEMA = "tgwatch.takedown/1"
#: prose lines of the text report are wrapped for e-mail (links and digests never are)
WRAP = 76
HEAD_FIELDS = ("size", "root_hash", "timestamp", "signature", "key_id", "tsa")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "unknown"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def render_text(req: TakedownRequest, settings: TakedownSettings) -> str:
    items = req.items
    noun = "item" if len(items) == 1 else "items"
    lines = [
        f"Subject: Removal request {req.id}: {req.reason.label} ({len(items)} {noun})",
        "",
        "To the Telegram abuse team,",
        "",
        *textwrap.wrap(
            "We ask you to remove the content listed below. It violates Telegram's Terms of Service: "
            f"{req.reason.label}. The content is reported by link only; no copy of it is attached to "
            "this message.",
            width=WRAP,
        ),
        "",
        f"Reference:    {req.id}" + (f" (case {req.case})" if req.case else ""),
        f"Reported by:  {settings.reporter_name}"
        + (f" <{settings.reporter_contact}>" if settings.reporter_contact else ""),
        f"Prepared:     {_when(req.created_at)}",
        f"First seen:   {_when(req.detected_at)}",
        "",
        "Links to remove:",
        *[f"  {i.link or '(no public link: ' + i.item_id + ')'}" for i in items],
        "",
        "Details:",
    ]
    for n, item in enumerate(items, 1):
        lines += _item_text(n, item)
    lines += [
        "",
        "Each item above was captured and preserved by tgwatch in an append-only, signed evidence",
        "ledger (RFC 9162); the ledger entry numbers let investigators prove what was seen and when.",
        f"Please reply quoting {req.id}.",
    ]
    if req.note:
        lines += ["", f"Note: {req.note}"]
    return "\n".join(lines) + "\n"


def _item_text(n: int, item: TakedownItem) -> list[str]:
    who = f"@{item.username}" if item.username else item.channel
    if item.kind is ItemKind.CHANNEL:
        head = f"{n}. Channel {who}: the whole channel"
    else:
        head = f"{n}. Channel {who}, message {item.msg_id}, posted {_when(item.posted_at)}"
    out = [head]
    if item.link:
        out.append(f"   Link: {item.link}")
    if item.tg_id is not None:
        out.append(f"   Channel id: {item.tg_id}")
    for m in item.media:
        kind = f"{m.kind} " if m.kind else ""
        out.append(f"   Media {kind}SHA-256 {m.sha256}" + (f" MD5 {m.md5}" if m.md5 else ""))
    if item.added_because != "reported":
        out.append(f"   Added: {item.added_because} (re-upload of removed content)")
    if item.evidence:
        out.append(f"   Evidence ledger entries: {', '.join(str(s) for s in item.evidence)}")
    return out


def render_json(
    req: TakedownRequest, settings: TakedownSettings, *, tree_head: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "request_id": req.id,
        "platform": req.platform.value,
        "reason": {"code": req.reason.value, "label": req.reason.label},
        "case": req.case,
        "status": req.status.value,
        "reporter": {"name": settings.reporter_name, "contact": settings.reporter_contact or None},
        "created_at": _iso(req.created_at),
        "created_by": req.created_by,
        "detected_at": _iso(req.detected_at),
        "sent": [
            {"via": s.via, "by": s.by, "at": _iso(s.at), "reference": s.reference, "items": s.items}
            for s in req.sendings
        ],
        "removed_at": _iso(req.removed_at),
        "note": req.note,
        "items": [_item_json(i) for i in req.items],
        "evidence": {
            "request_ledger_seqs": req.ledger,
            "tree_head": tree_head,
        },
    }


def _item_json(item: TakedownItem) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "kind": item.kind.value,
        "url": item.link,
        "channel": {"key": item.channel, "username": item.username, "telegram_id": item.tg_id},
        "message_id": item.msg_id,
        "posted_at": _iso(item.posted_at),
        "first_seen_at": _iso(item.first_seen_at),
        "found_by": item.source.value,
        "added_because": item.added_because,
        "media": [{"sha256": m.sha256, "md5": m.md5, "pdq": m.pdq, "kind": m.kind} for m in item.media],
        "evidence_ledger_seqs": item.evidence,
        "status": item.status.value,
        "status_reason": item.status_reason,
        "last_checked_at": _iso(item.checked_at),
        "removed_at": _iso(item.removed_at),
    }


async def tree_head(ledger: Ledger) -> dict[str, Any] | None:
    """The newest signed tree head as plain JSON for ``render_json`` (None before the first is signed)."""
    doc = await ledger.latest_head()
    if doc is None:
        return None
    return dict(jsonable({k: doc[k] for k in HEAD_FIELDS if k in doc}))
