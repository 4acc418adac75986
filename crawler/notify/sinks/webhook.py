"""Webhook sink: a JSON POST signed with HMAC-SHA256 over ``<timestamp>.<body>``.

Receivers verify ``X-Tgwatch-Signature: sha256=<hex>`` with the shared secret and reject a
``X-Tgwatch-Timestamp`` too far from their clock, which stops replays (``verify`` shows how). The
secret comes from the environment variable the rule names; it is never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import aiohttp

from crawler.notify.render import Outgoing
from crawler.notify.sinks import SinkError
from foundation.errors import EgressDenied

TIMESTAMP_HEADER = "X-Tgwatch-Timestamp"
SIGNATURE_HEADER = "X-Tgwatch-Signature"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does: constant-time compare, and refuse stale or future timestamps."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    # bytes: compare_digest raises on a str with non-ASCII characters (a forged header is a refusal)
    presented = signature.encode("utf-8", "replace")
    return fresh and hmac.compare_digest(sign(secret, timestamp, body).encode(), presented)


class WebhookSink:
    def __init__(
        self, url: str, secret: bytes, session: aiohttp.ClientSession, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self._secret = secret
        self._session = session
        self._clock = clock

    async def send(self, message: Outgoing) -> str:
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                if not 200 <= resp.status < 300:
                    raise SinkError(f"webhook answered HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkError(f"webhook not reached: {type(exc).__name__}") from None
        except EgressDenied as exc:  # the egress guard's reason names the host, never a secret
            raise SinkError(f"webhook not sent: {exc.message}") from None
        return hashlib.sha256(body).hexdigest()
