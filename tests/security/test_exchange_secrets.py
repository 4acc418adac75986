"""Exchange credentials never come back in a sync's error, its run record or the list document.

ThreatExchange puts its access token in the query string, so the HTTP error the library raises
names the token in its URL; the sync must redact it before the message is stored or printed."""

from __future__ import annotations

from pathlib import Path

import config
from crawler.hashing.exchanges import ThreatExchangeExchange
from crawler.media.exchange_sync import sync_exchange
from storage.client import Store
from tests.exchange_servers import ThreatExchange, serving
from tests.media_host import LOOPBACK_HTTP

WRONG_TOKEN = "999|planted-wrong-token-value"


async def test_a_rejected_token_is_redacted_everywhere(store: Store, tmp_path: Path) -> None:
    server = ThreatExchange()
    server.put(7, 1, "HASH_PDQ", "a" * 64, ts=10)
    async with serving(server.app()) as url:
        cfg = {"threatexchange": {"access_token": WRONG_TOKEN, "privacy_groups": [7], "base_url": url}}
        settings = config.load(data_dir=tmp_path / "d", http=LOOPBACK_HTTP, exchanges=cfg)
        result = await sync_exchange(store, settings, ThreatExchangeExchange(settings, 7))
    assert result.status == "error" and result.error is not None and "400" in result.error
    assert "***" in result.error and WRONG_TOKEN not in result.error
    run = await store["runs"].find_one({"_id": result.run_id})
    listed = await store["hash_lists"].find_one({"_id": "te-7"})
    assert WRONG_TOKEN not in repr(run) and WRONG_TOKEN not in repr(listed)
    assert WRONG_TOKEN not in repr(settings.exchanges), "SecretStr in every repr"
