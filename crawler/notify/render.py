"""What a notification says: facts picked from an alert by name, words from the catalogs.

Only the fields listed in ``alert_facts`` ever leave the system — kind, severity, channels,
message links, SHA-256 digests, list, time, console link — so media bytes, thumbnails, captions
or anything a future alert carries in ``details`` cannot leak by accident. Strings that come from
Telegram (channel names) are stripped of control characters, which also keeps them from breaking
an e-mail header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from crawler.notify.rules import notify_kind, severity_of
from foundation.i18n import gettext

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_MESSAGE_KEY = re.compile(r"([a-z0-9_]{1,64})/(\d{1,20})\Z")
MAX_TEXT = 3500  # below the Bot API's 4096 characters, with room for the footer


def clean(value: object, limit: int = 300) -> str:
    return _CONTROL.sub(" ", str(value))[:limit]


@dataclass(frozen=True)
class Outgoing:
    """One message for one sink: a subject and plain text for people, a JSON document for machines."""

    kind: Literal["alert", "digest", "test"]
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


def message_link(alert: dict[str, Any], web_base: str) -> str | None:
    details = alert.get("details") or {}
    link = details.get("permalink")
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        return clean(link, 500)
    key = details.get("message")
    if isinstance(key, str) and (m := _MESSAGE_KEY.match(key)) and not re.fullmatch(r"id\d+", m.group(1)):
        return f"{web_base.rstrip('/')}/{m.group(1)}/{m.group(2)}"
    return None


def console_link(key: str, console_url: str | None) -> str | None:
    if not console_url:
        return None
    return f"{console_url.rstrip('/')}/console/alerts?alert={quote(key, safe='')}"


def alert_facts(alert: dict[str, Any], *, web_base: str, console_url: str | None) -> dict[str, Any]:
    """The whitelisted, JSON-ready facts of one alert."""
    kind = notify_kind(alert)
    details = alert.get("details") or {}
    candidates = (alert.get("sha256"), details.get("sha256"))
    digests = sorted({d for d in candidates if isinstance(d, str) and _SHA256.match(d)})
    raised = alert.get("raised_at")
    listed = details.get("list")
    return {
        "key": clean(alert["_id"], 600),
        "kind": kind,
        "alert_kind": clean(alert.get("kind") or "", 40),
        "severity": severity_of(kind),
        "channels": [clean(c, 100) for c in (alert.get("channels") or [])][:20],
        "message_link": message_link(alert, web_base),
        "digests": digests,
        "list": clean(listed, 512) if isinstance(listed, str) else None,
        "raised_at": raised.isoformat() if isinstance(raised, datetime) else clean(raised or "", 40),
        "console_url": console_link(str(alert["_id"]), console_url),
    }


def _kind_name(lang: str, kind: str) -> str:
    msgid = f"notify.kind.{kind}"
    text = gettext(lang, msgid)
    return gettext(lang, "notify.kind.other") if text == msgid else text


def _lines(lang: str, facts: dict[str, Any]) -> list[str]:
    t = gettext
    lines = [
        f"{t(lang, 'notify.field.kind')}: {_kind_name(lang, facts['kind'])}",
        f"{t(lang, 'notify.field.severity')}: {t(lang, 'notify.severity.' + facts['severity'])}",
        f"{t(lang, 'notify.field.channel')}: {', '.join(facts['channels']) or t(lang, 'notify.no_channel')}",
    ]
    if facts["message_link"]:
        lines.append(f"{t(lang, 'notify.field.message')}: {facts['message_link']}")
    if facts["list"]:
        lines.append(f"{t(lang, 'notify.field.list')}: {facts['list']}")
    for digest in facts["digests"]:
        lines.append(f"{t(lang, 'notify.field.digests')}: {digest}")
    lines.append(f"{t(lang, 'notify.field.raised_at')}: {facts['raised_at']}")
    lines.append(f"{t(lang, 'notify.field.key')}: {facts['key']}")
    if facts["console_url"]:
        lines.append(f"{t(lang, 'notify.field.console')}: {facts['console_url']}")
    return lines


def _subject(lang: str, facts: dict[str, Any]) -> str:
    return clean(
        gettext(
            lang, "notify.subject", kind=_kind_name(lang, facts["kind"]),
            severity=gettext(lang, "notify.severity." + facts["severity"]),
            channel=", ".join(facts["channels"][:3]) or gettext(lang, "notify.no_channel"),
        ),
        200,
    )  # fmt: skip


def _fit(text: str, footer: str) -> str:
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return f"{text}\n\n{footer}"


def render_alert(
    alert: dict[str, Any], *, lang: str, rule: str, delivery: str, web_base: str, console_url: str | None
) -> Outgoing:
    facts = alert_facts(alert, web_base=web_base, console_url=console_url)
    text = _fit("\n".join(_lines(lang, facts)), gettext(lang, "notify.footer"))
    payload = {"type": "alert", "rule": rule, "lang": lang, "delivery": delivery, "alerts": [facts], "text": text}
    return Outgoing("alert", _subject(lang, facts), text, payload)


def render_digest(
    alerts: Sequence[dict[str, Any]], *, lang: str, rule: str, deliveries: Sequence[str], web_base: str,
    console_url: str | None,
) -> Outgoing:  # fmt: skip
    facts = [alert_facts(a, web_base=web_base, console_url=console_url) for a in alerts]
    parts = [gettext(lang, "notify.digest.intro", count=len(facts))]
    for n, f in enumerate(facts, 1):
        parts.append(f"\n{n}. " + "\n   ".join(_lines(lang, f)))
    text = _fit("\n".join(parts), gettext(lang, "notify.footer"))
    payload = {
        "type": "digest", "rule": rule, "lang": lang, "deliveries": list(deliveries), "count": len(facts),
        "alerts": facts, "text": text,
    }  # fmt: skip
    return Outgoing("digest", gettext(lang, "notify.digest.subject", count=len(facts)), text, payload)


def render_test(*, lang: str, rule: str) -> Outgoing:
    text = _fit(gettext(lang, "notify.test.body", rule=rule), gettext(lang, "notify.footer"))
    payload = {"type": "test", "rule": rule, "lang": lang, "alerts": [], "text": text}
    return Outgoing("test", gettext(lang, "notify.test.subject", rule=rule), text, payload)
