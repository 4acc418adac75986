"""Publishing a new post on the sample site while it is served (latency benchmark, end-to-end tests).

Generations change a channel all at once; a latency measurement needs single posts appearing at
known moments. ``with_photo_post`` returns the world with one photo post appended to a channel
(next free id, dated now); ``site.set_world(...)`` then serves it on the same address. The photo's
bytes are drawn from ``content_seed`` (``media.picture``), so a caller can hash exactly what the
site will serve (``photo_bytes``) before publishing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from spiders.sample_site.content import Channel, Media, MediaKind, Message, Span, Text, World
from spiders.sample_site.media import picture

PHOTO_SIZE = (640, 480)


def photo_bytes(content_seed: str, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """The JPEG the site serves for a photo drawn from ``content_seed`` (what a crawler downloads)."""
    return picture(content_seed, size[0], size[1], "jpg")


def empty_channel(username: str, title: str = "") -> Channel:
    """A public channel with a web preview and no posts yet."""
    from spiders.sample_site.content import ChannelKind

    return Channel(
        username=username, title=title or username, description="Synthetic channel (sample site).",
        kind=ChannelKind.PUBLIC, subscribers=1000, messages=(), avatar_id=f"{username}-avatar",
    )  # fmt: skip


def with_channel(world: World, channel: Channel) -> World:
    return replace(world, channels={**world.channels, channel.username.lower(): channel})


def with_photo_post(
    world: World, username: str, text: str, content_seed: str, *, when: datetime | None = None,
    size: tuple[int, int] = PHOTO_SIZE,
) -> tuple[World, Message]:  # fmt: skip
    """``world`` with one new photo post at the end of ``username``'s history, and that post."""
    ch = world.channel(username)
    if ch is None:
        raise KeyError(f"no channel @{username} in this world")
    msg_id = (ch.messages[-1].id + 1) if ch.messages else 1
    media_id = f"{ch.username}-{msg_id}-0-photo"
    media = Media(media_id, MediaKind.PHOTO, msg_id, content_seed, size[0], size[1])
    message = Message(msg_id, when or datetime.now(UTC), Text((Span("text", text),)), views=1, media=(media,))
    return with_channel(world, replace(ch, messages=(*ch.messages, message))), message
