"""Shared set-up for the Telethon tests (no tests here): a fake world, accounts and a pool over it."""

from __future__ import annotations

from telegram_watch.accounts import Account
from telegram_watch.client import fake_client_factory
from telegram_watch.fake.model import FakeUser
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool


def pool_over(world: FakeTelegram, *users: FakeUser, pacing: float = 0.0, max_wait: float = 3600.0) -> AccountPool:
    """A pool of real ``TelegramClient``s logged into ``world`` as ``users`` (named by username)."""
    accounts = [Account(name=str(u.username), session=world.session_string(u)) for u in users]
    return AccountPool(accounts, fake_client_factory(world), pacing=pacing, max_wait=max_wait)
