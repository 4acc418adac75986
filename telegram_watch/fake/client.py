"""``FakeTelegramClient``: the real ``TelegramClient`` with a :class:`FakeSender` plugged in."""

from __future__ import annotations

from typing import Any

from telethon import TelegramClient
from telethon.network.mtprotosender import MTProtoSender
from telethon.tl import functions
from telethon.tl.alltlobjects import LAYER

from .sender import FakeSender
from .world import FakeTelegram


class FakeTelegramClient(TelegramClient):
    """A ``TelegramClient`` whose only network is a :class:`FakeTelegram`.

    Overrides exactly two things (see the package docstring for why):
    ``__init__`` swaps the ``MTProtoSender`` for a :class:`FakeSender`, and
    ``_create_exported_sender`` builds a ``FakeSender`` for other data centers.
    """

    def __init__(
        self, world: FakeTelegram, session: Any = None, api_id: int = 1, api_hash: str = "fake-api-hash", **kwargs: Any
    ) -> None:
        super().__init__(session, api_id, api_hash, **kwargs)
        self.fake_world = world
        self._sender = FakeSender(world, self.session.auth_key, loggers=self._log, updates_queue=self._updates_queue)

    async def _create_exported_sender(self, dc_id: int) -> MTProtoSender:
        """Telethon's own body, with ``MTProtoSender(None, ...)`` replaced by a ``FakeSender``."""
        dc = await self._get_dc(dc_id)
        sender = FakeSender(self.fake_world, None, loggers=self._log)
        await sender.connect(
            self._connection(
                dc.ip_address, dc.port, dc.id, loggers=self._log, proxy=self._proxy, local_addr=self._local_addr
            )
        )
        auth = await self(functions.auth.ExportAuthorizationRequest(dc_id))
        self._init_request.query = functions.auth.ImportAuthorizationRequest(id=auth.id, bytes=auth.bytes)
        await sender.send(functions.InvokeWithLayerRequest(LAYER, self._init_request))
        return sender
