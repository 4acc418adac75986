"""Where notifications go. Each sink has one method, ``send(message) -> sha256``: the SHA-256 of
exactly the bytes that left, recorded in the delivery log. A failure is a ``SinkError`` whose text
never carries a secret (URLs with a bot token are not quoted back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import aiohttp

from config import Settings
from crawler.notify.render import Outgoing
from foundation.egress import EgressPolicy
from foundation.egress_http import guarded_session
from foundation.errors import TgwatchError

#: the one seam for HTTP sending: the egress guard plugs in by handing a session of its own
SessionFactory = Callable[[], aiohttp.ClientSession]


class SinkError(TgwatchError):
    """A sink did not accept a message (retried with back-off, then dead-lettered)."""

    kind = "notify_sink"


class Sink(Protocol):
    async def send(self, message: Outgoing) -> str: ...


def default_session(settings: Settings) -> aiohttp.ClientSession:
    """Through the one egress guard: a webhook on a private address needs its host in
    ``http.allow_private_hosts`` (the Bot API base URL is a setting, so it is named already)."""
    policy = EgressPolicy.from_settings(settings, settings.notify.telegram_api_base)
    return guarded_session(policy, timeout=aiohttp.ClientTimeout(total=settings.notify.send_timeout))
