"""Local servers the notification tests send to: a webhook receiver that verifies signatures, a
Telegram Bot API stand-in, and an SMTP server (aiosmtpd) on the test's event loop; plus a clock
tests move by hand and an alert factory."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from crawler.notify.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from foundation.models import Alert, AlertKind, utcnow

#: a value tests/secret_scan.py plants: any output containing it fails the test
SECRET = "5ecre7a9151ba5e0123456789abcdef0"
BOT_TOKEN = f"123456:{SECRET}"
SHA = "ab" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def alert(
    key: str = f"match/known-list/{SHA}",
    kind: AlertKind = AlertKind.HASH_MATCH,
    channel: str = "leakchan",
    **details: Any,
) -> Alert:
    base: dict[str, Any] = {"list": "known-list", "message": f"{channel}/42", "permalink": f"https://t.me/{channel}/42"}
    return Alert(
        key=key, kind=kind, sha256=SHA, summary="synthetic test alert", details={**base, **details},
        channels=[channel], raised_at=utcnow(),
    )  # fmt: skip


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers ``fail_first`` requests with HTTP 500 (``always_fail`` every one), then 200."""

    secret: bytes = SECRET.encode()
    fail_first: int = 0
    always_fail: bool = False
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if self.always_fail or self.attempts <= self.fail_first:
            return web.Response(status=500)
        ok = verify(
            self.secret, request.headers.get(TIMESTAMP_HEADER, ""), body, request.headers.get(SIGNATURE_HEADER, ""),
            now=float(request.headers.get(TIMESTAMP_HEADER, "0")),
        )  # fmt: skip
        if not ok:
            return web.Response(status=401)
        self.received.append(Received(body, dict(request.headers), ok))
        self.arrived.set()
        return web.Response(status=204)


@dataclass
class BotApi:
    token: str = BOT_TOKEN
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        self.received.append(await request.json())
        return web.json_response({"ok": True, "result": {"message_id": len(self.received)}})


@contextlib.asynccontextmanager
async def serve_http(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def webhook_receiver(**kwargs: Any) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(**kwargs)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with serve_http(app) as base:
        receiver.url = f"{base}/hook"
        yield receiver


@contextlib.asynccontextmanager
async def bot_api() -> AsyncIterator[BotApi]:
    api = BotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", api.handle)
    async with serve_http(app) as base:
        api.url = base
        yield api


@dataclass
class MailBox:
    """aiosmtpd handler: keeps every message it accepts; AUTH LOGIN/PLAIN with one user."""

    user: str = "tgwatch"
    password: str = SECRET
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        ):
            self.logins.append(self.user)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@contextlib.asynccontextmanager
async def smtp_server() -> AsyncIterator[MailBox]:
    box = MailBox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(box, authenticator=box.authenticate, auth_require_tls=False, hostname="mail.test"),
        "127.0.0.1", 0,
    )  # fmt: skip
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()
