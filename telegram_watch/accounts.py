"""The account pool's persistence and log-in flows, with secrets encrypted before they reach storage.

``Accounts`` is the only code that sees a plaintext session string or phone number: it encrypts on
the way into ``AccountRepo`` and decrypts on the way out into an ``Account`` whose secret fields are
hidden from ``repr`` (so a stray ``log.info(account=...)`` prints nothing secret). Log lines name an
account by its operator-chosen name, never by its phone.
"""

from __future__ import annotations

import binascii
import os
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telethon import TelegramClient
from telethon.sessions import StringSession
from telethon.tl import functions, types

from foundation.contracts import ACTIVE, FROZEN, AccountStore
from foundation.errors import ConfigError
from foundation.logs import get_logger
from telegram_watch.client import ClientFactory, parse_proxy
from telegram_watch.crypto import SecretBox
from telegram_watch.errors import AccountUnusable, telethon_errors

log = get_logger(__name__)

Prompt = Callable[[], str]


@dataclass(frozen=True)
class Account:
    name: str
    session: str = field(repr=False)
    phone: str | None = field(default=None, repr=False)
    proxy: str | None = field(default=None, repr=False)
    state: str = ACTIVE
    state_reason: str | None = None
    flood_until: float = 0.0
    flood_waits: int = 0
    user_id: int | None = None


def lease_holder() -> str:
    """Who holds a session lease: host, pid and a random tag (a reused pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def summary(doc: dict[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """What ``accounts list`` may show: no phone, no session, no proxy credentials."""
    now = time.time() if now is None else now
    until = float(doc.get("flood_until") or 0.0)
    lease_until = float(doc.get("lease_until") or 0.0)
    leased = bool(doc.get("lease_holder")) and lease_until > now
    return {
        "name": doc["_id"],
        "state": doc.get("state"),
        "reason": doc.get("state_reason"),
        "user_id": doc.get("user_id"),
        "flood_wait_left": round(until - now) if until > now else 0,
        "flood_waits": int(doc.get("flood_waits") or 0),
        "proxy": bool(doc.get("proxy_enc")) or bool(doc.get("proxy")),
        "frozen": doc.get("state") == FROZEN,
        "parked": doc.get("state") != ACTIVE or until > now,
        "leased_by": doc.get("lease_holder") if leased else None,
        "lease_left": round(lease_until - now) if leased else 0,
    }


class Accounts:
    """Encrypting facade over an ``AccountStore`` (``storage.repos.accounts.AccountRepo`` in the app)."""

    def __init__(self, repo: AccountStore, box: SecretBox) -> None:
        self.repo = repo
        self._box = box

    async def add(
        self, name: str, *, session: str, phone: str | None, user_id: int | None, proxy: str | None = None
    ) -> None:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("account names are letters, digits, '-' and '_' (they appear in logs)")
        parse_proxy(proxy)  # validate before storing
        await self.repo.add(
            name,
            session_enc=self._box.encrypt(session, context=f"session:{name}"),
            phone_enc=self._box.encrypt(phone, context=f"phone:{name}") if phone else None,
            user_id=user_id,
            proxy=self._box.encrypt(proxy, context=f"proxy:{name}") if proxy else None,
        )
        log.info("account added", account=name, user_id=user_id)

    def _account(self, doc: dict[str, Any]) -> Account:
        name = str(doc["_id"])
        return Account(
            name=name,
            session=self._box.decrypt(doc["session_enc"], context=f"session:{name}"),
            phone=self._box.decrypt(doc["phone_enc"], context=f"phone:{name}") if doc.get("phone_enc") else None,
            proxy=self._box.decrypt(doc["proxy"], context=f"proxy:{name}") if doc.get("proxy") else None,
            state=str(doc.get("state", ACTIVE)),
            state_reason=doc.get("state_reason"),
            flood_until=float(doc.get("flood_until") or 0.0),
            flood_waits=int(doc.get("flood_waits") or 0),
            user_id=doc.get("user_id"),
        )

    async def get(self, name: str) -> Account:
        doc = await self.repo.get(name)
        if doc is None:
            raise ConfigError(f"no account named {name!r}")
        return self._account(doc)

    async def active(self) -> list[Account]:
        return [self._account(d) for d in await self.repo.usable()]

    async def summaries(self) -> list[dict[str, Any]]:
        return [summary(d) for d in await self.repo.list_all()]


async def _authorized_user(client: TelegramClient) -> int:
    """Connect and return the logged-in user's id; an unauthorized session is ``AccountUnusable``."""
    with telethon_errors():
        if not client.is_connected():
            await client.connect()
        if not await client.is_user_authorized():
            raise AccountUnusable("session is not authorized", rpc="AUTH_KEY_UNREGISTERED", state="deauthorized")
        me = await client.get_me(input_peer=True)
    return int(me.user_id)


