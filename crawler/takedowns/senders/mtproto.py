"""Telegram's in-app report, sent through a ``Reporter`` (``telegram_watch.report.MtprotoReporter``
over the account pool, wired by the caller): message items per channel with ``messages.report``,
channel items with ``account.reportPeer``.

Our reason categories are mapped here to Telegram's report menu (the texts its apps show, picked
level by level) and to ``InputReportReason`` names for whole channels. The comment is the report's
subject line in the sender's language. The ledger's SHA-256 is the digest of the TL requests as
canonical JSON (a JSON array, in the order sent), kept in the answer as ``sent`` so the digest can be
re-computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from config.takedowns import MtprotoSenderSettings
from crawler.takedowns.models import ItemKind, Reason, TakedownItem, TakedownRequest
from crawler.takedowns.senders.base import Rendered, SendFailed, SendResult, sha256_hex
from foundation.errors import StoreError, TgwatchError

#: reason → the report-menu texts to pick, level by level ("Other" when a level has no match)
MENU_PATHS: dict[Reason, tuple[str, ...]] = {
    Reason.SEXUAL_DEEPFAKE: ("Illegal adult content", "Non-consensual sexual imagery"),
    Reason.NCII: ("Illegal adult content", "Non-consensual sexual imagery"),
    Reason.CSAM: ("Child abuse",),
    Reason.SEXTORTION: ("Illegal adult content", "Non-consensual sexual imagery"),
    Reason.DOXXING: ("Personal data",),
    Reason.HARASSMENT: ("Violence",),
    Reason.OTHER: ("Other",),
}
#: reason → ``InputReportReason`` for a whole channel (``account.reportPeer`` has no menu)
PEER_REASONS: dict[Reason, str] = {
    Reason.SEXUAL_DEEPFAKE: "pornography",
    Reason.NCII: "pornography",
    Reason.CSAM: "child_abuse",
    Reason.SEXTORTION: "pornography",
    Reason.DOXXING: "personal_details",
    Reason.HARASSMENT: "violence",
    Reason.OTHER: "other",
}


class Reporter(Protocol):
    async def report_messages(
        self, *, username: str | None, tg_id: int | None, msg_ids: Sequence[int], options: Sequence[str], comment: str
    ) -> dict[str, Any]: ...

    async def report_channel(
        self, *, username: str | None, tg_id: int | None, reason: str, comment: str
    ) -> dict[str, Any]: ...


class MtprotoSender:
    channel = "mtproto"

    def __init__(self, settings: MtprotoSenderSettings, reporter: Reporter, *, default_language: str) -> None:
        self.settings = settings
        self.reporter = reporter
        self.default_language = default_language

    def language(self, request: TakedownRequest) -> str | None:
        return self.settings.language or self.default_language

    async def send(self, request: TakedownRequest, rendered: Rendered) -> SendResult:
        comment = f"{rendered.subject} — {rendered.report.get('reporter', {}).get('name') or ''}".strip(" —")
        groups: dict[str, list[TakedownItem]] = {}
        for item in request.items:
            if item.username or item.tg_id is not None:
                groups.setdefault(item.channel, []).append(item)
        if not groups:
            raise SendFailed("no item has a public channel to report in-app", retry=False)
        sent: list[str] = []
        answers: list[dict[str, Any]] = []
        for channel, items in groups.items():
            first = items[0]
            ids = [i.msg_id for i in items if i.kind is ItemKind.MESSAGE and i.msg_id is not None]
            whole = any(i.kind is ItemKind.CHANNEL for i in items)
            try:
                if ids:
                    answer = await self.reporter.report_messages(
                        username=first.username, tg_id=first.tg_id, msg_ids=ids,
                        options=MENU_PATHS[request.reason], comment=comment,
                    )  # fmt: skip
                    sent += answer.get("requests", [])
                    answers.append({"channel": channel, "ids": ids, "result": answer.get("result"),
                                    "options": answer.get("options")})  # fmt: skip
                if whole:
                    answer = await self.reporter.report_channel(
                        username=first.username, tg_id=first.tg_id, reason=PEER_REASONS[request.reason], comment=comment
                    )
                    sent += answer.get("requests", [])
                    answers.append({"channel": channel, "whole": True, "result": answer.get("result"),
                                    "options": answer.get("options")})  # fmt: skip
            except StoreError:
                raise
            except TgwatchError as exc:
                digest = sha256_hex(_joined(sent)) if sent else None
                raise SendFailed(f"in-app report for {channel}: {exc.kind}: {exc.message}", sha256=digest) from exc
        return SendResult(
            channel=self.channel, via="mtproto:in-app report", sha256=sha256_hex(_joined(sent)),
            answer={"reports": answers, "sent": sent},
        )  # fmt: skip


def _joined(requests: list[str]) -> bytes:
    """The TL requests sent, as one canonical JSON array (each element is already canonical JSON)."""
    return ("[" + ",".join(requests) + "]").encode()
