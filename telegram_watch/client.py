"""Building ``TelegramClient`` objects: the real network one, or one over the fake Telegram world.

Everything else takes a ``ClientFactory`` (session string, proxy → unconnected client), so the same
backfill/watch/pool code runs against Telegram in production and against ``telegram_watch.fake`` in
tests and benchmarks. Clients never sleep through flood waits on their own
(``flood_sleep_threshold`` defaults to 0): the pool decides what to do with a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from telethon import TelegramClient
from telethon.sessions import StringSession

from config import Settings
from foundation.errors import ConfigError

ClientFactory = Callable[[str, str | None], TelegramClient]

_PROXY_SCHEMES = {"socks5", "socks4", "http"}


def parse_proxy(proxy: str | None) -> dict[str, Any] | None:
    """``socks5://user:pass@host:1080`` → the dict Telethon (python-socks) expects."""
    if not proxy:
        return None
    parts = urlsplit(proxy)
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname or not parts.port:
        raise ConfigError("proxy must look like socks5://[user:pass@]host:port (socks5, socks4 or http)")
    out: dict[str, Any] = {"proxy_type": parts.scheme, "addr": parts.hostname, "port": parts.port, "rdns": True}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    return out


def real_client_factory(settings: Settings) -> ClientFactory:
    """Clients for the real Telegram network; needs ``telegram.api_id`` and ``telegram.api_hash``."""
    tg = settings.telegram
    if tg.api_id is None or tg.api_hash is None:
        raise ConfigError("telegram.api_id and telegram.api_hash are required (TGWATCH_TELEGRAM__API_ID / __API_HASH)")
    api_id, api_hash = tg.api_id, tg.api_hash.get_secret_value()

    def make(session: str, proxy: str | None) -> TelegramClient:
        return TelegramClient(
            StringSession(session),
            api_id,
            api_hash,
            proxy=parse_proxy(proxy),
            flood_sleep_threshold=tg.flood_sleep_threshold,
            request_retries=3,
            receive_updates=True,
            device_model="tgwatch",
            app_version="tgwatch 0.1",
        )

    return make


def fake_client_factory(world: Any, **client_kwargs: Any) -> ClientFactory:
    """Clients over a ``telegram_watch.fake`` world: real Telethon code, no network (tests, bench)."""
    from telegram_watch.fake.client import FakeTelegramClient

    client_kwargs.setdefault("flood_sleep_threshold", 0)  # the pool, not Telethon, handles waits

    def make(session: str, proxy: str | None) -> TelegramClient:
        client: TelegramClient = FakeTelegramClient(world, StringSession(session), **client_kwargs)
        return client

    return make
