"""Scripted RPC errors: FloodWait storms, private channels, expired file references.

A rule names an RPC error by its Telegram message (``FLOOD_WAIT_30``, ``CHANNEL_PRIVATE``)
and the fake sender turns it into the exact Telethon exception with Telethon's own
``rpc_message_to_error`` — the same function the real sender uses on a wire ``rpc_error``.
Rules are checked in the order they were added; the first match with uses left fires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telethon.tl import functions

from .model import FakeChannel, FakeUser

# Telegram's error codes by message family; anything else is a 400.
_CODES = {
    "FLOOD_WAIT_": 420,
    "FLOOD_PREMIUM_WAIT_": 420,
    "SLOWMODE_WAIT_": 420,
    "AUTH_KEY_UNREGISTERED": 401,
    "USER_DEACTIVATED": 401,
    "SESSION_REVOKED": 401,
    "SESSION_PASSWORD_NEEDED": 401,
    "INTERNAL": 500,
}


def error_code(message: str) -> int:
    """The RPC error code Telegram uses for ``message``."""
    for prefix, code in _CODES.items():
        if message.startswith(prefix):
            return code
    return 400


class RpcFault(Exception):
    """Raised inside the world; the fake sender turns it into the real Telethon error."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = error_code(message) if code is None else code


Predicate = Callable[[Any], bool]


@dataclass(eq=False)
class FaultRule:
    """Raise ``message`` for matching requests, ``times`` times (None: forever)."""

    message: str
    account_id: int | None = None
    request_types: tuple[type, ...] = ()
    predicate: Predicate | None = None
    times: int | None = 1
    fired: int = 0

    def matches(self, account_id: int | None, request: Any) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.account_id is not None and account_id != self.account_id:
            return False
        if self.request_types and not isinstance(request, self.request_types):
            return False
        return self.predicate is None or self.predicate(request)


def request_channel_id(request: Any) -> int | None:
    """The channel a request is about, read from its ``channel`` or ``peer`` field."""
    for name in ("channel", "peer"):
        target = getattr(request, name, None)
        channel_id = getattr(target, "channel_id", None)
        if isinstance(channel_id, int):
            return channel_id
    return None


def _types(request_type: type | tuple[type, ...] | None) -> tuple[type, ...]:
    if request_type is None:
        return ()
    return request_type if isinstance(request_type, tuple) else (request_type,)


class Faults:
    """Per-account fault rules; reach it as ``world.faults``."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(
        self,
        message: str,
        *,
        account: FakeUser | None = None,
        request_type: type | tuple[type, ...] | None = None,
        predicate: Predicate | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        """Raise the RPC error ``message`` (e.g. ``"CHANNEL_PRIVATE"``) on matching requests."""
        rule = FaultRule(message, account.id if account else None, _types(request_type), predicate, times)
        self.rules.append(rule)
        return rule

    def flood_wait(
        self,
        account: FakeUser | None,
        request_type: type | tuple[type, ...] | None,
        seconds: int,
        times: int | None = 1,
    ) -> FaultRule:
        """``FloodWaitError(seconds)`` for ``account`` (None: every account) on ``request_type``."""
        return self.add(f"FLOOD_WAIT_{seconds}", account=account, request_type=request_type, times=times)

    def channel_private(self, account: FakeUser | None, channel: FakeChannel, times: int | None = None) -> FaultRule:
        """``ChannelPrivateError`` on every request about ``channel`` (as after a kick)."""
        return self.add(
            "CHANNEL_PRIVATE",
            account=account,
            predicate=lambda r: request_channel_id(r) == channel.id,
            times=times,
        )

    def file_reference_expired(self, account: FakeUser | None = None, times: int | None = 1) -> FaultRule:
        """``FileReferenceExpiredError`` on ``upload.GetFile`` (so refetch paths can be tested)."""
        return self.add(
            "FILE_REFERENCE_EXPIRED", account=account, request_type=functions.upload.GetFileRequest, times=times
        )

    def clear(self) -> None:
        self.rules.clear()

    def check(self, account_id: int | None, request: Any) -> None:
        """Raise the first matching rule's error, consuming one of its uses."""
        for rule in self.rules:
            if rule.matches(account_id, request):
                rule.fired += 1
                raise RpcFault(rule.message)
