"""#19: comments read through a public channel are public content; a private channel's stay private.

Comments are stored as messages of the channel's discussion group, which usually has no public
username. The private-chat rule (``CaseAccess.visible_channels``) would hide them from every
investigator not on a case, although Telegram shows a public channel's comments to any reader. The
discussion group of a channel seen with a public username (both records naming each other) is
therefore not case-restricted; the discussion group of a private channel stays private, and so does a
group an authorization names (it may hold what was read as a member).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.evidence.access import CaseAccess
from crawler.evidence.cases import Cases
from crawler.evidence.wiring import build_ledger
from crawler.ingest import Ingest
from crawler.tokens import Principal, Role
from foundation.models import Channel, ChannelRef, Message, Source
from storage.client import Store
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from telegram_watch.backfill import Backfill
from telegram_watch.fake import extras as X
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from tests.security.support import bearer, serve, settings, token
from tests.test_tg_support import pool_over

PUBLIC_COMMENT = "public-channel-comment"
PRIVATE_COMMENT = "private-channel-comment"
T0 = datetime(2026, 4, 1, tzinfo=UTC)
OUTSIDER = Principal(token_id="outsider", name="outsider", role=Role.INVESTIGATOR)


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="public-comments")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("alice"))
    yield p
    await p.close()


async def collected(world: FakeTelegram, pool: AccountPool, ingest: Ingest) -> tuple[str, str, str]:
    """A public channel with a private discussion group and one comment, read through the real backfill;
    and a private channel with its discussion group and one comment, as that backfill records them (a
    private channel is read only after joining it under an authorization). The two groups' keys and
    the private channel's."""
    dora = world.add_user("Dora", username="dora_d")
    public = world.add_channel("Open", username="open_news")
    public_group = world.add_channel("Open chat", megagroup=True, private=True)
    X.link_discussion(public, public_group)
    X.add_comment(world, public, world.add_message(public, "post"), PUBLIC_COMMENT, sender=dora)
    assert (await Backfill(pool, ingest).run("open_news")).comments == 1
    closed, closed_group = ChannelRef(tg_id=31), ChannelRef(tg_id=32)
    await ingest.submit(
        [
            Channel(ref=closed, source=Source.MTPROTO, seen_at=T0, kind="channel", linked_chat_id=32),
            Channel(ref=closed_group, source=Source.MTPROTO, seen_at=T0, kind="megagroup", linked_chat_id=31),
            Message(ref=closed_group, msg_id=7, source=Source.MTPROTO, date=T0, text=PRIVATE_COMMENT, thread_root=6),
        ]
    )
    return f"id{public_group.id}", "id32", "id31"


async def test_an_investigator_on_no_case_reads_a_public_channels_comments_only(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    public_group, private_group, closed = await collected(world, pool, ingest)
    access = CaseAccess(store)
    assert set(await access.restricted_channels()) == {private_group, closed}
    assert await access.may_read_channel(OUTSIDER, public_group)
    assert not await access.may_read_channel(OUTSIDER, private_group)

    cfg = settings(tmp_path / "data", media={"fetch": False})
    outsider = await token(store, cfg, Role.INVESTIGATOR, "outsider")
    async with serve(store, cfg) as client:
        resp = await client.get("/api/v1/messages?q=comment", headers=bearer(outsider))
        assert resp.status == 200
        body = await resp.text()
        assert PUBLIC_COMMENT in body and PRIVATE_COMMENT not in body
        items = json.loads(body)["items"]
        comment = next(i for i in items if i["text"] == PUBLIC_COMMENT)
        assert (await client.get(f"/api/v1/messages/{comment['key']}", headers=bearer(outsider))).status == 200
        assert (await client.get(f"/api/v1/channels/{private_group}", headers=bearer(outsider))).status == 403


async def test_a_discussion_group_an_authorization_names_stays_with_its_case(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store, tmp_path: Path
) -> None:
    """Read as a member under a case, a group may hold more than the public comments: its case keeps it."""
    public_group, _, _ = await collected(world, pool, ingest)
    cfg = settings(tmp_path / "data")
    await Cases(build_ledger(store, cfg)).add("CASE-G", channel=public_group, actor="boss")
    await AuthorizationRepo(store).add(
        case_id="CASE-G",
        warrant_ref="W-G",
        approver="judge",
        scope=[channel_scope(public_group)],
        accounts=["alice"],
        valid_until=time.time() + 3600,
    )
    assert (await CaseAccess(store).restricted_channels())[public_group] == {"CASE-G"}
    assert not await CaseAccess(store).may_read_channel(OUTSIDER, public_group)


async def test_a_group_naming_a_public_channel_that_does_not_name_it_stays_private(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    """Only the public channel's own word (its ``linked_chat_id``) makes its discussion group public: a
    private group claiming a public channel (or one the channel has since unlinked) stays private."""
    public_group, _, _ = await collected(world, pool, ingest)
    public = next(c for c in world.channels.values() if c.username == "open_news")
    public.linked_chat_id = None  # the channel drops its comments; its next header says so
    await Backfill(pool, ingest).run("open_news")
    assert not await CaseAccess(store).may_read_channel(OUTSIDER, public_group)
