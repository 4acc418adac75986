"""The failed-authentication limiter slows guessing without locking valid tokens out, and counts
clients behind a trusted reverse proxy by the address the proxy names (and nobody else's claim)."""

from __future__ import annotations

from pathlib import Path

from crawler.api.app import FailureLimiter
from crawler.tokens import Role
from storage.client import Store
from tests.security.support import bearer, serve, settings, sign_in, token

PROXY = {"api": {"trusted_proxies": ["127.0.0.1/32"]}}


async def test_a_valid_token_passes_while_its_address_is_blocked(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    async with serve(store, cfg, limiter=FailureLimiter(limit=3, window=600)) as client:
        statuses = [(await client.get("/api/v1/audit", headers=bearer(f"tgw_guess{i}"))).status for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        good = await token(store, cfg, Role.AUDITOR)
        assert (await client.get("/api/v1/audit", headers=bearer(good))).status == 200
        assert (await sign_in(client, good)).status == 303, "the console sign-in too"
        assert (await client.get("/api/v1/audit", headers=bearer("tgw_guess9"))).status == 429


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(store: Store, tmp_path: Path) -> None:
    """Without a configured proxy, a client cannot dodge the limit by inventing X-Forwarded-For."""
    async with serve(store, settings(tmp_path), limiter=FailureLimiter(limit=3, window=600)) as client:
        statuses = [
            (
                await client.get("/api/v1/audit", headers={**bearer(f"tgw_g{i}"), "X-Forwarded-For": f"198.51.100.{i}"})
            ).status
            for i in range(5)
        ]
        assert statuses[3:] == [429, 429]


async def test_clients_behind_a_trusted_proxy_are_counted_apart(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path, **PROXY)
    async with serve(store, cfg, limiter=FailureLimiter(limit=3, window=600)) as client:
        guesser = {"X-Forwarded-For": "198.51.100.7"}
        statuses = [
            (await client.get("/api/v1/audit", headers={**bearer(f"tgw_g{i}"), **guesser})).status for i in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        # a colleague behind the same proxy is not slowed by the guesser's failures
        other = {"X-Forwarded-For": "203.0.113.9"}
        assert (await client.get("/api/v1/audit", headers={**bearer("tgw_typo"), **other})).status == 401
        # the client's own claim in front of the proxy's entry does not move it to a fresh address
        spoof = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
        assert (await client.get("/api/v1/audit", headers={**bearer("tgw_g9"), **spoof})).status == 429
