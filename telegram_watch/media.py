"""Media download over MTProto: streamed to disk, capped, resumed, and repaired when a reference expires.

``MediaFetcher.fetch(ref)`` is the seam the hashing stage calls for ``source == mtproto`` media: it
rebuilds the file location from ``MediaRef.locator`` (see ``convert``) and streams it with
``iter_download`` into ``<partial_dir>/<kind>-<id>-<size>.part`` (sealed chunk by chunk:
``partial.SealedPart``), stopping as soon as the bytes pass
``limits.max_media_bytes`` (``TooLarge``), so a huge file never sits in memory while it downloads.

Large files are not fetched from zero twice: after a flood wait (the pool hands the download to
another account), a dropped connection or a killed process, the next attempt starts at the last
whole chunk already on disk (``upload.getFile`` offset). File references expire (hours to days); on
``FILE_REFERENCE_EXPIRED`` the message (or story) is fetched again for a fresh reference and the
download goes on from where it stopped. A finished file must have the size Telegram announced and,
when its digest is already known, the same SHA-256; otherwise it is thrown away, never hashed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.errors import NotFound, SourceError, TooLarge
from foundation.logs import get_logger
from foundation.models import MediaRef
from telegram_watch.convert import document_ref, photo_ref
from telegram_watch.errors import FileReferenceExpired, TelegramDisconnected
from telegram_watch.partial import SealedPart
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

CHUNK = 128 * 1024
#: a partial download untouched this long is given up (a media that failed for good, a retired
#: account's work): its sealed file and lock go, so failures cannot fill the disk over months
PART_MAX_AGE = 7 * 86_400.0
_SAFE = re.compile(r"[^A-Za-z0-9]")


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
    def __init__(
        self,
        pool: AccountPool,
        *,
        max_bytes: int,
        partial_dir: Path | None = None,
        key: bytes | None = None,
        attempts: int = 5,
    ) -> None:
        """``key`` seals partial files (AES-256-GCM); a process without one cannot resume another's."""
        self.pool = pool
        self.key = key if key is not None else os.urandom(32)
        self.max_bytes = max_bytes
        self._partial_dir = partial_dir
        self.attempts = attempts
        self._swept = False
        #: where each download attempt started (bytes already on disk): for logs and tests
        self.resumed_from: list[int] = []

    @property
    def partial_dir(self) -> Path:
        if self._partial_dir is None:
            self._partial_dir = Path(tempfile.mkdtemp(prefix="tgwatch-downloads-"))
        if not self._swept:
            self._partial_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._partial_dir.chmod(0o700)  # partial media are nobody else's business, even sealed
            self._swept = True
            sweep_stale_parts(self._partial_dir, max_age=PART_MAX_AGE)
        return self._partial_dir

    def _channel(self, ref: MediaRef) -> str | None:
        cid = (ref.locator or {}).get("channel_id")
        return f"id{cid}" if cid is not None else None

    def part_path(self, locator: dict[str, Any]) -> Path:
        """The partial file of one file location (its id survives reference refreshes)."""
        kind = _SAFE.sub("", str(locator.get("type") or "document"))
        thumb = _SAFE.sub("", str(locator.get("thumb_size") or "")) or "full"
        return self.partial_dir / f"{kind}-{int(locator['id'])}-{thumb}.part"

    async def fetch(self, ref: MediaRef) -> bytes:
        """The media's bytes, at most ``max_bytes`` of them (else ``TooLarge``)."""
        if not ref.locator or "id" not in ref.locator:
            raise NotFound("this media reference has no MTProto locator")
        if ref.size is not None and ref.size > self.max_bytes:
            raise TooLarge(f"media is {ref.size} bytes, cap is {self.max_bytes}")
        part = self.part_path(ref.locator)
        async with _exclusive(part):
            await self._download_resuming(ref, part)
            return _verified(SealedPart(part, self.key, CHUNK), ref)

    async def _download_resuming(self, ref: MediaRef, part: Path) -> None:
        locator: dict[str, Any] = dict(ref.locator or {})
        channel = self._channel(ref)
        refreshed = False
        for attempt in range(1, self.attempts + 1):
            try:
                await self.pool.run(
                    channel, functools.partial(self._download, locator=locator, size=ref.size, part=part)
                )
                return
            except FileReferenceExpired:
                if refreshed:
                    raise
                log.info("file reference expired, refetching", msg_id=locator.get("msg_id"), on_disk=_size(part))
                locator = await self.pool.run(channel, lambda c: self._refresh(c, ref))
                refreshed = True
            except TelegramDisconnected as exc:
                if attempt == self.attempts:
                    raise
                log.warning("download interrupted: resuming", on_disk=_size(part), attempt=attempt, error=str(exc))
        raise SourceError(f"download gave up after {self.attempts} attempts")

    async def _download(self, client: TelegramClient, locator: dict[str, Any], size: int | None, part: Path) -> None:
        """Append the rest of the file to ``part``, from its last whole chunk."""
        sealed = SealedPart(part, self.key, CHUNK)
        have = sealed.have()
        if have % CHUNK or (size is not None and have >= size):
            return  # only the last chunk is short: the file is complete
        index = have // CHUNK
        self.resumed_from.append(have)
        if have:
            log.info("resuming download", offset=have, size=size)
        limit = None if size is None else -(-(size - have) // CHUNK)
        pending = bytearray()
        with sealed.open_at(index) as out:
            async for chunk in client.iter_download(
                file_location(locator), offset=have, limit=limit, request_size=CHUNK, dc_id=locator.get("dc_id")
            ):
                pending += chunk
                if index * CHUNK + len(pending) > self.max_bytes:
                    out.truncate(0)
                    sealed.discard()  # nothing of an over-cap file is kept, not even an empty part
                    raise TooLarge(f"media passed the {self.max_bytes}-byte cap while downloading")
                while len(pending) >= CHUNK:
                    out.write(sealed.seal(index, bytes(pending[:CHUNK])))
                    out.flush()  # what is on disk is what the next attempt resumes from
                    del pending[:CHUNK]
                    index += 1
            if pending:
                out.write(sealed.seal(index, bytes(pending)))

    async def _refresh(self, client: TelegramClient, ref: MediaRef) -> dict[str, Any]:
        """A fresh locator for the same file, from the message (or story) it was seen in."""
        loc = ref.locator or {}
        channel_id, msg_id, story_id = loc.get("channel_id"), loc.get("msg_id"), loc.get("story_id")
        if channel_id is None or (msg_id is None and story_id is None):
            raise NotFound("cannot refresh a file reference without its message")
        peer = await client.get_input_entity(types.PeerChannel(int(channel_id)))
        if story_id is not None:
            found = await client(functions.stories.GetStoriesByIDRequest(peer=peer, id=[int(story_id)]))
            media = next((getattr(s, "media", None) for s in found.stories if s.id == int(story_id)), None)
        else:
            msg = await client.get_messages(peer, ids=int(str(msg_id)))
            media = getattr(msg, "media", None)
        fresh: MediaRef | None = None
        if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
            fresh = photo_ref(media.photo, channel_id=int(channel_id), msg_id=int(msg_id or 0))
        elif isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
            fresh = document_ref(media.document, channel_id=int(channel_id), msg_id=int(msg_id or 0))
        if fresh is None or fresh.locator is None or fresh.locator["id"] != loc["id"]:
            raise NotFound(f"{'story' if story_id is not None else 'message'} no longer holds this media")
        return {**loc, **fresh.locator, "msg_id": msg_id, "story_id": story_id}


def sweep_stale_parts(directory: Path, *, max_age: float, now: float | None = None) -> list[Path]:
    """Remove ``*.part`` and ``*.lock`` files not modified for ``max_age`` seconds; returns them.

    A part being written is touched at every chunk, so only abandoned downloads are old; a lock held
    by a live download is skipped (``flock``), never pulled from under it."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    for path in sorted([*directory.glob("*.part"), *directory.glob("*.lock")]):
        try:
            if path.is_symlink() or not path.is_file() or now - path.stat().st_mtime < max_age:
                continue
            if path.suffix == ".lock":
                with path.open("a") as fh:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    path.unlink()
            else:
                path.unlink()
            removed.append(path)
        except OSError as exc:
            log.warning("stale partial download not removed", file=path.name, error=str(exc))
    if removed:
        log.info("stale partial downloads removed", count=len(removed))
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _verified(sealed: SealedPart, ref: MediaRef) -> bytes:
    """The finished file's bytes if they have the announced size and digest; the part file goes."""
    data = sealed.read_all()
    sealed.discard()
    if data is None:
        raise SourceError("the partial download does not authenticate (tampered, or another key)")
    if ref.size is not None and len(data) != ref.size:
        raise SourceError(f"download ended at {len(data)} bytes, Telegram announced {ref.size}")
    digest = hashlib.sha256(data).hexdigest()
    if ref.sha256 is not None and digest != ref.sha256:
        raise SourceError(f"downloaded bytes have SHA-256 {digest}, expected {ref.sha256}")
    return data


@contextlib.asynccontextmanager
async def _exclusive(part: Path) -> AsyncIterator[None]:
    """One writer per partial file across processes (two workers may meet on the same media)."""
    with part.with_suffix(".lock").open("a") as lock:
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
