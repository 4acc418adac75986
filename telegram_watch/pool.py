"""The account pool: who makes the next request, at what pace, and what happens on a flood wait.

Work is handed to the pool as a small operation (``op(client)`` doing about one request, e.g. one
history page) for a channel. The pool picks the least recently used account that is active, not
flood-parked and not known to be locked out of that channel, paces it (``request_pacing_seconds``
between two requests of the same account; other accounts are not held up), and runs the operation.

* ``FloodWait(N)`` parks that account until now+N (in memory and in ``accounts``), is logged with
  the account *name* and counted, and the same operation is handed to another account at once. Only
  when every candidate is parked does this one unit of work sleep (``asyncio.sleep``: the process
  and other channels keep going) until the first account comes back, or give up with
  ``RateLimited`` when that is further away than ``max_wait``.
* Deauthorized/banned accounts are retired (state stored) and the work moves on.
* ``ChannelPrivate``/``ChannelBanned`` on one account marks that account as unable to read that
  channel and tries the others; only when none can read it does the error reach the caller.
* Frozen accounts (``FROZEN_*``) are parked as ``frozen``: kept, shown by ``accounts check``, unused.
* With a store, a session is only ever used under its **lease** (``AccountStore.take_lease``): taken
  before the first connection, renewed by a heartbeat task every third of ``lease_seconds``, given
  back on ``close``. An account another process holds is skipped like a flood-parked one and retried
  when its lease could have ended, so two workers never share a session (``AUTH_KEY_DUPLICATED``).
  A lease that could not be renewed (another process took it after a stall) drops the client at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from telethon import TelegramClient

from foundation import metrics
from foundation.errors import ConfigError, RateLimited, TgwatchError
from foundation.logs import get_logger
from telegram_watch.accounts import Account, Accounts, lease_holder
from telegram_watch.client import ClientFactory
from telegram_watch.errors import AccountUnusable, TelegramDenied, telethon_errors

log = get_logger(__name__)

T = TypeVar("T")
Operation = Callable[[TelegramClient], Awaitable[T]]
Clock = Callable[[], float]


@dataclass(eq=False)
class Member:
    account: Account
    flood_until: float = 0.0
    last_request: float = 0.0
    dead: bool = False
    locked_out: set[str] = field(default_factory=set)
    client: TelegramClient | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    leased: bool = False
    leased_elsewhere_until: float = 0.0
    #: when this pool's lease ends unless renewed (its clock): past it, the session is not used unrenewed
    lease_until: float = 0.0

    @property
    def name(self) -> str:
        return self.account.name


class NoAccount(ConfigError):
    """No usable account at all (none added, or all deauthorized/banned/frozen)."""


class AccountLeased(RateLimited):
    """Another process holds this account's session lease; try again after ``retry_after``."""

    kind = "account_leased"


