"""HMA lookups of videos by hash: ``signal_type=vpdq`` with python-threatexchange's ``VPDQSignal``
serialisation (a JSON list of ``"<pdq hex>,<quality>,<timestamp>"`` frames) and ``video_md5``,
answered from tgwatch's vPDQ lists through the crawl's matcher."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import config
from crawler.api.app import build_app
from crawler.hashing import signals, synthetic
from crawler.hashing.pool import hash_media_sync
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store
from storage.repos.hashlists import HashListRepo

CLIP = synthetic.video(seed=1, seconds=4)
#: the listed clip re-encoded (other codec, size and frame rate): other bytes, near frames
COPY = synthetic.reencode(CLIP, codec="libvpx", size=(160, 120), fps=15)
OTHER = synthetic.video(seed=2, seconds=3)


def hma_vpdq(data: bytes) -> str:
    """A video's vPDQ as HMA clients send it: ``VpdqCompactFeature.__str__`` per frame, and
    ``json.dumps`` with its default separators (``vpdq_to_json``)."""
    frames = hash_media_sync(data).video_frames
    assert frames
    return json.dumps([f"{f.pdq},{f.quality},{f.timestamp:.3}" for f in frames])


@pytest.fixture
async def hma(store: Store, tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, str], str]]:
    settings = config.load(data_dir=tmp_path / "d", media={"hash_workers": 1})
    listed = signals.VpdqSignal.hash(CLIP)
    rows = [("vpdq", listed, "clip-1"), ("md5", hashlib.md5(CLIP).hexdigest(), None)]
    await HashListRepo(store).add_entries("clips", "csv", rows)
    token, _ = await TokenRepo(store, server_secret(settings)).create("hma-tool", Role.INVESTIGATOR)
    async with TestClient(TestServer(build_app(store, settings, ALL_MODULES))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, signals.VpdqSignal.validate(listed)


async def test_an_hma_client_looks_up_a_video_by_its_vpdq_and_md5(
    hma: tuple[TestClient[Any, Any], dict[str, str], str],
) -> None:
    client, auth, listed = hma
    query = {"signal_type": "vpdq", "signal": hma_vpdq(COPY)}
    raw = await client.get("/hma/m/raw_lookup", params=query, headers=auth)
    assert raw.status == 200 and await raw.json() == {"matches": [f"clips/vpdq/{listed}"]}
    dist = await client.get("/hma/m/raw_lookup", params={**query, "include_distance": "true"}, headers=auth)
    [match] = (await dist.json())["matches"]
    assert 0 <= float(match["distance"]) <= 20, "100 - query match percent, within vPDQ's 80 % rule"
    banks = await client.get("/hma/m/lookup", params=query, headers=auth)
    assert await banks.json() == ["clips"]

    other = await client.get("/hma/m/lookup", params={"signal_type": "vpdq", "signal": hma_vpdq(OTHER)}, headers=auth)
    assert await other.json() == [], "another video's frames do not match"
    by_md5 = {"signal_type": "video_md5", "signal": hashlib.md5(CLIP).hexdigest()}
    assert await (await client.get("/hma/m/lookup", params=by_md5, headers=auth)).json() == ["clips"]

    form = aiohttp.FormData()
    form.add_field("file", COPY, filename="copy.webm", content_type="video/webm")
    posted = await client.post("/hma/m/lookup", data=form, headers=auth)
    assert posted.status == 200 and (await posted.json())["vpdq"] == ["clips"]


async def test_a_malformed_vpdq_signal_is_a_clear_400(hma: tuple[TestClient[Any, Any], dict[str, str], str]) -> None:
    client, auth, _ = hma
    for signal in ('["not a frame"]', '["' + "0" * 64 + ',101,0.0"]', "[]", "{"):
        resp = await client.get("/hma/m/raw_lookup", params={"signal_type": "vpdq", "signal": signal}, headers=auth)
        assert resp.status == 400 and "vpdq" in (await resp.json())["message"].lower(), signal
