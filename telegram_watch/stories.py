"""Stories of a watched channel, when Telegram shows them to the account (``stories.getPeerStories``).

Stories vanish after a day (unless pinned), so they are read on every pass and stored as records of
kind ``story`` (``<channel key>/s<story id>``: their ids are not message ids). Re-reading one is
idempotent; an edited caption or media becomes a new version, like a message. Story media go
through the same media stage as message media: the locator carries ``story_id``, so an expired file
reference is refreshed with ``stories.getStoriesByID`` instead of refetching a message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.contracts import IngestDoor, IngestResult
from foundation.logs import get_logger
from foundation.models import ChannelRef, Message, Source, utcnow
from telegram_watch.backfill import PrivateGate, ask_private_gate
from telegram_watch.convert import DEFAULT_WEB_BASE, document_ref, photo_ref, raw_capture, text_features
from telegram_watch.entities import Resolved, Target, input_peer, resolve
from telegram_watch.pool import AccountPool

log = get_logger(__name__)

REQUEST = "stories.getPeerStories"


def story_permalink(ref: ChannelRef, story_id: int, web_base: str = DEFAULT_WEB_BASE) -> str | None:
    """Telegram's story link, ``t.me/<username>/s/<id>`` (private channels have none)."""
    return f"{web_base}/{ref.username}/s/{story_id}" if ref.username else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def convert_story(
    story: types.StoryItem, ref: ChannelRef, *, fetched_at: datetime, web_base: str = DEFAULT_WEB_BASE
) -> Message:
    text = story.caption or ""
    links, mentions, hashtags = text_features(text, story.entities)
    media = []
    unknown = []
    channel_id = ref.tg_id
    m = story.media
    if isinstance(m, types.MessageMediaPhoto) and isinstance(m.photo, types.Photo):
        media.append(photo_ref(m.photo, channel_id=channel_id, msg_id=0))
    elif isinstance(m, types.MessageMediaDocument) and isinstance(m.document, types.Document):
        media.append(document_ref(m.document, channel_id=channel_id, msg_id=0))
    elif m is not None and not isinstance(m, types.MessageMediaEmpty):
        unknown.append(type(m).__name__)
    for item in media:
        if item.locator is not None:
            item.locator.update(msg_id=None, story_id=story.id)
    views = getattr(story.views, "views_count", None) if story.views else None
    return Message(
        ref=ref,
        msg_id=story.id,
        kind="story",
        source=Source.MTPROTO,
        date=_aware(story.date) if story.date else None,
        permalink=story_permalink(ref, story.id, web_base),
        edited=bool(story.edited),
        text=text,
        links=links,
        mentions=mentions,
        hashtags=hashtags,
        views=views,
        media=media,
        unknown=unknown,
        notices=[f"story expires {_aware(story.expire_date).isoformat()}"],
        raw=raw_capture(story, request=REQUEST, fetched_at=fetched_at),
    )


class StoryReader:
    """Reads the active stories of channels through the pool and hands them to the ingest door."""

    def __init__(
        self,
        pool: AccountPool,
        ingest: IngestDoor,
        *,
        run_id: str | None = None,
        web_base: str = DEFAULT_WEB_BASE,
        private_gate: PrivateGate | None = None,
    ) -> None:
        #: the private-read gate (as ``Backfill``'s): a private chat's stories only under an authorization
        self.private_gate = private_gate
        self.pool = pool
        self.ingest = ingest
        self.run_id = run_id
        self.web_base = web_base

    async def stories(self, resolved: Resolved) -> list[Message]:
        """The channel's stories this account may see (none, not an error, when hidden)."""
        target = Target(username=resolved.ref.username, tg_id=resolved.ref.tg_id)

        async def ask(client: TelegramClient) -> Any:
            peer = await input_peer(client, target)
            return await client(functions.stories.GetPeerStoriesRequest(peer=peer))

        result = await self.pool.run(target.key, ask)
        now = utcnow()
        items = getattr(getattr(result, "stories", None), "stories", None) or []
        return [
            convert_story(s, resolved.ref, fetched_at=now, web_base=self.web_base)
            for s in items
            if isinstance(s, types.StoryItem)
        ]

    async def read(self, target: Target | str) -> IngestResult | None:
        """Store ``target``'s visible stories; None when the channel itself is unavailable."""
        tgt = Target.parse(target) if isinstance(target, str) else target
        resolved = await resolve(self.pool, tgt)
        if not resolved.ok:
            return None
        if resolved.ref.username is None:
            await ask_private_gate(self.private_gate, resolved, self.pool)
        found = await self.stories(resolved)
        log.info("stories read", channel=str(resolved.ref.natural_key()), stories=len(found))
        return await self.ingest.submit([resolved.channel, *found], run_id=self.run_id)