class AccountPool:
    def __init__(
        self,
        accounts: list[Account],
        factory: ClientFactory,
        *,
        store: Accounts | None = None,
        pacing: float = 0.5,
        max_wait: float = 3600.0,
        clock: Clock = time.time,
        lease_seconds: float = 60.0,
        holder: str | None = None,
    ) -> None:
        self.members = [Member(a, flood_until=a.flood_until) for a in accounts]
        self._factory = factory
        self._store = store
        self._pacing = pacing
        self._max_wait = max_wait
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.holder = holder or lease_holder()
        self._heartbeat: asyncio.Task[None] | None = None
        self.stats: Counter[str] = Counter()

    @classmethod
    async def load(
        cls,
        store: Accounts,
        factory: ClientFactory,
        *,
        pacing: float,
        max_wait: float = 3600.0,
        lease_seconds: float = 60.0,
        holder: str | None = None,
    ) -> AccountPool:
        return cls(
            await store.active(),
            factory,
            store=store,
            pacing=pacing,
            max_wait=max_wait,
            lease_seconds=lease_seconds,
            holder=holder,
        )

    # --- leases ---------------------------------------------------------------------------------

    async def _ensure_lease(self, member: Member) -> None:
        """Hold ``member``'s session lease before its client connects (no store: nothing to share)."""
        if self._store is None:
            return
        now = self._clock()
        if member.leased and now < member.lease_until:
            return
        # not held, or held but expired (a stalled process, a heartbeat that did not run): another
        # process may hold it now, so the session is used again only once the lease is taken afresh
        doc = await self._store.repo.take_lease(member.name, self.holder, seconds=self.lease_seconds, now=now)
        if doc is None:
            if member.leased:
                log.error("account lease expired and taken elsewhere: disconnecting", account=member.name)
                member.leased = False
                await self._drop_client(member)
            current = await self._store.repo.get(member.name) or {}
            until = float(current.get("lease_until") or 0.0)
            retry = min(max(until - now, 0.0), self.lease_seconds / 3) or 1.0
            member.leased_elsewhere_until = now + retry
            self.stats["leased_elsewhere"] += 1
            log.info("account leased by another process", account=member.name, retry_in=round(retry, 1))
            raise AccountLeased(f"account {member.name} is in use by another process", retry_after=retry)
        member.leased = True
        member.lease_until = now + self.lease_seconds
        member.leased_elsewhere_until = 0.0
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._renew_leases(), name="account-lease-heartbeat")

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        """Extend every lease this pool holds; a lease lost meanwhile drops that account's client."""
        if self._store is None:
            return
        for member in self.members:
            if not member.leased:
                continue
            now = self._clock()
            try:
                doc = await self._store.repo.take_lease(member.name, self.holder, seconds=self.lease_seconds, now=now)
            except TgwatchError as exc:  # a store outage: keep the lease, it has a third left
                log.warning("lease renewal failed", account=member.name, error=str(exc))
                continue
            if doc is None:
                log.error("account lease lost: disconnecting", account=member.name)
                member.leased = False
                await self._drop_client(member)
            else:
                member.lease_until = now + self.lease_seconds

    # --- clients --------------------------------------------------------------------------------

    async def client(self, member: Member) -> TelegramClient:
        """The member's connected client (connected on first use, under its lease)."""
        await self._ensure_lease(member)
        if member.client is None:
            member.client = self._factory(member.account.session, member.account.proxy)
        if not member.client.is_connected():
            with telethon_errors():
                await member.client.connect()
        return member.client

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for member in self.members:
            if member.client is not None:
                await member.client.disconnect()
                member.client = None
            if member.leased and self._store is not None:
                member.leased = False
                with contextlib.suppress(TgwatchError):
                    await self._store.repo.release_lease(member.name, self.holder)

    async def _drop_client(self, member: Member) -> None:
        if member.client is not None:
            with contextlib.suppress(OSError, TgwatchError):
                await member.client.disconnect()
            member.client = None

    # --- choosing -------------------------------------------------------------------------------

    def candidates(self, channel: str | None, only: set[str] | None = None) -> list[Member]:
        return [
            m
            for m in self.members
            if not m.dead and (channel is None or channel not in m.locked_out) and (only is None or m.name in only)
        ]

    def _pick(self, channel: str | None, only: set[str] | None) -> Member | None:
        now = self._clock()
        ready = [m for m in self.candidates(channel, only) if m.flood_until <= now and m.leased_elsewhere_until <= now]
        return min(ready, key=lambda m: m.last_request) if ready else None

    # --- running --------------------------------------------------------------------------------

    async def run(self, channel: str | None, op: Operation[T], *, only: set[str] | None = None) -> T:
        """Run ``op`` with the first suitable account, handing it over on flood waits and lock-outs.

        ``only`` restricts the work to named accounts (a join must be made by an authorized one).
        """
        denied: TelegramDenied | None = None
        while True:
            member = self._pick(channel, only)
            if member is None:
                waiting = self.candidates(channel, only)
                if not waiting:
                    if denied is not None:
                        raise denied
                    raise NoAccount("no usable Telegram account (add one with `tgwatch accounts add`)")
                wait = min(max(m.flood_until, m.leased_elsewhere_until) for m in waiting) - self._clock()
                if wait > self._max_wait:
                    raise RateLimited("every account is flood-waiting", retry_after=wait)
                self.stats["pool_waits"] += 1
                log.info("all accounts flood-waiting or leased", channel=channel, seconds=round(wait, 1))
                await asyncio.sleep(max(wait, 0.0))
                continue
            try:
                return await self._run_on(member, op)
            except AccountLeased:
                continue  # _ensure_lease set when to look at this account again
            except RateLimited as exc:
                await self._park(member, exc.retry_after, channel)
            except AccountUnusable as exc:
                await self._retire(member, exc)
            except TelegramDenied as exc:
                if channel is None:
                    raise
                member.locked_out.add(channel)
                self.stats["locked_out"] += 1
                log.info("account cannot read channel", account=member.name, channel=channel, rpc=exc.rpc)
                denied = exc

    async def _run_on(self, member: Member, op: Operation[T]) -> T:
        async with member.lock:
            delay = member.last_request + self._pacing - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            client = await self.client(member)
            member.last_request = self._clock()
            self.stats["requests"] += 1
            try:
                with telethon_errors():
                    return await op(client)
            finally:
                member.last_request = self._clock()

    async def _park(self, member: Member, seconds: float, channel: str | None) -> None:
        member.flood_until = self._clock() + seconds
        self.stats["flood_waits"] += 1
        self.stats["flood_wait_seconds"] += int(seconds)
        self.stats["handovers"] += 1
        metrics.count_flood_wait("mtproto", seconds)
        log.warning("flood wait: account parked", account=member.name, seconds=seconds, channel=channel)
        if self._store is not None:
            await self._store.repo.park(member.name, member.flood_until)

    async def _retire(self, member: Member, exc: AccountUnusable) -> None:
        member.dead = True
        self.stats[f"accounts_{exc.state}"] += 1
        log.error("account unusable: retired", account=member.name, state=exc.state, rpc=exc.rpc)
        if self._store is not None:
            await self._store.repo.set_state(member.name, exc.state, exc.rpc)
        await self._drop_client(member)
