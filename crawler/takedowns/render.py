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

import functools
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.takedowns import TakedownSettings
from crawler.evidence.ledger import Ledger
from crawler.investigate.serialize import jsonable
from crawler.takedowns.models import TakedownItem, TakedownRequest
from foundation import i18n

SCHEMA = "tgwatch.takedown/1"
#: prose lines of the text report are wrapped for e-mail (links and digests never are)
WRAP = 76
HEAD_FIELDS = ("size", "root_hash", "timestamp", "signature", "key_id", "tsa")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


if TYPE_CHECKING:
    import jinja2

#: the one report template; its words come from the gettext catalogs (``report.*`` ids)
TEMPLATES = Path(__file__).parent / "templates"
REPORT_TEMPLATE = "report.txt.j2"
DEFAULT_LANGUAGE = "en"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2  # only when a report is rendered: a crawl worker never loads it (issue 17)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # plain text for e-mail bodies and report forms, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else None
    env.filters["wrap"] = lambda text, width=WRAP: "\n".join(textwrap.wrap(str(text), width=int(width)))
    return env


def available_languages() -> list[str]:
    """Languages whose catalog has the report's words (adding a catalog with ``report.*`` adds one)."""
    return sorted(lang for lang in i18n.LANGUAGES if i18n.translated(lang, "report.subject"))


def report_language(language: str | None) -> str:
    """``language`` when its catalog has the report, else English (a typo never stops a report)."""
    lang = (language or "").strip().lower()
    if _LANGUAGE.match(lang) and lang in available_languages():
        return lang
    return DEFAULT_LANGUAGE


def render_text(req: TakedownRequest, settings: TakedownSettings, *, language: str | None = None) -> str:
    """The text report in ``language`` (default: ``settings.language``; English when there is no catalog)."""
    lang = report_language(language or settings.language)

    def t(msgid: str, **params: object) -> str:
        return i18n.gettext(lang, msgid, **params)

    def reason_label(value: str) -> str:
        return i18n.translated(lang, f"report.reason.{value}") or value

    width = t("report.wrap_width")
    return (
        _environment()
        .get_template(REPORT_TEMPLATE)
        .render(
            req=req,
            items=req.items,
            reporter_name=settings.reporter_name,
            reporter_contact=settings.reporter_contact,
            t=t,
            reason_label=reason_label,
            wrap_width=int(width) if width.isdigit() else WRAP,
        )
    )


def subject_of(text: str) -> str:
    """The subject of a rendered text report: its first line after ``Subject:``."""
    first = text.split("\n", 1)[0]
    return first.split(":", 1)[1].strip() if ":" in first else first.strip()


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
