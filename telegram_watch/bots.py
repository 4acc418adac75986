"""Bots: resolve a bot by username and keep its public profile (name, description, commands).

Channels that distribute abuse often work through bots ("get the full video: @some_bot"), linked from
inline buttons and text. A bot named in a button or a link of a stored message is *tracked*: resolved
once and recorded as a channel-like record of kind ``bot`` (the "monthly users" figure comes from the
bot's web page, not from here). Only bots: a username that turns out to be a person is dropped without
recording anything about them, as are users' profiles in general (see ``Message.sender``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.contracts import IngestDoor
from foundation.errors import RateLimited, SourceError
from foundation.logs import get_logger
from foundation.models import Channel, ChannelRef, Message
from telegram_watch.convert import convert_bot
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

# Bot usernames end in "bot" (Telegram enforces it); links may carry ?start=… or /app paths
_BOT_LINK = re.compile(
    r"^(?:https?://)?(?:t\.me|telegram\.me|telegram\.dog)/(?P<name>[A-Za-z][A-Za-z0-9_]{1,30}[Bb][Oo][Tt])(?:[/?#]|$)"
)
_BOT_MENTION = re.compile(r"^[a-z][a-z0-9_]{1,30}bot$")
#: new bots resolved per run at most: a channel stuffing its buttons with bot links cannot turn one run
#: into hundreds of resolve requests (the rest are tracked on later runs)
MAX_NEW_BOTS_PER_RUN = 20


def bot_username(url: str | None) -> str | None:
    """The bot a ``t.me`` link points at, lower-cased, or None."""
    if not url:
        return None
    match = _BOT_LINK.match(url.strip())
    return match["name"].lower() if match else None


def bots_named_in(records: Iterable[Any]) -> set[str]:
    """Bot usernames in the buttons, links and mentions of message records."""
    found: set[str] = set()
    for r in records:
        if not isinstance(r, Message):
            continue
        urls = [b.url for row in r.buttons for b in row] + list(r.links)
        found.update(n for n in (bot_username(u) for u in urls) if n)
        found.update(m for m in r.mentions if _BOT_MENTION.match(m))
    return found


class NotABot(SourceError):
    """The username belongs to a person or a chat: nothing is recorded."""


async def fetch_bot(client: TelegramClient, username: str) -> Channel:
    """Resolve ``username`` and read its bot info (``users.getFullUser``): description and commands."""
    entity = await client.get_entity(username)
    if not isinstance(entity, types.User) or not entity.bot:
        raise NotABot(f"@{username} is not a bot")
    full = await client(functions.users.GetFullUserRequest(entity))
    return convert_bot(entity, full)


async def track_bots(
    pool: AccountPool,
    ingest: IngestDoor,
    usernames: Iterable[str],
    *,
    run_id: str | None = None,
    refresh: bool = False,
    limit: int = MAX_NEW_BOTS_PER_RUN,
) -> tuple[list[Channel], list[str]]:
    """Record every bot not yet known (all of them with ``refresh``); failures are recorded, not raised.

    At most ``limit`` bots are resolved; returns (the bots recorded, the names left for a later run:
    over the limit, or not tried because every account was flood-waiting).
    """
    tracked: list[Channel] = []
    names = sorted(set(usernames))
    asked = 0
    for i, name in enumerate(names):
        if not refresh and await ingest.resolve_channel(ChannelRef(username=name)) is not None:
            continue
        if asked >= limit:
            log.warning("bot tracking capped for this run", limit=limit, left=len(names) - i)
            return tracked, names[i:]
        asked += 1
        try:
            bot = await pool.run(f"u:{name}", lambda c, n=name: fetch_bot(c, n))  # type: ignore[misc]
        except NotABot:
            log.info("a named bot is a person or a chat: nothing recorded, not even its name")
            continue
        except RateLimited as exc:
            await ingest.record_error(exc, run_id=run_id, record=f"bot:{name}")
            return tracked, names[i:]  # every account waits: the rest are tried on the next run
        except SourceError as exc:
            log.warning("bot not resolved", username=name, error=exc.message)
            await ingest.record_error(exc, run_id=run_id, record=f"bot:{name}")
            continue
        await ingest.submit([bot], run_id=run_id)
        tracked.append(bot)
    return tracked, []
