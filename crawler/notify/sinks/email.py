"""E-mail sink: plain-text mail through the configured SMTP server (aiosmtplib).

The password comes from ``TGWATCH_SMTP__PASSWORD`` only; STARTTLS is required unless
``smtp.starttls = false`` (a local relay). Mail is text/plain UTF-8, so nothing in it renders.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from config.notify import SmtpSettings
from crawler.notify.render import Outgoing
from crawler.notify.sinks import SinkError


class EmailSink:
    def __init__(self, address: str, smtp: SmtpSettings) -> None:
        self.address = address
        self._smtp = smtp

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._smtp.sender
        mail["To"] = self.address
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain="tgwatch.invalid")
        mail.set_content(message.text, charset="utf-8")
        return mail

    async def send(self, message: Outgoing) -> str:
        smtp = self._smtp
        if not smtp.host:
            raise SinkError("smtp.host is not set")
        mail = self.build(message)
        raw = mail.as_bytes()
        try:
            await aiosmtplib.send(
                mail, hostname=smtp.host, port=smtp.port, username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                start_tls=smtp.starttls, use_tls=False, timeout=smtp.timeout,
            )  # fmt: skip
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            code = getattr(exc, "code", None)
            raise SinkError(f"mail not accepted: {type(exc).__name__}" + (f" {code}" if code else "")) from None
        return hashlib.sha256(raw).hexdigest()
