"""Stories on the fake Telegram: a channel's active stories and stories by id.

    story = add_story(world, news, "caption", media=world.photo(...))
    # stories.getPeerStories(news) → the stories not yet expired (24 h by default)
    # stories.getStoriesByID(news, [id]) → those stories, with fresh file references

A story is visible to whoever may read its channel, as on Telegram for public channels.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import stories as t_stories

from . import tl
from .dispatch import handles
from .entities import detect_entities
from .model import FakeChannel, FakeFile, FakeUser
from .read_handlers import input_channel, readable
from .world import FakeTelegram


@dataclass(eq=False)
class FakeStory:
    id: int
    date: int
    expire_date: int
    caption: str
    media: FakeFile | None
    views: int = 0


_STORIES: weakref.WeakKeyDictionary[FakeTelegram, dict[int, list[FakeStory]]] = weakref.WeakKeyDictionary()


def add_story(
    world: FakeTelegram,
    channel: FakeChannel,
    caption: str = "",
    *,
    media: FakeFile | None = None,
    date: int | None = None,
    lifetime: int = 86_400,
    views: int = 0,
) -> FakeStory:
    """Post a story to ``channel`` (expires ``lifetime`` seconds after ``date``)."""
    stories = _STORIES.setdefault(world, {}).setdefault(channel.id, [])
    when = world.now() if date is None else date
    story = FakeStory(len(stories) + 1, when, when + lifetime, caption, media, views)
    stories.append(story)
    return story


def _item(story: FakeStory) -> Any:
    return types.StoryItem(
        id=story.id,
        date=tl.when(story.date),
        expire_date=tl.when(story.expire_date),
        media=tl.media(story.media) or types.MessageMediaEmpty(),
        public=True,
        caption=story.caption or None,
        entities=detect_entities(story.caption) or None if story.caption else None,
        views=types.StoryViews(views_count=story.views),
    )


def _channel(world: FakeTelegram, viewer: FakeUser, peer: Any) -> FakeChannel:
    return readable(world, viewer, input_channel(world, viewer, peer))


@handles(functions.stories.GetPeerStoriesRequest)
def _get_peer_stories(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _channel(world, viewer, req.peer)
    now = world.now()
    active = [s for s in _STORIES.get(world, {}).get(ch.id, []) if s.expire_date > now]
    return t_stories.PeerStories(
        stories=types.PeerStories(peer=types.PeerChannel(ch.id), stories=[_item(s) for s in active]),
        chats=[tl.channel(world, viewer, ch)],
        users=[],
    )


@handles(functions.stories.GetStoriesByIDRequest)
def _get_stories_by_id(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _channel(world, viewer, req.peer)
    wanted = set(req.id)
    found = [s for s in _STORIES.get(world, {}).get(ch.id, []) if s.id in wanted]
    return t_stories.Stories(
        count=len(found), stories=[_item(s) for s in found], chats=[tl.channel(world, viewer, ch)], users=[]
    )