MALFORMED_SESSION = "the session string is malformed (not a Telethon StringSession)"
#: what Telethon's StringSession raises on bad input: bad version/base64, a short buffer, bad text
SESSION_ERRORS = (ValueError, binascii.Error, struct.error, UnicodeError, IndexError)


def check_session_string(session: str) -> None:
    """Refuse a session string that is empty, malformed or carries no login, before any connection.

    An empty string is a *new* Telethon session: importing it would connect to Telegram's default
    data centre and start a log-in nobody asked for. The message never repeats the string (a secret).
    """
    if not session.strip():
        raise ConfigError("the session string is empty")
    try:
        parsed = StringSession(session.strip())
    except SESSION_ERRORS:
        raise ConfigError(MALFORMED_SESSION) from None
    if parsed.auth_key is None or not parsed.server_address:
        raise ConfigError("the session string holds no login (no auth key or server)")


async def import_session(
    accounts: Accounts, factory: ClientFactory, name: str, session: str, *, proxy: str | None = None
) -> int:
    """Add an account from an existing session string after proving it is logged in."""
    check_session_string(session)
    try:
        client = factory(session, proxy)
    except SESSION_ERRORS:  # StringSession refuses malformed strings
        raise ConfigError(MALFORMED_SESSION) from None
    try:
        user_id = await _authorized_user(client)
    finally:
        await client.disconnect()
    await accounts.add(name, session=session, phone=None, user_id=user_id, proxy=proxy)
    return user_id


async def login_interactive(
    accounts: Accounts,
    factory: ClientFactory,
    name: str,
    *,
    phone: Prompt,
    code: Prompt,
    password: Prompt,
    proxy: str | None = None,
) -> int:
    """Log in with phone, code and (if set) 2FA password through Telethon, then store encrypted."""
    client = factory("", proxy)
    asked: dict[str, str] = {}

    def ask_phone() -> str:
        asked["phone"] = phone()
        return asked["phone"]

    try:
        with telethon_errors():
            start: Awaitable[Any] = client.start(phone=ask_phone, code_callback=code, password=password)
            await start
        user_id = await _authorized_user(client)
        session = StringSession.save(client.session)
    finally:
        await client.disconnect()
    await accounts.add(name, session=session, phone=asked.get("phone"), user_id=user_id, proxy=proxy)
    return user_id


def _json_value(value: Any) -> Any:
    """A TL ``JSONValue`` → plain Python."""
    if isinstance(value, types.JsonObject):
        return {item.key: _json_value(item.value) for item in value.value}
    if isinstance(value, types.JsonArray):
        return [_json_value(v) for v in value.value]
    if isinstance(value, types.JsonNull):
        return None
    return getattr(value, "value", None)


async def freeze_notice(client: TelegramClient) -> str | None:
    """``FROZEN (since .., until ..)`` when Telegram's app config says this account is frozen.

    A frozen account still logs in; Telegram tells it about the freeze in ``help.getAppConfig``
    (``freeze_since_date``, ``freeze_until_date``, ``freeze_appeal_url``), one of the few methods it
    may still call. The appeal URL is left out (it is for the account's owner, in the app)."""
    with telethon_errors():
        result = await client(functions.help.GetAppConfigRequest(hash=0))
    config = _json_value(getattr(result, "config", None))
    if not isinstance(config, dict) or not config.get("freeze_since_date"):
        return None
    since, until = int(config["freeze_since_date"]), config.get("freeze_until_date")
    return f"FROZEN (since {since}, until {int(until) if until else '?'})"


class SessionInUse(ConfigError):
    """``accounts check`` found the session leased by a running worker: connecting would duplicate it."""


async def check_account(
    accounts: Accounts, factory: ClientFactory, account: Account, *, lease_seconds: float = 60.0
) -> str:
    """Connect with the stored session; record and return the account's state (frozen ones parked).

    The check takes the account's lease for its few seconds: a session a worker is using is never
    opened a second time (``SessionInUse`` instead)."""
    holder = f"check:{lease_holder()}"
    if await accounts.repo.take_lease(account.name, holder, seconds=lease_seconds, now=time.time()) is None:
        raise SessionInUse(f"account {account.name} is leased by a running worker; not connecting")
    client = factory(account.session, account.proxy)
    try:
        await _authorized_user(client)
        notice = await freeze_notice(client)
        state, reason = (FROZEN, notice) if notice else (ACTIVE, None)
    except AccountUnusable as exc:
        state, reason = exc.state, exc.rpc
    finally:
        await client.disconnect()
        await accounts.repo.release_lease(account.name, holder)
    await accounts.repo.set_state(account.name, state, reason)
    log.info("account checked", account=account.name, state=state, reason=reason)
    return state
