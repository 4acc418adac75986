"""MTProto media reach the hashing stage: backfill through the assembled pipeline downloads, hashes,
matches and quarantines media with Telethon's downloader (the fake Telegram under the real client)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import config
from crawler.hashing import synthetic
from crawler.hashing.images import hash_image
from crawler.pipeline import open_pipeline
from foundation.models import Source
from storage.client import Store
from storage.repos.hashlists import HashListRepo
from telegram_watch.backfill import Backfill
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.media import MediaFetcher
from tests.test_tg_support import pool_over


async def test_backfilled_photos_are_hashed_and_matched(store: Store, tmp_path: Path) -> None:
    world = FakeTelegram(seed="media-pipeline")
    channel = world.add_channel("Pictures", username="pictures_chan")
    listed = synthetic.scene(21)
    listed_png = synthetic.encode(listed, "PNG")
    variant = synthetic.encode(synthetic.half_size(listed), "JPEG", quality=60)
    other = synthetic.encode(synthetic.scene(22), "PNG")
    world.add_message(channel, "variant", media=world.photo(variant, 320, 240))
    world.add_message(channel, "other", media=world.photo(other, 640, 480))
    await HashListRepo(store).add_entries("known", "csv", [("pdq", hash_image(listed_png).pdq.hash, None)])  # type: ignore[union-attr]
    settings = config.load(data_dir=tmp_path, media={"hash_workers": 1})
    pool = pool_over(world, world.add_account("agent"))
    try:
        fetcher = MediaFetcher(pool, max_bytes=settings.limits.max_media_bytes)
        async with open_pipeline(store, settings, fetchers={Source.MTPROTO: fetcher}) as ingest:
            await Backfill(pool, ingest).run("pictures_chan")
    finally:
        await pool.close()
    digests = {hashlib.sha256(variant).hexdigest(), hashlib.sha256(other).hexdigest()}
    media = {d["_id"]: d for d in await store["media"].find().to_list(None)}
    assert set(media) == digests, "each downloaded photo hashed once, under its SHA-256"
    assert media[hashlib.sha256(variant).hexdigest()]["matched"] is True
    assert media[hashlib.sha256(other).hexdigest()]["matched"] is False
    alerts = await store["alerts"].find().to_list(None)
    assert [a["sha256"] for a in alerts] == [hashlib.sha256(variant).hexdigest()]
    messages = await store["messages"].find().to_list(None)
    assert all(m["media"][0]["sha256"] in digests for m in messages)
