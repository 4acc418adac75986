"""Settings of the HTTP server (``api.*``) and of console sign-in sessions (``console.*``)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, SecretStr, field_validator


class ApiSettings(BaseModel):
    #: key of the stored token and session digests (urlsafe base64, 32 bytes); unset = a key file made
    #: once under data_dir/keys (0600). Set it when several hosts serve the API from one database.
    token_key: SecretStr | None = None
    #: reverse proxies (IPs or CIDRs) whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed;
    #: from any other peer those headers are ignored
    trusted_proxies: list[str] = Field(default_factory=list)
    #: mark cookies ``Secure`` and send HSTS even when no TLS or trusted proxy says so
    secure_cookies: bool = False
    #: seconds a client has to send a request's headers (and to send its body) before it is dropped
    request_read_timeout: float = Field(20.0, gt=0, le=600)
    #: failed authentications per client address in ``auth_failure_window`` seconds before 429
    auth_failure_limit: int = Field(10, ge=1)
    auth_failure_window: float = Field(60.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError → a clear settings error
        return value


class ConsoleSettings(BaseModel):
    #: a console session ends after this many minutes without a request
    session_idle_minutes: float = Field(30.0, gt=0)
    #: and after this many hours in any case
    session_max_hours: float = Field(12.0, gt=0)

    #: the time zone console pages show times in, per page language (a UTC copy is on hover);
    #: IANA names, e.g. ``{"ko": "Asia/Seoul", "en": "Europe/London"}``
    timezones: dict[str, str] = Field(default_factory=lambda: {"ko": "Asia/Seoul", "en": "UTC"})

    @field_validator("timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for zone in value.values():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Asia/Seoul)") from None
        return value
