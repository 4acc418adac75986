"""Account secrets at rest, the accounts/authorizations repositories, and the no-key refusal."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from config import Settings
from foundation.errors import ConfigError
from storage.client import Store
from storage.repos.accounts import AccountRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope, invite_scope
from telegram_watch.accounts import Accounts
from telegram_watch.crypto import SecretBox, generate_key

PHONE = "+15550001234"
SESSION = "1" + "A" * 340 + "=="


def box() -> SecretBox:
    return SecretBox.from_key_text(generate_key())


def test_no_key_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="secrets_key is not set"):
        SecretBox.from_settings(Settings())
    with pytest.raises(ConfigError, match="32 bytes"):
        SecretBox.from_settings(Settings(telegram={"secrets_key": SecretStr("c2hvcnQ")}))


def test_ciphertext_is_bound_to_its_account_and_key() -> None:
    key = generate_key()
    sealed = SecretBox.from_key_text(key).encrypt(SESSION, context="session:alice")
    assert SESSION not in sealed and SecretBox.from_key_text(key).decrypt(sealed, context="session:alice") == SESSION
    with pytest.raises(ConfigError):
        SecretBox.from_key_text(key).decrypt(sealed, context="session:bob")
    with pytest.raises(ConfigError, match="wrong"):
        box().decrypt(sealed, context="session:alice")


async def test_accounts_store_only_ciphertext(store: Store) -> None:
    accounts = Accounts(AccountRepo(store), box())
    await accounts.add("alice", session=SESSION, phone=PHONE, user_id=42, proxy="socks5://u:pw@10.0.0.1:1080")
    raw = await store["accounts"].find_one({"_id": "alice"})
    assert raw is not None
    blob = repr(raw)
    assert PHONE not in blob and SESSION not in blob and "pw@" not in blob
    account = await accounts.get("alice")
    assert (account.session, account.phone, account.proxy) == (SESSION, PHONE, "socks5://u:pw@10.0.0.1:1080")
    assert SESSION not in repr(account) and PHONE not in repr(account)
    [row] = await accounts.summaries()
    assert row["name"] == "alice" and row["state"] == "active" and PHONE not in repr(row)
    with pytest.raises(ConfigError, match="already exists"):
        await accounts.add("alice", session=SESSION, phone=None, user_id=1)


async def test_parking_and_states_are_persisted(store: Store) -> None:
    repo = AccountRepo(store)
    accounts = Accounts(repo, box())
    await accounts.add("a", session=SESSION, phone=None, user_id=1)
    await accounts.add("b", session=SESSION, phone=None, user_id=2)
    until = time.time() + 30
    await repo.park("a", until)
    await repo.set_state("b", "banned", "USER_DEACTIVATED_BAN")
    [active] = await accounts.active()
    assert active.name == "a" and active.flood_until == pytest.approx(until) and active.flood_waits == 1
    rows = {r["name"]: r for r in await accounts.summaries()}
    assert rows["a"]["flood_wait_left"] > 0 and rows["b"]["state"] == "banned"
    assert await repo.remove("b") and not await repo.remove("b")


async def test_authorization_covers_only_scope_accounts_and_time(store: Store) -> None:
    repo = AuthorizationRepo(store)
    auth_id = await repo.add(
        case_id="CASE-1",
        warrant_ref="W-77",
        approver="supervisor",
        scope=[invite_scope("abcDEF123"), channel_scope("id5")],
        accounts=["alice"],
        valid_until=time.time() + 3600,
    )
    assert (await repo.covering([invite_scope("abcDEF123")], "alice")) is not None
    assert await repo.covering([invite_scope("abcDEF123")], "bob") is None
    assert await repo.covering([invite_scope("other")], "alice") is None
    assert await repo.covering([invite_scope("abcDEF123")], "alice", now=time.time() + 7200) is None
    assert await repo.revoke(auth_id)
    assert await repo.covering([invite_scope("abcDEF123")], "alice") is None
