"""How a request reaches its handler: the registry and the checks every request passes.

Kept apart from the handlers so that adding a TL request touches one area module and never
this file; and so that the order of the checks (unwrap, count, unknown request, deactivated
account, login required, scripted faults) stays in one place that tests can reason about.

Handler modules register themselves with :func:`handles` when imported; ``handlers`` imports
all of them, which is why the sender takes :func:`answer_with_key` from there.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from telethon.tl import functions

from .faults import RpcFault
from .model import FakeUser
from .world import FakeTelegram


class UnsupportedRequest(NotImplementedError):
    """The fake has no handler for this TL request (add one to an area module named in ``handlers.py``)."""


Handler = Callable[[FakeTelegram, FakeUser, Any], Any]
_HANDLERS: dict[type, Handler] = {}
_NO_AUTH: set[type] = set()  # requests allowed before login
_WRAPPERS = (functions.InvokeWithLayerRequest, functions.InitConnectionRequest, functions.InvokeWithoutUpdatesRequest)
# The auth key of the request being answered: sign-in and logout bind or drop it.
current_key: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("fake_tg_auth_key", default=None)


def handles(request_type: type, *, auth: bool = True) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[request_type] = fn
        if not auth:
            _NO_AUTH.add(request_type)
        return fn

    return register


def answer(world: FakeTelegram, auth_key: bytes | None, request: Any) -> Any:
    """Answer one request the way Telegram would, for whoever ``auth_key`` is logged in as."""
    while isinstance(request, _WRAPPERS):
        request = request.query
    kind = type(request)
    handler = _HANDLERS.get(kind)
    account = world.account_for_key(auth_key)
    name = account.name if account else "-"
    world.calls[(name, kind.__name__)] += 1
    world.log.append((name, kind.__name__))
    if handler is None:
        raise UnsupportedRequest(f"FakeTelegram cannot answer {kind.__name__} (add a handler in fake/handlers.py)")
    if account is not None and account.deactivated:
        raise RpcFault("USER_DEACTIVATED_BAN")
    if account is None and kind not in _NO_AUTH:
        raise RpcFault("AUTH_KEY_UNREGISTERED")
    world.faults.check(account.id if account else None, request)
    return handler(world, account, request)  # type: ignore[arg-type]


def answer_with_key(world: FakeTelegram, auth_key: bytes | None, request: Any) -> Any:
    """:func:`answer`, exposing ``auth_key`` to the auth handlers that bind or drop it."""
    token = current_key.set(auth_key)
    try:
        return answer(world, auth_key, request)
    finally:
        current_key.reset(token)
