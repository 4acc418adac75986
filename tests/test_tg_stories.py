"""Stories of a watched channel: stored as records of kind ``story`` beside (never over) its
messages, re-read idempotently, their media downloaded and refreshed through the story."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crawler.ingest import Ingest
from foundation.models import MediaRef
from storage.client import Store
from storage.repos import MessageRepo
from telegram_watch.backfill import Backfill
from telegram_watch.fake.story_handlers import add_story
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.media import MediaFetcher
from telegram_watch.pool import AccountPool
from telegram_watch.stories import StoryReader
from tests.test_tg_support import pool_over

PIXELS = bytes(range(256)) * 16  # synthetic "photo" bytes


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="stories")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("agent1"))
    yield p
    await p.close()


async def test_stories_are_stored_beside_messages_and_their_media_refresh_through_the_story(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    ch = world.add_channel("Storied", username="storychan")
    world.add_message(ch, "message one")
    photo = world.photo(PIXELS, 64, 64)
    add_story(world, ch, "story one #tag", media=photo, views=7)
    add_story(world, ch, "long gone", date=world.now() - 3 * 86_400)  # expired: Telegram no longer shows it
    await Backfill(pool, ingest).run("storychan")

    reader = StoryReader(pool, ingest)
    first = await reader.read("storychan")
    assert first is not None and first.new == 1
    again = await reader.read("storychan")
    assert again is not None and again.new == 0  # idempotent by natural id

    docs = {d["_id"]: d for d in await MessageRepo(store).query(channel=f"id{ch.id}")}
    message, story = docs[f"id{ch.id}/1"], docs[f"id{ch.id}/s1"]
    assert message["kind"] == "message" and message["text"] == "message one"
    assert story["kind"] == "story" and story["text"] == "story one #tag" and story["hashtags"] == ["tag"]
    assert story["permalink"] == "https://t.me/storychan/s/1" and story["views"] == 7
    ref = MediaRef.model_validate(story["media"][0])
    assert ref.locator is not None and ref.locator["story_id"] == 1

    world.expire_file_reference(photo)  # a day later: the story's file reference is stale
    fetcher = MediaFetcher(pool, max_bytes=1_000_000, partial_dir=tmp_path)
    assert await fetcher.fetch(ref) == PIXELS
    assert world.calls[("agent1", "GetStoriesByIDRequest")] == 1  # refreshed through the story


async def test_hidden_stories_are_not_an_error(world: FakeTelegram, pool: AccountPool, ingest: Ingest) -> None:
    world.add_channel("Quiet", username="quietchan")
    result = await StoryReader(pool, ingest).read("quietchan")
    assert result is not None and result.new == 0
    world.add_channel("Closed", private=True)
    assert await StoryReader(pool, ingest).read("nosuchchan") is None
