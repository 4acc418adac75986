"""Store fixtures, imported by ``tests/conftest.py``: one embedded server per session, a fresh database per test.

Under pytest-xdist every worker has its own ``tmp_path_factory`` base directory, hence its own
data dir and its own server; nothing is shared between workers. Set ``TGWATCH_TEST_MONGODB_URI``
to run the same tests against a real MongoDB instead.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from storage.embedded import EmbeddedStore


@pytest.fixture(scope="session")
def embedded_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a server that lives for the whole test session (or worker)."""
    external = os.environ.get("TGWATCH_TEST_MONGODB_URI")
    if external:
        yield external
        return
    store = EmbeddedStore(tmp_path_factory.mktemp("embedded-store"))
    uri = store.acquire()
    try:
        yield uri
    finally:
        store.release()


@pytest.fixture
async def db(embedded_uri: str, request: pytest.FixtureRequest) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database no other test uses, dropped afterwards; its client is closed with it."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:30]
    name = f"t_{stem}_{uuid.uuid4().hex[:10]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        embedded_uri, tz_aware=True, serverSelectionTimeoutMS=10_000, appname="tgwatch-tests"
    )
    try:
        yield client[name]
    finally:
        try:
            await client.drop_database(name)
        finally:
            await client.close()
