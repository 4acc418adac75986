"""Discovery over MTProto: channels Telegram recommends, and global search for terms and hashtags.

Both are among Telegram's most tightly rate-limited methods (``channels.getChannelRecommendations``,
``messages.searchGlobal``: a few dozen calls and the account gets a long ``FLOOD_WAIT``), so every
call goes through a per-account gate: an account makes at most one discovery call per
``interval`` seconds. The gate is kept on the account document (``discovery_next_at``) when an
account store is given, so back-to-back CLI runs respect it too. Flood waits still park the account
in the pool as usual. Each result carries its provenance: ``mtproto_recommendation`` (with the
seed channel) or ``mtproto_search:<term>`` (with the message it was found in), and the account.

This module only finds; the app shell hands the results to discovery as candidates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.logs import get_logger
from telegram_watch.accounts import Accounts
from telegram_watch.entities import Target, input_peer
from telegram_watch.pool import AccountPool, NoAccount

log = get_logger(__name__)

T = TypeVar("T")
RECOMMENDATION = "mtproto_recommendation"
SEARCH = "mtproto_search"
MAX_TERM = 64


@dataclass(frozen=True)
class Found:
    """One room a discovery call named, with where it came from."""

    username: str | None
    tg_id: int
    title: str | None
    participants: int | None
    source: str  # "mtproto_recommendation" or "mtproto_search:<term>"
    account: str
    via: str | None  # the seed channel's link, or the found message's link
    text: str | None = None  # the found message's text (search), first 500 characters

    @property
    def link(self) -> str | None:
        return f"https://t.me/{self.username}" if self.username else None


def _room(chat: Any) -> tuple[str | None, str | None, int | None] | None:
    if not isinstance(chat, types.Channel):
        return None
    return chat.username, chat.title, getattr(chat, "participants_count", None)


class Discoverer:
    def __init__(
        self,
        pool: AccountPool,
        *,
        interval: float,
        store: Accounts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.interval = interval
        self._store = store
        self._clock = clock
        self._next: dict[str, float] = {}
        self.calls: list[str] = []  # the account of each call made, in order

    async def _gate_of(self, name: str) -> float:
        if name not in self._next and self._store is not None:
            doc = await self._store.repo.get(name) or {}
            self._next[name] = float(doc.get("discovery_next_at") or 0.0)
        return self._next.get(name, 0.0)

    async def _gated(self, channel: str | None, op: Callable[[TelegramClient], Awaitable[T]]) -> tuple[T, str]:
        """Run ``op`` on an account whose discovery gate is open; close that gate for ``interval``."""
        while True:
            names = [m.name for m in self.pool.candidates(channel)]
            if not names:
                raise NoAccount("no usable Telegram account for discovery")
            now = self._clock()
            gates = {n: await self._gate_of(n) for n in names}
            ready = {n for n, at in gates.items() if at <= now}
            if ready:
                break
            wait = min(gates.values()) - now
            log.info("discovery rate limit: waiting", seconds=round(wait, 1))
            await asyncio.sleep(wait)
        used: list[str] = []

        async def call(client: TelegramClient) -> T:
            name = next(m.name for m in self.pool.members if m.client is client)
            used.append(name)
            await self._close_gate(name)
            return await op(client)

        result = await self.pool.run(channel, call, only=ready)
        self.calls.append(used[-1])
        return result, used[-1]

    async def _close_gate(self, name: str) -> None:
        at = self._clock() + self.interval
        self._next[name] = at
        if self._store is not None:
            await self._store.repo.set_discovery_next(name, at)

    async def recommendations(self, channel: str) -> list[Found]:
        """The channels Telegram recommends next to ``channel`` (name, link or id)."""
        target = Target.parse(channel)

        async def ask(client: TelegramClient) -> Any:
            peer = await input_peer(client, target)
            return await client(functions.channels.GetChannelRecommendationsRequest(channel=peer))

        result, account = await self._gated(target.key, ask)
        via = f"https://t.me/{target.username}" if target.username else target.key
        out = []
        for chat in getattr(result, "chats", []):
            room = _room(chat)
            if room is not None:
                out.append(Found(room[0], chat.id, room[1], room[2], RECOMMENDATION, account, via))
        log.info("recommendations", channel=target.key, found=len(out), account=account)
        return out

    async def search(self, term: str, *, limit: int = 50) -> list[Found]:
        """Public posts Telegram's global search finds for ``term`` (a word or ``#hashtag``)."""
        term = " ".join(term.split())
        if not term or len(term) > MAX_TERM:
            raise ValueError(f"a search term is 1 to {MAX_TERM} characters")

        async def ask(client: TelegramClient) -> Any:
            return await client(
                functions.messages.SearchGlobalRequest(
                    q=term,
                    filter=types.InputMessagesFilterEmpty(),
                    min_date=None,
                    max_date=None,
                    offset_rate=0,
                    offset_peer=types.InputPeerEmpty(),
                    offset_id=0,
                    limit=max(1, min(limit, 100)),
                    broadcasts_only=None,
                )
            )

        result, account = await self._gated(None, ask)
        chats = {c.id: c for c in getattr(result, "chats", []) if isinstance(c, types.Channel)}
        out: list[Found] = []
        seen: set[int] = set()
        for msg in getattr(result, "messages", []):
            peer = getattr(msg, "peer_id", None)
            chat = chats.get(getattr(peer, "channel_id", -1))
            if chat is None or chat.id in seen:
                continue
            seen.add(chat.id)
            via = f"https://t.me/{chat.username}/{msg.id}" if chat.username else None
            text = (getattr(msg, "message", None) or "")[:500] or None
            out.append(
                Found(
                    chat.username, chat.id, chat.title, chat.participants_count, f"{SEARCH}:{term}", account, via, text
                )
            )
        log.info("global search", term=term, found=len(out), account=account)
        return out
