"""Telethon errors → tgwatch's error tree, at the one edge that calls Telethon.

Core code never sees a Telethon exception. Translated errors keep the RPC name (``rpc``) and, where
the error says something about a channel, the ``ChannelState`` it implies, so callers can record a
clear state instead of parsing messages. Errors that say the *account* is unusable
(deauthorized, deactivated, banned) become ``AccountUnusable``: the pool retires that account and
hands the work to another one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from telethon import errors as tle
from telethon.errors import rpcerrorlist

from foundation.errors import AccessDenied, NotFound, RateLimited, SourceError, TgwatchError
from foundation.models import ChannelState


class TelegramDenied(AccessDenied):
    """The channel or invite exists but this account may not read/join it."""

    def __init__(self, message: str, *, rpc: str, channel_state: ChannelState | None = None) -> None:
        super().__init__(message)
        self.rpc = rpc
        self.channel_state = channel_state

    def to_doc(self) -> dict[str, object]:
        return {**super().to_doc(), "rpc": self.rpc}


class TelegramNotFound(NotFound):
    """Username, channel, message or invite does not exist (or no longer)."""

    def __init__(self, message: str, *, rpc: str, channel_state: ChannelState | None = None) -> None:
        super().__init__(message)
        self.rpc = rpc
        self.channel_state = channel_state

    def to_doc(self) -> dict[str, object]:
        return {**super().to_doc(), "rpc": self.rpc}


class AccountUnusable(AccessDenied):
    """The account itself cannot work any more (``state`` is ``deauthorized``, ``banned`` or ``frozen``).

    ``frozen``: since 2025 Telegram freezes accounts it suspects (``FROZEN_METHOD_INVALID``,
    ``FROZEN_PARTICIPANT_MISSING``); a frozen account still logs in but may call almost nothing, and
    may be unfrozen on appeal, so it is parked (kept, not used) rather than forgotten."""

    kind = "account_unusable"

    def __init__(self, message: str, *, rpc: str, state: str) -> None:
        super().__init__(message)
        self.rpc = rpc
        self.state = state


class FileReferenceExpired(SourceError):
    """A media file reference went stale: refetch the message for a fresh one."""

    kind = "file_reference_expired"


class TelegramDisconnected(SourceError):
    """The connection dropped (or timed out) under a request: worth resuming, not a verdict."""

    kind = "telegram_disconnected"


_DENIED: dict[type[Exception], ChannelState | None] = {
    tle.ChannelPrivateError: ChannelState.PRIVATE,
    tle.ChannelBannedError: ChannelState.BANNED,
    tle.ChatAdminRequiredError: None,
    tle.ChatForbiddenError: ChannelState.PRIVATE,
    tle.UserBannedInChannelError: ChannelState.BANNED,
    tle.InviteRequestSentError: None,
    tle.ChannelsTooMuchError: None,
}
_NOT_FOUND: dict[type[Exception], ChannelState | None] = {
    tle.UsernameNotOccupiedError: ChannelState.NOT_FOUND,
    tle.UsernameInvalidError: ChannelState.INVALID,
    tle.ChannelInvalidError: ChannelState.INVALID,
    tle.PeerIdInvalidError: ChannelState.INVALID,
    tle.InviteHashExpiredError: ChannelState.NOT_FOUND,
    tle.InviteHashInvalidError: ChannelState.INVALID,
    tle.InviteHashEmptyError: ChannelState.INVALID,
    tle.MsgIdInvalidError: None,
}
_ACCOUNT: dict[type[Exception], str] = {
    tle.AuthKeyUnregisteredError: "deauthorized",
    tle.SessionRevokedError: "deauthorized",
    tle.SessionExpiredError: "deauthorized",
    tle.AuthKeyDuplicatedError: "deauthorized",
    tle.UserDeactivatedError: "banned",
    tle.UserDeactivatedBanError: "banned",
    tle.PhoneNumberBannedError: "banned",
    tle.FrozenMethodInvalidError: "frozen",
    tle.FrozenParticipantMissingError: "frozen",
}


def rpc_name(exc: BaseException) -> str:
    """Telegram's error name (``CHANNEL_BANNED``): Telethon's known errors keep only the generic
    ``BAD_REQUEST`` in ``message``, so the class is mapped back to the name it was raised for."""
    known = _RPC_NAMES.get(type(exc))
    return known or str(getattr(exc, "message", None) or type(exc).__name__)


#: Telethon's error class → the Telegram error name it stands for
_RPC_NAMES: dict[type, str] = {cls: name for name, cls in rpcerrorlist.rpc_errors_dict.items()}


def translate(exc: BaseException) -> TgwatchError:
    """The tgwatch error for a Telethon (or Telethon-raised ValueError) exception."""
    if isinstance(exc, TgwatchError):
        return exc
    name = rpc_name(exc)
    if isinstance(exc, tle.FloodWaitError | tle.FloodPremiumWaitError | tle.SlowModeWaitError):
        return RateLimited(f"telegram flood wait ({name})", retry_after=float(exc.seconds))
    if isinstance(exc, tle.FileReferenceExpiredError):
        return FileReferenceExpired(name)
    for cls, state in _DENIED.items():
        if isinstance(exc, cls):
            return TelegramDenied(name, rpc=name, channel_state=state)
    for cls, state in _NOT_FOUND.items():
        if isinstance(exc, cls):
            return TelegramNotFound(name, rpc=name, channel_state=state)
    for cls, account_state in _ACCOUNT.items():
        if isinstance(exc, cls):
            return AccountUnusable(name, rpc=name, state=account_state)
    if name.startswith("FROZEN_"):  # Telegram adds FROZEN_* names over time; all mean the same
        return AccountUnusable(name, rpc=name, state="frozen")
    if isinstance(exc, tle.UnauthorizedError):
        return AccountUnusable(name, rpc=name, state="deauthorized")
    if isinstance(exc, ValueError):
        # get_entity/get_input_entity raise ValueError for names they cannot resolve from cache or server
        return TelegramNotFound(str(exc), rpc="UNRESOLVED", channel_state=ChannelState.NOT_FOUND)
    if isinstance(exc, tle.RPCError):
        return SourceError(f"telegram RPC error {name}")
    if isinstance(exc, ConnectionError | TimeoutError):
        return TelegramDisconnected(f"telegram: {type(exc).__name__}: {exc}")
    return SourceError(f"telegram: {type(exc).__name__}: {exc}")


TRANSLATED: tuple[type[BaseException], ...] = (tle.RPCError, ValueError, ConnectionError, TimeoutError)


@contextmanager
def telethon_errors() -> Iterator[None]:
    """Map Telethon failures to our tree (httpx's ``map_exceptions`` pattern)."""
    try:
        yield
    except TRANSLATED as exc:
        raise translate(exc) from exc


def channel_state_of(error: BaseException) -> ChannelState | None:
    return getattr(error, "channel_state", None)
