"""``FakeSender``: Telethon's ``MTProtoSender`` with the network cut out.

The real sender encrypts requests, writes them to a TCP connection and resolves each request's
future when its ``rpc_result`` arrives; unsolicited ``Updates`` go to the client's updates
queue. This one keeps that contract — ``send()`` returns futures, RPC errors are built with
Telethon's ``rpc_message_to_error``, results go through the real ``_store_own_updates``, pushed
updates land on the same ``updates_queue`` — but the "server" is :func:`handlers.answer`.
The ``Connection`` object the client passes to :meth:`connect` is kept and never opened.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

from telethon import utils
from telethon.errors import rpc_message_to_error
from telethon.extensions import BinaryReader
from telethon.network.mtprotosender import MTProtoSender
from telethon.tl.types import RpcError

from .faults import RpcFault
from .handlers import answer_with_key
from .model import FakeUser
from .world import FakeTelegram

_VECTOR = 0x1CB5C415


def _wire(result: Any) -> bytes:
    if isinstance(result, bool):  # TL's Bool: boolTrue / boolFalse constructors
        return struct.pack("<I", 0x997275B5 if result else 0xBC799737)
    if isinstance(result, list):
        return struct.pack("<Ii", _VECTOR, len(result)) + b"".join(bytes(x) for x in result)
    return bytes(result)


class FakeSender(MTProtoSender):
    """An ``MTProtoSender`` whose peer is a :class:`FakeTelegram` instead of a socket."""

    def __init__(self, world: FakeTelegram, auth_key: Any, *, loggers: Any, updates_queue: Any = None) -> None:
        super().__init__(auth_key, loggers=loggers, updates_queue=updates_queue)
        self._world = world
        self._gone: asyncio.Future[None] | None = None
        self._reconnect_task = None
        self._user_connected: bool = False

    # -- identity, as the world sees this connection

    @property
    def account(self) -> FakeUser | None:
        return self._world.account_for_key(self.auth_key.key)

    def push(self, updates: Any) -> None:
        """An update from the world, delivered as the receive loop would."""
        if self._user_connected and self._updates_queue is not None:
            self._updates_queue.put_nowait(updates)

    # -- MTProtoSender surface used by TelegramClient

    async def connect(self, connection: Any) -> bool:
        if self._user_connected:
            return False
        self._connection = connection  # kept for TelegramClient.set_proxy; never opened
        if self.auth_key.key is None:
            self.auth_key.key = os.urandom(256)  # what the DH key exchange would have produced
        self._gone = asyncio.get_running_loop().create_future()
        self._user_connected = True
        self._world.sinks.add(self)
        return True

    async def disconnect(self) -> None:
        self._user_connected = False
        self._connection = None
        self._world.sinks.discard(self)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    @property
    def disconnected(self) -> asyncio.Future[None]:
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
            self._gone.set_result(None)
        return asyncio.shield(self._gone)

    def _transport_connected(self) -> bool:
        return self._user_connected

    def _keepalive_ping(self, rnd_id: int) -> None:
        """Nothing to keep alive."""

    def send(self, request: Any, ordered: bool = False) -> Any:
        if not self._user_connected:
            raise ConnectionError("Cannot send requests while disconnected")
        if utils.is_list_like(request):
            return [self._submit(r) for r in request]
        return self._submit(request)

    def _submit(self, request: Any) -> asyncio.Future[Any]:
        bytes(request)  # the real sender serializes here too: bad arguments fail the same way
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            result = answer_with_key(self._world, self.auth_key.key, request)
            if self._world.wire_roundtrip:
                with BinaryReader(_wire(result)) as reader:
                    result = request.read_result(reader)
        except RpcFault as fault:
            outcome: tuple[bool, Any] = (False, rpc_message_to_error(RpcError(fault.code, fault.message), request))
        except Exception as exc:  # e.g. UnsupportedRequest: surfaces to the caller, like a read error
            outcome = (False, exc)
        else:
            self._store_own_updates(result)
            outcome = (True, result)
        if self._world.latency > 0:
            asyncio.get_running_loop().call_later(self._world.latency, _settle, future, outcome)
        else:
            _settle(future, outcome)
        return future


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
