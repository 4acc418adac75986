"""Takedown settings: who reports, how often reported items are re-checked, and when a request is late.

Why a model of its own: the re-check cadence is a trade-off users must be able to see and tune
(fresh requests are checked often because removal in the first day matters most; old ones rarely, so
thousands of open requests do not hammer t.me), and the reporter identity appears in every report.
Durations accept ``"90s"``, ``"15m"``, ``"6h"``, ``"7d"`` or seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from config.targets import parse_duration

_DURATIONS = (
    "recheck_every",
    "overdue_after",
    "unknown_retry",
    "removed_recheck_every",
    "fresh_interval",
    "week_interval",
    "month_interval",
    "old_interval",
)


class EmailSenderSettings(BaseModel):
    """SMTP to the platform's abuse address. The host is operator-configured (a named egress host)."""

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    #: "starttls" (port 587), "tls" (implicit, port 465) or "none" (a local relay only)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    #: the name of the environment variable holding the SMTP password (never the password itself)
    password_env: str = ""
    #: the From address; empty means ``reporter_contact``
    from_address: str = ""
    #: the abuse address per platform, and per kind (``abuse``; ``copyright`` for copyright notices)
    addresses: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"telegram": {"abuse": "abuse@telegram.org", "copyright": "dmca@telegram.org"}}
    )
    #: report language per platform (its catalog must hold the ``report.*`` words); default ``language``
    languages: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0)


class MtprotoSenderSettings(BaseModel):
    """Telegram's in-app report over MTProto, through the account pool."""

    enabled: bool = False
    #: the language of the report's free-text comment
    language: str = ""
    #: seconds between two reports of one account (on top of the pool's request pacing)
    pacing: float = Field(2.0, ge=0)


class HotlineSenderSettings(BaseModel):
    """An HTTP POST of the JSON report to a national hotline's case system."""

    enabled: bool = False
    name: str = "hotline"
    url: str = ""
    #: the name of the environment variable holding the bearer token (never the token itself)
    token_env: str = ""
    language: str = ""
    timeout: float = Field(30.0, gt=0)


class SenderSettings(BaseModel):
    email: EmailSenderSettings = Field(default_factory=EmailSenderSettings)
    mtproto: MtprotoSenderSettings = Field(default_factory=MtprotoSenderSettings)
    hotline: HotlineSenderSettings = Field(default_factory=HotlineSenderSettings)


class TakedownSettings(BaseModel):
    #: who the reports say they come from (organisation and a reply address); shown in every report
    reporter_name: str = "tgwatch operator"
    reporter_contact: str = ""
    #: how often the scheduler looks for items due a re-check (each item has its own due time); 0 = off
    recheck_every: float = 900.0
    #: an item still online this long after the request was sent makes the request overdue
    overdue_after: float = 86_400.0
    #: back-off by request age (since last sent, or since created when never sent): < 1 day, < 7 days,
    #: < 30 days, older
    fresh_interval: float = 3_600.0
    week_interval: float = 6 * 3_600.0
    month_interval: float = 86_400.0
    old_interval: float = 7 * 86_400.0
    #: a failed check is retried after this (doubling per consecutive failure, capped by the age interval)
    unknown_retry: float = 600.0
    #: a removed item is checked this many more times, this far apart, to catch it coming back
    removed_rechecks: int = Field(3, ge=0)
    removed_recheck_every: float = 86_400.0
    #: requests taken per re-check run (most overdue first); the rest wait for the next run
    batch: int = Field(500, ge=1)

    #: where drafted/auto requests are sent (none enabled: "sending" records a mark-sent)
    senders: SenderSettings = Field(default_factory=SenderSettings)
    #: the default report language (``report.*`` in ``foundation/locale/<lang>``)
    language: str = "en"
    #: attempts per sender and sending, and the first back-off between them (doubling)
    send_attempts: int = Field(3, ge=1, le=10)
    send_backoff: float = 2.0
    #: what a detection (classifier) alert does: "manual" or "draft" (never "auto": a classifier can be wrong)
    detection_policy: Literal["manual", "draft"] = "manual"

    @field_validator(*_DURATIONS, "send_backoff", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    def interval_for_age(self, age_seconds: float) -> float:
        """The re-check interval of an item whose request is ``age_seconds`` old."""
        if age_seconds < 86_400:
            return self.fresh_interval
        if age_seconds < 7 * 86_400:
            return self.week_interval
        if age_seconds < 30 * 86_400:
            return self.month_interval
        return self.old_interval
