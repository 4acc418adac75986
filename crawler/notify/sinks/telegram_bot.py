"""Telegram Bot API sink: ``sendMessage`` to a staff chat, plain text (no parse mode, so channel
names cannot inject markup), link previews off (no thumbnails are fetched into the staff chat).

The token is part of the request path, so neither the URL nor the library's error (which quotes
it) is ever put into an error message or a log line.
"""

from __future__ import annotations

import hashlib
import json

import aiohttp

from crawler.notify.render import Outgoing
from crawler.notify.sinks import SinkError
from foundation.errors import EgressDenied


class TelegramBotSink:
    def __init__(self, chat_id: str, token: str, session: aiohttp.ClientSession, *, api_base: str) -> None:
        self.chat_id = chat_id
        self._token = token
        self._session = session
        self._api_base = api_base.rstrip("/")

    async def send(self, message: Outgoing) -> str:
        chat: int | str = int(self.chat_id) if self.chat_id.lstrip("-").isdigit() else self.chat_id
        body = json.dumps(
            {"chat_id": chat, "text": message.text, "disable_web_page_preview": True}, ensure_ascii=False
        ).encode()
        url = f"{self._api_base}/bot{self._token}/sendMessage"
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}, allow_redirects=False
            ) as resp:
                answer = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkError(f"Bot API not reached: {type(exc).__name__}") from None
        except EgressDenied as exc:  # the egress guard's reason names the host, never the token
            raise SinkError(f"Bot API not sent: {exc.message}") from None
        try:
            ok = status == 200 and json.loads(answer).get("ok") is True
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise SinkError(f"Bot API refused the message: HTTP {status}")
        return hashlib.sha256(body).hexdigest()
