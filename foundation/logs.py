"""structlog set-up: one processor chain, a redaction step that runs before any renderer.

Redaction works on keys *and* values: a key that names a secret is masked whatever its value, and
string values are scrubbed for things that look like secrets (phone numbers, bearer tokens, Telethon
session strings, URI passwords, api_hash-like hex) wherever they appear, including in exception
messages, so a careless ``log.info("login", extra=str(session))`` still prints nothing secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "[REDACTED]"

SECRET_KEYS = frozenset(
    {
        "api_hash",
        "session",
        "session_string",
        "string_session",
        "phone",
        "phone_number",
        "password",
        "passwd",
        "token",
        "access_token",
        "bearer",
        "secret",
        "secrets_key",
        "api_key",
        "private_key",
        "cookie",
        "set-cookie",
        "login_code",
    }
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers and bearer tokens
    (re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # user:password@ in URIs
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@"), r"\1" + MASK + "@"),
    # Telethon StringSession: version char '1' + long urlsafe base64
    (re.compile(r"\b1[A-Za-z0-9_-]{100,}={0,2}"), MASK),
    # tgwatch API tokens (tgw_ prefix) and other long opaque tokens after key=
    (re.compile(r"\btgw_[A-Za-z0-9_-]{16,}"), MASK),
    (re.compile(r"(?i)\b(api_hash|password|token|secret|session)(\s*[=:]\s*)['\"]?[^\s'\",}]+"), r"\1\2" + MASK),
    # 32-hex api_hash values, where the text says so (a bare 32-hex string is as often a record id)
    (re.compile(r"(?i)(\bapi[_ -]?hash\W{0,3})[0-9a-f]{32}\b"), r"\1" + MASK),
    # phone numbers: + and 7–15 digits, optional separators
    (re.compile(r"\+\d[\d\s().-]{6,18}\d"), MASK),
)


def scrub(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


#: ``authorization`` names both an HTTP credential and a case authorization (whose id is no secret):
#: a value with an auth scheme or any space is a credential and masked, a bare id is only scrubbed
CREDENTIAL_OR_ID_KEYS = frozenset({"authorization", "proxy-authorization"})
_CREDENTIAL = re.compile(r"(?i)^\s*(bearer|basic|digest|token|negotiate|ntlm|hoba|mutual|aws4-\S+)\b|\s")


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and key.lower() in SECRET_KEYS and value is not None:
        return MASK
    if key is not None and key.lower() in CREDENTIAL_OR_ID_KEYS and value is not None:
        return MASK if not isinstance(value, str) or _CREDENTIAL.search(value) else scrub(value)
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, MutableMapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(None, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(repr(value)) if not hasattr(value, "get_secret_value") else MASK


class RedactSecrets:
    """Mask secret-named keys and secret-looking substrings in every event, exceptions included."""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            event_dict[key] = _redact_value(key if key != "event" else None, event_dict[key])
        return event_dict


class ScrubRendered:
    """Last line of defence after rendering (tracebacks are rendered into strings late)."""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        rendered = event_dict if isinstance(event_dict, str) else str(event_dict)
        return scrub(rendered)


def _renderer(fmt: str, stream: TextIO) -> Iterable[Processor]:
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    if use_json:
        return (
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            RedactSecrets(),
            structlog.processors.JSONRenderer(ensure_ascii=False),
            ScrubRendered(),
        )
    return (
        structlog.processors.format_exc_info,
        RedactSecrets(),
        structlog.dev.ConsoleRenderer(colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback),
        ScrubRendered(),
    )


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Install the processor chain. Safe to call again (tests reconfigure per run)."""
    out = stream or sys.stderr
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        *_renderer(fmt, out),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (scrapy, telethon, pymongo) go to the same stream, scrubbed.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tgwatch", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(out)
    handler.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._tgwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(logging.getLevelName(level), logging.INFO))
    for noisy in ("scrapy", "twisted", "telethon", "pymongo", "asyncio", "aiohttp.access", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # "Disabled <component>: NotConfigured" is Scrapy's normal way of switching a component off
    logging.getLogger("scrapy.middleware").setLevel(logging.ERROR)


class _ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def _safe_defaults() -> None:
    """Before ``configure`` runs (library use, tests, a code path that logs before settings are
    read), structlog's own defaults would render tracebacks *with their locals* — request objects,
    tokens, session strings. Until ``configure`` replaces it, the chain here still redacts, scrubs
    and renders tracebacks without locals."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            RedactSecrets(),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
            ScrubRendered(),
        ],
        cache_logger_on_first_use=False,
    )


_safe_defaults()
