"""Partial MTProto downloads on disk stay bounded: an over-cap file leaves nothing behind, abandoned
parts and locks are swept after ``PART_MAX_AGE``, the directory is private, and the parts' key file
is private and survives two workers creating it at once."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from crawler.ingest import Ingest
from foundation.errors import TooLarge
from foundation.keys import load_or_create
from storage.client import Store
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.media import CHUNK, PART_MAX_AGE, MediaFetcher
from tests.test_tg_accounts_survive import stored_ref, synthetic
from tests.test_tg_support import pool_over


async def test_an_over_cap_download_leaves_no_part_file(ingest: Ingest, store: Store, tmp_path: Path) -> None:
    world = FakeTelegram(seed="partial-cap")
    pool = pool_over(world, world.add_account("agent1"))
    try:
        ref = await stored_ref(world, pool, ingest, store, world.document(synthetic(3), "video/mp4", file_name="x.mp4"))
        ref = ref.model_copy(update={"size": None})  # Telegram did not announce a size: the cap bites mid-stream
        fetcher = MediaFetcher(pool, max_bytes=2 * CHUNK, partial_dir=tmp_path / "downloads")
        with pytest.raises(TooLarge):
            await fetcher.fetch(ref)
    finally:
        await pool.close()
    assert list((tmp_path / "downloads").glob("*.part")) == []


def test_abandoned_parts_and_locks_are_swept_and_the_directory_is_private(tmp_path: Path) -> None:
    parts = tmp_path / "downloads"
    parts.mkdir(mode=0o755)
    parts.chmod(0o755)
    old = time.time() - PART_MAX_AGE - 60
    for name in ("document-1-full.part", "document-1-full.lock"):
        (parts / name).write_bytes(b"x" * 100)
        os.utime(parts / name, (old, old))
    (parts / "document-2-full.part").write_bytes(b"fresh")
    (parts / "notes.txt").write_bytes(b"not ours")
    os.utime(parts / "notes.txt", (old, old))

    fetcher = MediaFetcher(None, max_bytes=CHUNK, partial_dir=parts)  # type: ignore[arg-type]
    assert fetcher.partial_dir == parts
    assert sorted(p.name for p in parts.iterdir()) == ["document-2-full.part", "notes.txt"]
    assert stat.S_IMODE(parts.stat().st_mode) == 0o700


async def test_the_parts_key_file_is_private_and_two_workers_creating_it_agree(tmp_path: Path) -> None:
    keys = await asyncio.gather(*(asyncio.to_thread(load_or_create, None, tmp_path, "downloads") for _ in range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    path = tmp_path / "keys" / "downloads.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # loosened by hand: tightened again on the next start
    assert load_or_create(None, tmp_path, "downloads") == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
