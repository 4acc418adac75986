"""Shared fixtures: the embedded store (one server per test session/worker), a fresh database per test.

Set ``TGWATCH_TEST_MONGODB_URI`` to run the same tests against a real MongoDB replica set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from crawler.ingest import Ingest
from storage import schema
from storage.client import Store
from tests.fixtures_store import db, embedded_uri  # noqa: F401  (fixtures re-exported for every test)
from tests.media_host import media_server  # noqa: F401  (a local media host fixture)
from tests.secret_scan import pytest_runtest_makereport  # noqa: F401  (every test's output scanned for secrets)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"real-page corpus not found at {CORPUS} (it lives in ../shared/corpus beside the repo)")
    return CORPUS


@pytest.fixture
async def store(db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[Store]:  # noqa: F811
    """A ``Store`` over the per-test database, schema applied."""
    await schema.apply(db)
    yield Store(client=db.client, db=db, uri="(test)", kind="embedded")


@pytest.fixture
async def ingest(store: Store) -> AsyncIterator[Ingest]:
    yield Ingest(store, store_retry_seconds=2.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "corpus" in item.keywords and not CORPUS.is_dir():
            item.add_marker(pytest.mark.skip(reason=f"corpus absent: {CORPUS}"))


# Every settings object of a test run (in-process and CLI subprocesses alike) keys token digests
# with the same test key, so a helper that creates a token needs no data_dir: tests of the key file
# itself remove this variable (tests/security/test_token_keys.py).
TEST_TOKEN_KEY = "dGd3YXRjaC10ZXN0LW9ubHktdG9rZW4ta2V5LTMyYiE"
os.environ.setdefault("TGWATCH_API__TOKEN_KEY", TEST_TOKEN_KEY)
# Reading text in images (Tesseract, seconds per picture) is on by default; only the OCR tests
# (tests/test_captures_ocr.py) need it, the hundreds of other media tests would just wait for it.
os.environ.setdefault("TGWATCH_MEDIA__OCR", "false")

# --- process hygiene (security #16): the run fails when a process it started outlives it --------
from tests.process_hygiene import (  # noqa: E402
    pytest_configure_process_hygiene,  # noqa: F401
    pytest_sessionfinish_process_hygiene,  # noqa: F401
    pytest_sessionstart_process_hygiene,  # noqa: F401
)
