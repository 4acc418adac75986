"""Discovery on the fake Telegram: channel recommendations and global message search.

    recommend(world, news, other1, other2)   # "similar channels" Telegram shows under ``news``
    # messages.searchGlobal: public, unbanned channels' messages containing the query

Telegram rate-limits both hard (``FLOOD_WAIT`` on search after a few dozen calls); tests script
that with ``world.faults.flood_wait(account, SearchGlobalRequest, N)``.
"""

from __future__ import annotations

import weakref
from typing import Any

from telethon.tl import functions
from telethon.tl.types import messages as t_messages

from . import tl
from .dispatch import handles
from .model import FakeChannel, FakeUser
from .read_handlers import input_channel, readable
from .world import FakeTelegram

_RECOMMENDED: weakref.WeakKeyDictionary[FakeTelegram, dict[int, list[int]]] = weakref.WeakKeyDictionary()


def recommend(world: FakeTelegram, channel: FakeChannel, *similar: FakeChannel) -> None:
    """Telegram recommends ``similar`` under ``channel`` (in this order)."""
    _RECOMMENDED.setdefault(world, {}).setdefault(channel.id, []).extend(c.id for c in similar)


@handles(functions.channels.GetChannelRecommendationsRequest)
def _recommendations(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    table = _RECOMMENDED.get(world, {})
    if req.channel is not None:
        ch = readable(world, viewer, input_channel(world, viewer, req.channel))
        ids = table.get(ch.id, [])
    else:
        ids = [i for lst in table.values() for i in lst]
    chats = [tl.channel(world, viewer, world.channels[i]) for i in dict.fromkeys(ids) if i in world.channels]
    return t_messages.Chats(chats=chats)


@handles(functions.messages.SearchGlobalRequest)
def _search_global(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    needle = (req.q or "").casefold()
    found: list[tuple[FakeChannel, Any]] = []
    if needle:
        for ch in world.channels.values():
            if ch.banned or ch.private or not ch.username:
                continue
            for msg_id in ch.history.ids:
                m = ch.history.by_id[msg_id]
                if needle in (m.text or "").casefold():
                    found.append((ch, m))
    found.sort(key=lambda pair: (pair[1].date, pair[1].id), reverse=True)
    found = found[: max(1, min(int(req.limit or 20), 100))]
    channels = {ch.id: ch for ch, _ in found}
    return t_messages.Messages(
        messages=[tl.message(ch, m) for ch, m in found],
        topics=[],
        chats=[tl.channel(world, viewer, ch) for ch in channels.values()],
        users=[],
    )
