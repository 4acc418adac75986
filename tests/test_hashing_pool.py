"""HashPool: real worker processes, bounded in-flight submissions, bad media recorded not raised."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from crawler.hashing import synthetic as syn
from crawler.hashing.images import ImageLimits
from crawler.hashing.pool import HashOptions, HashPool, hash_media_sync
from foundation.errors import Bomb, TooLarge, Undecodable


async def test_pool_hashes_images_and_videos_with_back_pressure() -> None:
    images = [syn.encode(syn.scene(i, (200, 150)), "JPEG", quality=90) for i in range(12)]
    clip = syn.video(seed=4, seconds=2)
    async with HashPool(workers=2, max_in_flight=3) as pool:
        results = await asyncio.gather(*(pool.hash_media(d) for d in [*images, clip]))
        assert pool.peak_in_flight == 3 and pool.in_flight == 0
    for data, res in zip(images, results[:-1], strict=True):
        assert res.sha256 == hashlib.sha256(data).hexdigest() and res.md5 == hashlib.md5(data).hexdigest()
        assert res.kind == "image" and res.mime == "image/jpeg" and res.pdq is not None and res.error is None
    video = results[-1]
    assert video.kind == "video" and video.mime == "video/mp4" and len(video.video_frames) == 2


async def test_bad_media_keeps_digests_and_records_the_error(tmp_path: Path) -> None:
    good = syn.encode(syn.scene(1))
    async with HashPool(workers=1) as pool:
        truncated = await pool.hash_media(good[:500])
        text = await pool.hash_media(b"just some text")
        path = tmp_path / "x.png"
        path.write_bytes(good)
        from_path = await pool.hash_media(path)
    assert isinstance(truncated.error, Undecodable) and truncated.sha256 == hashlib.sha256(good[:500]).hexdigest()
    assert text.kind == "other" and text.error is None and text.pdq is None
    assert from_path.pdq is not None and from_path.sha256 == hashlib.sha256(good).hexdigest()


def test_inline_hashing_caps_and_bombs() -> None:
    options = HashOptions(max_bytes=1000)
    with pytest.raises(TooLarge):
        hash_media_sync(syn.encode(syn.scene(2)), options=options)
    gif_bomb = syn.encode(syn.scene(3, (50, 50)), "GIF")
    forced = hash_media_sync(gif_bomb, "image", HashOptions(image=ImageLimits(max_pixels=100)))
    assert isinstance(forced.error, Bomb)
    assert hash_media_sync(syn.encode(syn.scene(2)), options=HashOptions(dihedral=True)).dihedral
