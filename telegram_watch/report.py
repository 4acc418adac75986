"""Telegram's in-app report over MTProto, asked through the account pool.

Why here and not in the takedown feature: it speaks Telethon. It takes plain values (a channel's
username and/or id, message ids, the report-menu texts to pick, a comment) and returns plain values
(the TL requests as canonical JSON, Telegram's answers, the account used); it writes nothing — the
takedown feature records what it returns.

* **Messages**: ``messages.report`` walks Telegram's report menu: asked with an empty option it
  answers a list of entries (``ReportResultChooseOption``); we pick the first entry whose text
  matches the wanted path (case-insensitive prefix), falling back to ``Other``; an entry may open a
  sub-menu or ask for a comment (``ReportResultAddComment``), which we then send with the last
  request; ``ReportResultReported`` ends it.
* **Whole channels**: ``account.reportPeer`` with a ``InputReportReason*`` and the comment.

Every request is one pool operation, so a ``FloodWait`` parks that account and the next request goes
to another (``AccountPool.run``); reports are additionally paced per account (``pacing`` seconds
between two reports of one account), because Telegram limits reporting more tightly than reading.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.errors import SourceError
from telegram_watch.entities import Target, input_peer
from telegram_watch.pool import AccountPool

#: the steps a report may take (menu, sub-menu, comment, done)
MAX_STEPS = 5
#: Telegram's comment limit for reports
MAX_COMMENT = 512

REASONS: dict[str, Callable[[], Any]] = {
    "spam": types.InputReportReasonSpam,
    "violence": types.InputReportReasonViolence,
    "pornography": types.InputReportReasonPornography,
    "child_abuse": types.InputReportReasonChildAbuse,
    "copyright": types.InputReportReasonCopyright,
    "personal_details": types.InputReportReasonPersonalDetails,
    "illegal_drugs": types.InputReportReasonIllegalDrugs,
    "fake": types.InputReportReasonFake,
    "other": types.InputReportReasonOther,
}


class ReportFailed(SourceError):
    kind = "report_failed"


def canonical(request: Any) -> str:
    """A TL request as canonical JSON (sorted keys, bytes as hex): what the ledger digests."""
    return json.dumps(request.to_dict(), sort_keys=True, separators=(",", ":"), default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


class MtprotoReporter:
    """Sends in-app reports through ``pool``; one report per call, answers as plain dicts."""

    def __init__(self, pool: AccountPool, *, pacing: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.pacing = pacing
        self._clock = clock
        self._last: dict[int, float] = {}  # id(client) → last report time

    async def report_messages(
        self, *, username: str | None, tg_id: int | None, msg_ids: Sequence[int], options: Sequence[str], comment: str
    ) -> dict[str, Any]:
        target = _target(username, tg_id)
        op = partial(self._paced, partial(_report_messages, target=target, ids=list(msg_ids), wanted=list(options),
                                          comment=comment[:MAX_COMMENT]))  # fmt: skip
        return await self.pool.run(target.key, op)

    async def report_channel(
        self, *, username: str | None, tg_id: int | None, reason: str, comment: str
    ) -> dict[str, Any]:
        target = _target(username, tg_id)
        make = REASONS.get(reason, types.InputReportReasonOther)
        op = partial(self._paced, partial(_report_channel, target=target, reason=make(), comment=comment[:MAX_COMMENT]))
        return await self.pool.run(target.key, op)

    async def _paced(self, op: Callable[[TelegramClient], Any], client: TelegramClient) -> dict[str, Any]:
        key = id(client)
        wait = self._last.get(key, -self.pacing) + self.pacing - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            answer: dict[str, Any] = await op(client)
        finally:
            self._last[key] = self._clock()
        return answer


def _target(username: str | None, tg_id: int | None) -> Target:
    if not username and tg_id is None:
        raise ReportFailed("cannot report: no channel username or id")
    return Target(username=username.lower().lstrip("@") if username else None, tg_id=tg_id)


def _pick(options: Sequence[Any], wanted: Sequence[str]) -> Any:
    for text in wanted:
        for option in options:
            if option.text.strip().lower().startswith(text.strip().lower()):
                return option
    for option in options:
        if option.text.strip().lower() == "other":
            return option
    raise ReportFailed(f"no report option matches {list(wanted)}: {[o.text for o in options]}")


async def _report_messages(
    client: TelegramClient, *, target: Target, ids: list[int], wanted: list[str], comment: str
) -> dict[str, Any]:
    peer = await input_peer(client, target)
    sent: list[str] = []
    chosen: list[str] = []
    option = b""
    message = ""
    for _ in range(MAX_STEPS):
        request = functions.messages.ReportRequest(peer=peer, id=ids, option=option, message=message)
        sent.append(canonical(request))
        result = await client(request)
        if isinstance(result, types.ReportResultReported):
            return {"requests": sent, "result": "reported", "options": chosen}
        if isinstance(result, types.ReportResultChooseOption):
            picked = _pick(result.options, wanted[len(chosen) :] or wanted)
            chosen.append(picked.text)
            option, message = picked.option, ""
        elif isinstance(result, types.ReportResultAddComment):
            option, message = result.option, comment or "Reported by tgwatch"
        else:
            raise ReportFailed(f"unexpected answer to messages.report: {type(result).__name__}")
    raise ReportFailed(f"messages.report did not finish in {MAX_STEPS} steps")


async def _report_channel(client: TelegramClient, *, target: Target, reason: Any, comment: str) -> dict[str, Any]:
    peer = await input_peer(client, target)
    request = functions.account.ReportPeerRequest(peer=peer, reason=reason, message=comment)
    ok = await client(request)
    if ok is not True:
        raise ReportFailed("account.reportPeer answered false")
    return {"requests": [canonical(request)], "result": "reported", "options": [type(reason).__name__]}
