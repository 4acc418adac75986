"""A session lease that expired while its process stalled (a heartbeat that did not run) is not used
again unrenewed: once another worker has taken it, the stale holder sends nothing more on that session
(two connections on one auth key get ``AUTH_KEY_DUPLICATED`` and can cost the account)."""

from __future__ import annotations

from typing import Any

import pytest

from foundation.errors import RateLimited
from storage.client import Store
from storage.repos.accounts import AccountRepo
from telegram_watch.accounts import Accounts
from telegram_watch.client import fake_client_factory
from telegram_watch.crypto import SecretBox, generate_key
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool


async def test_a_stale_lease_holder_sends_nothing_after_another_took_the_lease(store: Store) -> None:
    world = FakeTelegram(seed="stale-lease")
    accounts = Accounts(AccountRepo(store), SecretBox.from_key_text(generate_key()))
    user = world.add_account("solo")
    await accounts.add("solo", session=world.session_string(user), phone=None, user_id=user.id)
    world.add_channel("News", username="examplenews")
    factory = fake_client_factory(world)
    now = [1000.0]
    sent: list[str] = []

    active = await accounts.active()

    def pool(holder: str) -> AccountPool:
        return AccountPool(
            active, factory, store=accounts, pacing=0, max_wait=0, clock=lambda: now[0], lease_seconds=10, holder=holder
        )

    def op(who: str) -> Any:
        async def run(client: Any) -> Any:
            sent.append(who)
            return await client.get_input_entity("examplenews")

        return run

    first, second = pool("worker-1"), pool("worker-2")
    try:
        await first.run(None, op("first"))
        now[0] = 1030.0  # the first worker stalled past its lease; its heartbeat never ran
        await second.run(None, op("second"))
        assert (await accounts.repo.get("solo") or {})["lease_holder"] == "worker-2"
        with pytest.raises(RateLimited):
            await first.run(None, op("first again"))
        assert sent == ["first", "second"]
        assert first.members[0].client is None and not first.members[0].leased
    finally:
        await first.close()
        await second.close()
    assert (await accounts.repo.get("solo") or {})["lease_holder"] is None
