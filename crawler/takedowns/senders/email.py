"""E-mail to the platform's abuse address over SMTP (``aiosmtplib``), the text report as body.

The message is built once, as the exact bytes handed to the SMTP server (CRLF line endings,
UTF-8), so the ledger's SHA-256 is the digest of what the receiving server stores. The SMTP host is
operator-configured: it is checked with the same egress policy as every named host before a
connection is made. The password is read from the environment variable the settings name.
"""

from __future__ import annotations

import email.policy
import os
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from config.takedowns import EmailSenderSettings
from crawler.takedowns.models import TakedownRequest
from crawler.takedowns.senders.base import Rendered, SendFailed, SendResult, sha256_hex
from foundation.egress import EgressPolicy
from foundation.errors import EgressDenied, SourceError


class EmailSender:
    channel = "email"

    def __init__(
        self, settings: EmailSenderSettings, *, from_address: str, default_language: str, egress: EgressPolicy
    ) -> None:
        self.settings = settings
        self.from_address = settings.from_address or from_address
        self.default_language = default_language
        self.egress = egress.allowing(settings.host)

    def language(self, request: TakedownRequest) -> str | None:
        return self.settings.languages.get(request.platform.value) or self.default_language

    def address(self, request: TakedownRequest) -> str:
        found = (self.settings.addresses.get(request.platform.value) or {}).get("abuse")
        if not found:
            raise SendFailed(f"no abuse e-mail address configured for platform {request.platform.value}", retry=False)
        return found

    def message_bytes(self, request: TakedownRequest, rendered: Rendered) -> tuple[str, bytes]:
        to = self.address(request)
        if not self.from_address:
            raise SendFailed(
                "no From address: set takedowns.reporter_contact or senders.email.from_address", retry=False
            )
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self.from_address
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(idstring=request.id.lower(), domain=self.from_address.rpartition("@")[2] or None)
        msg["X-Tgwatch-Request"] = request.id
        msg.set_content(rendered.text, charset="utf-8")
        msg["Content-Language"] = rendered.language  # after set_content, which resets Content-* headers
        return to, msg.as_bytes()

    async def send(self, request: TakedownRequest, rendered: Rendered) -> SendResult:
        to, data = self.message_bytes(request, rendered)
        digest = sha256_hex(data)
        s = self.settings
        try:
            target = self.egress.check_url(f"http://{s.host}:{s.port}/")
            await self.egress.check_resolved(target)
        except (EgressDenied, SourceError) as exc:
            raise SendFailed(f"SMTP host refused: {exc.message}", sha256=digest, retry=False) from exc
        password = os.environ.get(s.password_env, "") if s.password_env else ""
        smtp = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout,
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
        )  # fmt: skip
        try:
            async with smtp:
                if s.username:
                    await smtp.login(s.username, password)
                refused, reply = await smtp.sendmail(self.from_address, [to], data)
        except aiosmtplib.SMTPException as exc:
            raise SendFailed(f"SMTP: {type(exc).__name__}: {exc}", sha256=digest) from exc
        except OSError as exc:
            raise SendFailed(f"SMTP connection to {s.host}:{s.port} failed: {exc}", sha256=digest) from exc
        if refused:
            raise SendFailed(f"SMTP refused {sorted(refused)}", sha256=digest)
        return SendResult(
            channel=self.channel, via=f"email:{to}", sha256=digest,
            answer={"smtp_reply": str(reply)[:500], "bytes": len(data)},
        )  # fmt: skip
