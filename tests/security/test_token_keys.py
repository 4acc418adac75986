"""Stored token digests are keyed with a server secret kept in a 0600 file outside the database."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import pytest

from crawler.tokens import SECRET_NAME, Role, TokenRepo, server_secret
from foundation import keys
from storage.client import Store
from tests.security.support import bearer, serve, settings


@pytest.fixture
def key_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the key file: no configured key (the suite sets one for convenience)."""
    monkeypatch.delenv("TGWATCH_API__TOKEN_KEY", raising=False)


async def test_digest_is_keyed_by_a_0600_key_file(store: Store, tmp_path: Path, key_file_only: None) -> None:
    cfg = settings(tmp_path)
    assert cfg.api.token_key is None
    token, doc = await TokenRepo(store, server_secret(cfg)).create("ana", Role.INVESTIGATOR)
    path = tmp_path / "keys" / f"{SECRET_NAME}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = keys.decode_key(path.read_text().strip(), "key")
    stored = await store["tokens"].find_one({"token_id": doc["token_id"]})
    assert stored is not None
    assert stored["_id"] == hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    assert stored["_id"] != hashlib.sha256(token.encode()).hexdigest()


async def test_a_row_written_without_the_key_authenticates_nobody(
    store: Store, tmp_path: Path, key_file_only: None
) -> None:
    """Someone who can write the tokens collection but not read the key file cannot mint a token,
    and rows of the old SHA-256 scheme no longer sign in."""
    cfg = settings(tmp_path)
    forged = "tgw_" + secrets.token_urlsafe(32)
    for scheme in (None, "hmac-sha256"):
        await store["tokens"].insert_one(
            {
                "_id": hashlib.sha256(f"{forged}{scheme}".encode()).hexdigest()
                if scheme
                else hashlib.sha256(forged.encode()).hexdigest(),
                "token_id": secrets.token_hex(6),
                "name": f"forged-{scheme}",
                "role": "admin",
                "created_at": None,
                "revoked_at": None,
                **({"scheme": scheme} if scheme else {}),
            }
        )
    async with serve(store, cfg) as client:
        resp = await client.get("/api/v1/audit", headers=bearer(forged))
        assert resp.status == 401
        real, _ = await TokenRepo(store, server_secret(cfg)).create("real", Role.ADMIN)
        assert (await client.get("/api/v1/audit", headers=bearer(real))).status == 200


async def test_a_looser_key_file_is_tightened(tmp_path: Path, key_file_only: None) -> None:
    cfg = settings(tmp_path)
    first = server_secret(cfg)
    path = tmp_path / "keys" / f"{SECRET_NAME}.key"
    os.chmod(path, 0o644)
    assert server_secret(cfg) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_tokens_list_marks_legacy_rows(store: Store, tmp_path: Path, key_file_only: None) -> None:
    """After an upgrade the old rows still show, marked legacy, so operators know to re-create them."""
    old = "tgw_" + secrets.token_urlsafe(32)
    await store["tokens"].insert_one(
        {
            "_id": hashlib.sha256(old.encode()).hexdigest(),
            "token_id": "0123456789ab",
            "name": "from-before",
            "role": "monitor",
            "created_at": None,
            "revoked_at": None,
        }
    )
    repo = TokenRepo(store, server_secret(settings(tmp_path)))
    await repo.create("new-one", Role.MONITOR)
    assert {d["name"]: d["legacy"] for d in await repo.list()} == {"from-before": True, "new-one": False}
    assert await repo.authenticate(old) is None
