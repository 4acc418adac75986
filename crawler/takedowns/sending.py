"""Sending a request through the configured senders, and recording every attempt.

Why here: a sending is evidence (what left, to whom, what came back), so each success is a ``sent``
ledger entry holding the SHA-256 of exactly the bytes sent and the other side's answer, and each
failed attempt a ``send_failed`` entry; a failed attempt is retried (``send_attempts``, back-off
from ``send_backoff``, doubling) unless retrying cannot help (no address configured, a refused
host, an HTTP 4xx). With no sender configured, sending records the request as sent by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from crawler.takedowns.models import TakedownRequest
from crawler.takedowns.render import render_json, render_text, report_language, subject_of, tree_head
from crawler.takedowns.senders.base import Rendered, Sender, SendFailed
from crawler.takedowns.service import Conflict, TakedownService
from foundation.errors import StoreError, TgwatchError
from foundation.logs import get_logger

log = get_logger(__name__)

#: how a request is recorded when there is no sender to send it
NO_SENDER_VIA = "marked sent (no sender configured)"


@dataclass
class SendOutcome:
    request: TakedownRequest
    sent: list[str] = field(default_factory=list)  # "via" of each successful sending
    failed: list[str] = field(default_factory=list)  # "channel: last error" per sender that gave up

    @property
    def ok(self) -> bool:
        return not self.failed


class Dispatcher:
    def __init__(
        self,
        service: TakedownService,
        senders: Sequence[Sender],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.senders = list(senders)
        self._sleep = sleep

    async def approve(self, request_id: str, *, actor: str) -> SendOutcome:
        """One click: the approval (a ledger entry), then the sending."""
        await self.service.approve(request_id, actor=actor)
        return await self.send(request_id, actor=actor)

    async def send(self, request_id: str, *, actor: str) -> SendOutcome:
        req = await self.service.get(request_id)
        if req.rejected_at is not None:
            raise Conflict(f"{req.id} was rejected ({req.reject_reason}); it is not sent",
                           code="takedowns.already_rejected", params={"id": req.id, "by": req.rejected_by})  # fmt: skip
        if not self.senders:
            req = await self.service.mark_sent(req.id, via=NO_SENDER_VIA, actor=actor)
            return SendOutcome(req, sent=[NO_SENDER_VIA])
        outcome = SendOutcome(req)
        settings = self.service.settings
        head = await tree_head(self.service.ledger)
        for sender in self.senders:
            lang = report_language(sender.language(req) or settings.language)
            text = render_text(req, settings, language=lang)
            rendered = Rendered(text=text, subject=subject_of(text), report=render_json(req, settings, tree_head=head),
                                language=lang)  # fmt: skip
            await self._send_one(req, sender, rendered, actor, outcome)
        outcome.request = await self.service.get(req.id)
        return outcome

    async def _send_one(
        self, req: TakedownRequest, sender: Sender, rendered: Rendered, actor: str, outcome: SendOutcome
    ) -> None:
        attempts = self.service.settings.send_attempts
        for attempt in range(1, attempts + 1):
            try:
                result = await sender.send(req, rendered)
            except StoreError:
                raise
            except TgwatchError as exc:  # SendFailed, or a sender that broke its contract
                retry = exc.retry if isinstance(exc, SendFailed) else True
                digest = exc.sha256 if isinstance(exc, SendFailed) else None
                await self.service.record_failure(
                    req.id, actor=actor, channel=sender.channel, attempt=attempt, error=exc.message, sha256=digest
                )
                log.warning("takedown sending failed", request=req.id, channel=sender.channel, attempt=attempt,
                            error=exc.message)  # fmt: skip
                if not retry or attempt == attempts:
                    outcome.failed.append(f"{sender.channel}: {exc.message}")
                    return
                await self._sleep(self.service.settings.send_backoff * 2 ** (attempt - 1))
                continue
            await self.service.record_sending(
                req.id, actor=actor, channel=result.channel, via=result.via, sha256=result.sha256,
                answer=result.answer, reference=result.reference, attempt=attempt,
            )  # fmt: skip
            log.info("takedown sent", request=req.id, channel=result.channel, via=result.via)
            outcome.sent.append(result.via)
            return
