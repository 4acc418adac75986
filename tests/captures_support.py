"""What the capture tests share: fast Scrapy settings for the local sites and a ledger whose heads
are signed with a key made for the test (heads only on demand, so the tests choose when)."""

from __future__ import annotations

from pathlib import Path

from crawler.evidence.heads import HeadSigner
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import generate_key, load_private_key
from storage.client import Store

FAST = {"AUTOTHROTTLE_ENABLED": False, "TGWATCH_RETRY_BASE_DELAY": 0.05, "TGWATCH_RETRY_MAX_DELAY": 0.2}


def signed_ledger(store: Store, tmp_path: Path) -> Ledger:
    keys = generate_key(tmp_path / "keys")
    signer = HeadSigner(load_private_key(keys.private_path), every_entries=10_000, every_seconds=3600)
    return Ledger(store, signer=signer)
