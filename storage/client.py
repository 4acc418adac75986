"""The one way to a connected database: a production URI, or the embedded nx-27017 server.

PyMongo's native async API (``AsyncMongoClient``) is used for both; Motor is deprecated in its
favour. PyMongo errors are translated into ``StoreError`` here and in the repositories, so the core
never sees a driver exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from pymongo import AsyncMongoClient, InsertOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from config import Settings, mask_uri
from foundation.errors import StoreError
from storage import schema

if TYPE_CHECKING:
    from storage.embedded import EmbeddedStore

Doc = dict[str, Any]
log = structlog.get_logger(__name__)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Map driver failures to ``StoreError`` at the storage edge (httpx's map_exceptions pattern)."""
    try:
        yield
    except PyMongoError as exc:
        raise StoreError(f"{action}: {type(exc).__name__}: {exc}") from exc


@dataclass
class Store:
    """A connected database plus where it came from (for ``db status``)."""

    client: AsyncMongoClient[Doc]
    db: AsyncDatabase[Doc]
    uri: str
    kind: str  # "embedded" or "mongodb"

    def __getitem__(self, name: str) -> AsyncCollection[Doc]:
        if name not in schema.BY_NAME:
            raise KeyError(f"collection {name!r} is not declared in storage/schema.py")
        return self.db[name]

    @property
    def masked_uri(self) -> str:
        return mask_uri(self.uri)

    async def ping(self) -> None:
        with translate_errors("ping"):
            await self.client.admin.command("ping")


DUPLICATE_KEY = 11000


async def insert_new(coll: AsyncCollection[Doc], docs: Sequence[Doc], action: str) -> int:
    """Insert documents keyed by natural ``_id``; an id already present means the write happened
    before (a replay), so it is skipped rather than failing the batch. Returns how many were new."""
    if not docs:
        return 0
    with translate_errors(action):
        try:
            result = await coll.bulk_write([InsertOne(d) for d in docs], ordered=False)
            return int(result.inserted_count)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return int(exc.details.get("nInserted", 0))


def _client(uri: str, timeout_ms: int = 10_000) -> AsyncMongoClient[Doc]:
    """A client; a malformed URI is a ``StoreError`` whose text never repeats the URI's password."""
    try:
        return AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            retryWrites=True,
            retryReads=True,
            appname="tgwatch",
        )
    except (PyMongoError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        password = uri.partition("://")[2].rpartition("@")[0].partition(":")[2]
        if password:
            reason = reason.replace(password, "****")
        raise StoreError(f"mongodb_uri is not a valid MongoDB URI: {reason}") from None


#: how often a long-running process checks that its embedded server is still there
KEEP_ALIVE_SECONDS = 1.0


async def _keep_embedded_alive(embedded: EmbeddedStore) -> None:
    """Restart the embedded server whenever it dies (``kill -9``, a crash) while we run."""
    while True:
        await asyncio.sleep(KEEP_ALIVE_SECONDS)
        try:
            await asyncio.to_thread(embedded.ensure_running)
        except StoreError as exc:
            log.error("embedded store could not be restarted; trying again", error=str(exc)[:500])


@asynccontextmanager
async def open_store(
    settings: Settings, *, apply_schema: bool = True, keep_alive: bool = False
) -> AsyncIterator[Store]:
    """Connect (starting or reusing the embedded server when no URI is set) and close on exit.

    ``keep_alive`` is for long-running processes: an embedded server that dies is started again
    on the same ``data_dir`` (and socket), and the client reconnects to it. Short commands leave
    it off: they fail with a ``StoreError`` instead.
    """
    embedded = None
    watchdog: asyncio.Task[None] | None = None
    if settings.mongodb_uri is not None:
        uri, kind = settings.mongodb_uri.get_secret_value(), "mongodb"
    else:
        from storage.embedded import EmbeddedStore

        embedded = EmbeddedStore(settings.data_dir)
        uri = await asyncio.to_thread(embedded.acquire)
        kind = "embedded"
    try:
        client = _client(uri)
    except StoreError:
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        raise
    if embedded is not None and keep_alive:
        watchdog = asyncio.create_task(_keep_embedded_alive(embedded), name="embedded-store-keep-alive")
    try:
        store = Store(client=client, db=client[settings.database], uri=uri, kind=kind)
        await store.ping()
        if apply_schema:
            with translate_errors("apply schema"):
                await schema.apply(store.db)
        yield store
    finally:
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        await client.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
