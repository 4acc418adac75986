"""Notification settings: defaults for every sink, the SMTP server, the Telegram Bot API, the console link.

Why a model of its own: the secrets here (SMTP password, bot token) must only ever come from the
environment (``TGWATCH_SMTP__PASSWORD``, ``TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN``) and are ``SecretStr``
so printing settings never shows them; a webhook's secret is not a setting at all (each rule names
the environment variable that holds it). The rate limit and retry figures are per sink (rule).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SmtpSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    #: from the environment only: ``TGWATCH_SMTP__PASSWORD``
    password: SecretStr | None = None
    starttls: bool = True
    #: the envelope and header sender (``from`` in TOML)
    sender: str = Field("tgwatch@localhost", alias="from")
    timeout: float = Field(30.0, gt=0)


class NotifySettings(BaseModel):
    #: language of a sink's messages when its rule does not choose one
    default_lang: Literal["ko", "en"] = "ko"
    #: where people open the console (links in notifications); unset = no console link
    console_url: str | None = None
    #: Telegram Bot API: token from the environment only (``TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN``)
    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    #: per sink: at most this many messages per window; beyond it alerts wait and go out as one digest
    rate_limit: int = Field(20, ge=1)
    rate_window: float = Field(60.0, gt=0)
    #: attempts per delivery before it is dead-lettered (``tgwatch notify dead``)
    max_attempts: int = Field(6, ge=1)
    #: seconds a sink may take to accept one message
    send_timeout: float = Field(15.0, gt=0)
    #: seconds between looks for alerts raised by other processes (same-process alerts wake at once)
    poll_seconds: float = Field(1.0, gt=0)
