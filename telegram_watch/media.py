"""Media download over MTProto: streamed, capped, and repaired once when a file reference expires.

``MediaFetcher.fetch(ref)`` is the seam the hashing stage calls for ``source == mtproto`` media: it
rebuilds the file location from ``MediaRef.locator`` (see ``convert``), streams it with
``iter_download`` and stops as soon as the bytes pass ``limits.max_media_bytes`` (``TooLarge``), so a
huge file never sits in memory. File references expire (hours to days); on
``FILE_REFERENCE_EXPIRED`` the message is fetched again for a fresh reference and the download is
retried once.
"""

from __future__ import annotations

import base64
from typing import Any

from telethon import TelegramClient
from telethon.tl import types

from foundation.errors import NotFound, TooLarge
from foundation.logs import get_logger
from foundation.models import MediaRef
from telegram_watch.convert import document_ref, photo_ref
from telegram_watch.errors import FileReferenceExpired
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

CHUNK = 128 * 1024


def file_location(locator: dict[str, Any]) -> Any:
    ref = base64.b64decode(locator.get("file_reference") or "")
    if locator.get("type") == "photo":
        return types.InputPhotoFileLocation(
            id=int(locator["id"]),
            access_hash=int(locator["access_hash"]),
            file_reference=ref,
            thumb_size=str(locator.get("thumb_size") or ""),
        )
    return types.InputDocumentFileLocation(
        id=int(locator["id"]), access_hash=int(locator["access_hash"]), file_reference=ref, thumb_size=""
    )


class MediaFetcher:
    def __init__(self, pool: AccountPool, *, max_bytes: int) -> None:
        self.pool = pool
        self.max_bytes = max_bytes

    def _channel(self, ref: MediaRef) -> str | None:
        cid = (ref.locator or {}).get("channel_id")
        return f"id{cid}" if cid is not None else None

    async def fetch(self, ref: MediaRef) -> bytes:
        """The media's bytes, at most ``max_bytes`` of them (else ``TooLarge``)."""
        if not ref.locator or "id" not in ref.locator:
            raise NotFound("this media reference has no MTProto locator")
        if ref.size is not None and ref.size > self.max_bytes:
            raise TooLarge(f"media is {ref.size} bytes, cap is {self.max_bytes}")
        try:
            return await self.pool.run(self._channel(ref), lambda c: self._download(c, ref.locator or {}, ref.size))
        except FileReferenceExpired:
            log.info("file reference expired, refetching message", msg_id=ref.locator.get("msg_id"))
            fresh = await self.pool.run(self._channel(ref), lambda c: self._refresh(c, ref))
            return await self.pool.run(self._channel(ref), lambda c: self._download(c, fresh, ref.size))

    async def _download(self, client: TelegramClient, locator: dict[str, Any], size: int | None) -> bytes:
        chunks: list[bytes] = []
        total = 0
        async for chunk in client.iter_download(
            file_location(locator), request_size=CHUNK, file_size=size, dc_id=locator.get("dc_id")
        ):
            total += len(chunk)
            if total > self.max_bytes:
                raise TooLarge(f"media passed the {self.max_bytes}-byte cap while downloading")
            chunks.append(bytes(chunk))
        return b"".join(chunks)

    async def _refresh(self, client: TelegramClient, ref: MediaRef) -> dict[str, Any]:
        """A fresh locator for the same file, from the message it was seen in."""
        loc = ref.locator or {}
        channel_id, msg_id = loc.get("channel_id"), loc.get("msg_id")
        if channel_id is None or msg_id is None:
            raise NotFound("cannot refresh a file reference without its message")
        peer = await client.get_input_entity(types.PeerChannel(int(channel_id)))
        msg = await client.get_messages(peer, ids=int(msg_id))
        media = getattr(msg, "media", None)
        fresh: MediaRef | None = None
        if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
            fresh = photo_ref(media.photo, channel_id=int(channel_id), msg_id=int(msg_id))
        elif isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
            fresh = document_ref(media.document, channel_id=int(channel_id), msg_id=int(msg_id))
        if fresh is None or fresh.locator is None or fresh.locator["id"] != loc["id"]:
            raise NotFound(f"message {msg_id} no longer holds this media")
        return fresh.locator
