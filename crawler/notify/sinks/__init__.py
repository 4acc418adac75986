"""Where notifications go. Each sink has one method, ``send(message) -> sha256``: the SHA-256 of
exactly the bytes that left, recorded in the delivery log. A failure is a ``SinkError`` whose text
never carries a secret (URLs with a bot token are not quoted back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import aiohttp

from crawler.errors import TgwatchError
from crawler.notify.render import Outgoing

#: the one seam for HTTP sending: the egress guard plugs in by handing a session of its own
SessionFactory = Callable[[], aiohttp.ClientSession]


class SinkError(TgwatchError):
    """A sink did not accept a message (retried with back-off, then dead-lettered)."""

    kind = "notify_sink"


class Sink(Protocol):
    async def send(self, message: Outgoing) -> str: ...


def default_session(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
