"""Senders: how a takedown request leaves tgwatch (e-mail, Telegram's in-app report, a hotline POST).

``build_senders`` makes the ones the settings enable; the MTProto sender needs a ``Reporter`` (the
account pool's in-app reporter), which the caller passes because opening the pool is the caller's
business. No sender enabled means "sending" a request only records it as sent (``mark-sent``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.takedowns.senders.base import Rendered, Sender, SendFailed, SendResult
from crawler.takedowns.senders.email import EmailSender
from crawler.takedowns.senders.hotline import HotlineSender
from crawler.takedowns.senders.mtproto import MtprotoSender, Reporter
from foundation.egress import EgressPolicy

if TYPE_CHECKING:
    from config import Settings


def build_senders(settings: Settings, *, reporter: Reporter | None = None) -> list[Sender]:
    t = settings.takedowns
    egress = EgressPolicy.from_settings(settings)
    out: list[Sender] = []
    if t.senders.email.enabled:
        out.append(EmailSender(t.senders.email, from_address=t.reporter_contact, default_language=t.language,
                               egress=egress))  # fmt: skip
    if t.senders.mtproto.enabled and reporter is not None:
        out.append(MtprotoSender(t.senders.mtproto, reporter, default_language=t.language))
    if t.senders.hotline.enabled:
        out.append(HotlineSender(t.senders.hotline, default_language=t.language, egress=egress))
    return out


__all__ = [
    "EmailSender", "HotlineSender", "MtprotoSender", "Rendered", "Reporter", "SendFailed", "SendResult", "Sender",
    "build_senders",
]  # fmt: skip
