"""What every sender shares: the rendered report it is handed, what it answers, how it fails.

A sender sends one request through one channel (``email``, ``mtproto``, ``hotline``) and says
exactly what left (``sha256`` of the bytes sent) and what came back (``answer``); it writes
nothing itself — ``Dispatcher`` records every sending and failure in the ledger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from crawler.takedowns.models import TakedownRequest
from foundation.errors import TgwatchError


@dataclass(frozen=True)
class Rendered:
    """The request as the sender sends it: the text report in its language, and the JSON report."""

    text: str
    subject: str
    report: dict[str, Any]
    language: str


@dataclass(frozen=True)
class SendResult:
    channel: str  # "email" | "mtproto" | "hotline"
    via: str  # where to, e.g. "email:abuse@telegram.org", "mtproto:in-app report", "hotline:kr-hotline"
    sha256: str  # of exactly what was sent
    answer: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # the other side's ticket number, when it gives one


class SendFailed(TgwatchError):
    """A sending did not go through; ``sha256`` names what was attempted (None: nothing left)."""

    kind = "takedown_send_failed"

    def __init__(self, message: str, *, sha256: str | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.sha256 = sha256
        self.retry = retry


class Sender(Protocol):
    channel: str

    def language(self, request: TakedownRequest) -> str | None:
        """The report language this sender wants for ``request`` (None: the default)."""

    async def send(self, request: TakedownRequest, rendered: Rendered) -> SendResult: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
