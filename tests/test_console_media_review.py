"""Safe media review: a blurred greyscale thumbnail made from the quarantine in memory and never
cached, only for principals the case rules allow; a deliberate, CSRF-checked, audited reveal; a
hash-list match shown beside the list entry it matched; sightings with their first and last seen.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageStat

from crawler.api.app import build_app
from crawler.console.media_review import PREVIEW_SIDE, blurred_thumbnail
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from storage.client import Store
from tests.console_world import World, build_world
from tests.test_console import sign_in
from tests.test_investigate_api import synthetic_png

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def world(store: Store, ingest: Ingest, tmp_path: Path) -> World:
    return await build_world(store, ingest, tmp_path)


@pytest.fixture
async def client(store: Store, world: World) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(store, world.case.settings, ALL_MODULES))) as c:
        yield c


def edge_energy(img: Image.Image) -> float:
    """Mean absolute difference of neighbouring pixels: high for sharp pictures, low once blurred."""
    grey = img.convert("L")
    w, h = grey.size
    px = grey.load()
    assert px is not None
    total = sum(abs(int(px[x, y]) - int(px[x + 1, y])) for y in range(h) for x in range(w - 1))
    return total / (h * (w - 1))


def test_the_thumbnail_is_small_grey_and_blurred() -> None:
    raw = synthetic_png(3)
    original = Image.open(io.BytesIO(raw))
    thumb = Image.open(io.BytesIO(blurred_thumbnail(raw)))
    assert thumb.format == "JPEG" and thumb.mode == "L" and max(thumb.size) <= PREVIEW_SIDE
    assert edge_energy(thumb) < edge_energy(original) / 3, "detail is gone"
    tile = Image.open(io.BytesIO(blurred_thumbnail(b"\x00\x00\x00 not an image")))
    assert tile.mode == "L" and ImageStat.Stat(tile).stddev[0] == 0, "anything undecodable is a plain tile"


async def test_a_match_is_shown_beside_its_list_entry(client: Client, store: Store, world: World) -> None:
    await sign_in(client, world.monitor)
    alerts = await (await client.get("/console/alerts")).text()
    link = re.search(r'href="(/console/match\?alert=[^"]+)"', alerts)
    assert link is not None
    page = await (await client.get(link.group(1).replace("&amp;", "&"))).text()
    sighting, entry = page.split('<section class="entry"')
    assert "alpha_news/2" in sighting and "alpha_news, beta_chat" in sighting
    # a monitor has no media grant: the blurred triage thumbnail of the alerted item, never the reveal
    assert "/preview" in sighting and "/reveal" not in sighting
    assert "testlist" in entry and world.case.md5 in entry and "synthetic test entry 7" in entry
    assert re.search(r'class="distance-value">0<', entry) and "exact match" in entry
    await sign_in(client, world.admin)
    page = await (await client.get(link.group(1).replace("&amp;", "&"))).text()
    assert f"/console/media/{world.case.sha}/reveal" in page, "an admin named on the authorization may reveal it"
    assert (await client.get("/console/match?alert=nope")).status == 404
    assert (await client.get("/console/match")).status == 400


async def test_sightings_show_first_and_last_seen(client: Client, world: World) -> None:
    await sign_in(client, world.admin)
    html = await (await client.get(f"/console/media/{world.case.sha}")).text()
    table = html.split('<table class="grid sightings">')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td><a [^>]+>([^<]+)</a></td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert sorted(r[0] for r in rows) == ["alpha_news/2", "beta_chat/7"]
    for _, first, last in rows:
        assert first.startswith("<time datetime=") and last.startswith("<time datetime="), (first, last)
