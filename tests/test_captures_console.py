"""The console's channel page lists the channel's neighbours (forwards, mentions, bots), in Korean and
English, and never names a private chat the reader may not see."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role
from foundation.models import ChannelRef, ForwardInfo, Message, Source
from storage.client import Store
from tests.test_console import sign_in
from tests.test_investigate_api import T0, Case, load_case, token

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def case(store: Store, ingest: Ingest, tmp_path: Path) -> Case:
    loaded = await load_case(store, ingest, tmp_path)
    at = T0 + timedelta(days=2)
    await ingest.submit(
        [
            Message(ref=ChannelRef(username="beta_chat"), msg_id=20, source=Source.WEB, date=at, text="fwd",
                    forwarded_from=ForwardInfo(username="alpha_news", msg_id=2)),
            Message(ref=ChannelRef(username="alpha_news"), msg_id=21, source=Source.WEB, date=at,
                    text="ask @gamma_helper_bot", mentions=["gamma_helper_bot"]),
            Message(ref=ChannelRef(tg_id=777), msg_id=5, source=Source.MTPROTO, date=at, text="private fwd",
                    forwarded_from=ForwardInfo(username="alpha_news", msg_id=3)),
        ]
    )  # fmt: skip
    return loaded


@pytest.fixture
async def client(store: Store, case: Case) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(store, case.settings, ALL_MODULES))) as c:
        yield c


def neighbours_block(page: str) -> str:
    start = page.index('class="grid neighbours"')
    return page[start : page.index("</table>", start)]


async def test_channel_page_shows_neighbours_in_both_languages(client: Client, store: Store) -> None:
    await sign_in(client, await token(store, Role.ADMIN))
    english = neighbours_block(await (await client.get("/console/channels/alpha_news")).text())
    assert 'href="/console/channels/beta_chat"' in english and "it → this channel" in english
    assert "gamma_helper_bot (bot)" in english and "mention" in english and "id777" in english
    korean = await (await client.get("/console/channels/alpha_news", headers={"Accept-Language": "ko"})).text()
    assert "연결된 채널" in korean and "전달" in neighbours_block(korean) and "봇" in neighbours_block(korean)


async def test_a_private_chat_stays_unnamed_for_a_reader_outside_its_case(client: Client, store: Store) -> None:
    await sign_in(client, await token(store, Role.INVESTIGATOR))
    page = await client.get("/console/channels/alpha_news")
    assert page.status == 200
    block = neighbours_block(await page.text())
    assert "beta_chat" in block and "id777" not in block


async def test_a_screenshot_shows_on_its_message_page_under_the_media_rules(client: Client, store: Store) -> None:
    from storage.repos.media import MediaRepo
    from tests.test_investigate_api import synthetic_png

    png = synthetic_png(9)
    sha = hashlib.sha256(png).hexdigest()
    media = MediaRepo(store)
    await media.insert({"_id": sha, "kind": "image", "media_kind": "screenshot", "screenshot_of": "alpha_news/2"})
    await media.add_sighting(sha, channel="alpha_news", msg_id=2, message="alpha_news/2", at=T0, source="screenshot")
    await sign_in(client, await token(store, Role.ADMIN))
    page = await (await client.get("/console/messages/alpha_news/2", headers={"Accept-Language": "ko"})).text()
    block = page[page.index("이 게시물의 스크린샷") :]
    # the media rule decides: no active case authorization covers it, so a placeholder and the link
    assert f'href="/console/media/{sha}"' in block and 'class="placeholder"' in block and "<img" not in block
    other = await (await client.get("/console/messages/alpha_news/3")).text()
    assert "Screenshots of this post" not in other
