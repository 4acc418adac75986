"""MTProto reach against the fake Telegram (real ``TelegramClient`` code): channel comments through the
discussion group, forum topics, public groups read without joining, reactions, buttons, pins, service
messages, and bots found in buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from telethon.tl import functions, types

from crawler.ingest import Ingest
from foundation.models import ChannelRef, Message, Sender
from storage.client import Store
from storage.repos import ChannelRepo, MessageRepo
from telegram_watch.backfill import Backfill
from telegram_watch.fake import extras as X
from telegram_watch.fake.model import FakeChannel, FakeMessage
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.pool import AccountPool
from tests.test_tg_support import pool_over


@pytest.fixture
def world() -> FakeTelegram:
    return FakeTelegram(seed="reach-tests")


@pytest.fixture
async def pool(world: FakeTelegram) -> AsyncIterator[AccountPool]:
    p = pool_over(world, world.add_account("alice"))
    yield p
    await p.close()


async def docs(store: Store, key: str) -> dict[int, dict[str, Any]]:
    return {d["msg_id"]: d for d in await MessageRepo(store).query(channel=key, limit=100_000)}


def calls(world: FakeTelegram, request: type) -> int:
    return sum(n for (_, kind), n in world.calls.items() if kind == request.__name__)


def commented_channel(world: FakeTelegram, *, private_group: bool = True) -> tuple[FakeChannel, FakeChannel]:
    """A channel (no web preview needed: MTProto only) whose comments live in a discussion group."""
    ch = world.add_channel("Leaks", username="leaks_chan")
    group = world.add_channel("Leaks chat", megagroup=True, private=private_group, username=None)
    X.link_discussion(ch, group)
    return ch, group


async def test_comments_are_stored_as_discussion_messages_with_their_thread_root(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = commented_channel(world)
    carol = world.add_user("Carol", username="carol_c")
    posts = [world.add_message(ch, f"post {i}") for i in range(1, 4)]
    first = X.add_comment(world, ch, posts[0], "where is the rest?", sender=carol)
    X.add_comment(world, ch, posts[0], "answering", sender=carol, reply_to=first.id)
    X.add_comment(world, ch, posts[2], "me too", sender=carol)

    result = await Backfill(pool, ingest).run("leaks_chan")

    assert result.complete and (result.threads, result.comments) == (2, 3)
    group_docs = await docs(store, f"id{group.id}")
    root0 = posts[0].extra.discussion[1]
    root2 = posts[2].extra.discussion[1]
    # the roots (the group's copies of the posts) and the comments, all of the discussion chat
    assert sorted(group_docs) == sorted([root0, root2, *(m for m in group.history.ids if m not in (root0, root2))])
    assert group_docs[root0]["thread_root"] == root0 and group_docs[root0]["forwarded_from"]["msg_id"] == posts[0].id
    assert group_docs[first.id]["thread_root"] == root0 and group_docs[first.id]["reply_to"] == root0
    answer = next(d for d in group_docs.values() if d["text"] == "answering")
    assert answer["thread_root"] == root0 and answer["reply_to"] == first.id
    assert next(d for d in group_docs.values() if d["text"] == "me too")["thread_root"] == root2
    # members appear only as the author of what they wrote: public name and username
    assert group_docs[first.id]["sender"] == {"tg_id": carol.id, "name": "Carol", "username": "carol_c", "bot": False}
    assert Message.from_doc(group_docs[first.id]).sender == Sender(tg_id=carol.id, name="Carol", username="carol_c")
    channels = ChannelRepo(store)
    assert (await channels.get(f"id{ch.id}"))["latest"]["linked_chat_id"] == group.id
    group_doc = await channels.get(f"id{group.id}")
    assert group_doc is not None and group_doc["latest"]["linked_chat_id"] == ch.id
    thread_cp = await ingest.checkpoint(f"mtproto:id{ch.id}:comments:{posts[0].id}")
    assert thread_cp is not None and thread_cp.complete and thread_cp.newest_id == max(group.history.ids[:3])
    main_cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert main_cp is not None and not main_cp.extra.get("comments_pending")


async def test_a_rerun_reads_only_the_threads_with_new_comments(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = commented_channel(world, private_group=False)
    carol = world.add_user("Carol", username="carol_c")
    posts = [world.add_message(ch, f"post {i}") for i in range(1, 4)]
    for p in posts:
        X.add_comment(world, ch, p, f"on {p.id}", sender=carol)
    await Backfill(pool, ingest).run("leaks_chan")
    before = calls(world, functions.messages.GetRepliesRequest)

    late = X.add_comment(world, ch, posts[1], "a late comment", sender=carol)
    again = await Backfill(pool, ingest).run("leaks_chan")

    assert (again.threads, again.comments, again.stored.new) == (1, 1, 1)
    assert calls(world, functions.messages.GetRepliesRequest) - before == 1
    assert (await docs(store, f"id{group.id}"))[late.id]["text"] == "a late comment"


async def test_a_comment_thread_cut_by_an_error_resumes_where_it_stopped(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = commented_channel(world)
    carol = world.add_user("Carol", username="carol_c")
    post = world.add_message(ch, "a popular post")
    for i in range(250):
        X.add_comment(world, ch, post, f"comment {i}", sender=carol)
    # the second page of the thread fails once: the first page is stored with its checkpoint
    world.faults.add(
        "REPLIES_TEMPORARILY_UNAVAILABLE",
        request_type=functions.messages.GetRepliesRequest,
        predicate=lambda r: r.offset_id > 0,
    )
    first = await Backfill(pool, ingest, batch_size=100).run("leaks_chan")
    assert first.comments == 100
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}:comments:{post.id}")
    assert cp is not None and cp.walk_low is not None and not cp.complete
    main_cp = await ingest.checkpoint(f"mtproto:id{ch.id}")
    assert main_cp is not None and str(post.id) in main_cp.extra["comments_pending"]

    second = await Backfill(pool, ingest, batch_size=100).run("leaks_chan")

    assert second.comments == 150  # exactly the rest: nothing read twice, nothing skipped
    stored = await docs(store, f"id{group.id}")
    assert len(stored) == 251  # the root and every comment
    cp = await ingest.checkpoint(f"mtproto:id{ch.id}:comments:{post.id}")
    assert cp is not None and cp.complete and cp.walk_top is None


async def test_forum_topics_are_listed_and_each_message_names_its_topic(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    forum = world.add_channel("Swap forum", username="swap_forum", megagroup=True)
    dan = world.add_user("Dan", username="dan_d")
    general = world.add_message(forum, "hello all", sender=dan)
    links = X.add_topic(world, forum, "Links", creator=dan)
    chat = X.add_topic(world, forum, "Chat", creator=dan)
    a = X.add_topic_message(world, forum, links, "https://example.org/a", sender=dan)
    b = X.add_topic_message(world, forum, chat, "hi", sender=dan)
    c = X.add_topic_message(world, forum, links, "thanks", sender=dan, reply_to=a.id)

    result = await Backfill(pool, ingest).run("swap_forum")

    assert result.complete and result.topics == 2
    latest = (await ChannelRepo(store).get(f"id{forum.id}"))["latest"]
    assert latest["forum"] is True
    assert [(t["id"], t["title"]) for t in latest["topics"]] == [(chat.id, "Chat"), (links.id, "Links")]
    stored = await docs(store, f"id{forum.id}")
    assert (stored[a.id]["topic_id"], stored[a.id]["reply_to"]) == (links.id, None)  # in the topic, not a reply
    assert (stored[c.id]["topic_id"], stored[c.id]["reply_to"]) == (links.id, a.id)
    assert stored[b.id]["topic_id"] == chat.id and stored[general.id]["topic_id"] is None
    assert stored[links.id]["service"] == "TopicCreate"


async def test_a_public_group_is_read_without_joining(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    group = world.add_channel("Open group", username="open_group", megagroup=True)
    erin = world.add_user("Erin", username="erin_e")
    erin.last_name = "Example"
    m = world.add_message(group, "hello", sender=erin)

    result = await Backfill(pool, ingest).run("open_group")

    assert result.complete and not group.members  # nobody joined
    assert calls(world, functions.channels.JoinChannelRequest) == 0
    sender = (await docs(store, f"id{group.id}"))[m.id]["sender"]
    assert sender == {"tg_id": erin.id, "name": "Erin Example", "username": "erin_e", "bot": False}
    assert await ChannelRepo(store).get(f"id{erin.id}") is None  # no profile of the member is kept


async def test_reactions_buttons_pins_and_service_messages(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch = world.add_channel("Promo", username="promo_chan")
    post = world.add_message(ch, "new set")
    X.react(post, {"🔥": 12, 5_000_000_000_000_000_001: 3})
    X.add_buttons(post, [[("Get it", "https://t.me/promo_chan/1")], [("Vote", None)]])
    X.pin(post)
    pin_note = X.add_service(world, ch, types.MessageActionPinMessage())
    pin_note.reply_to = post.id
    retitled = X.add_service(world, ch, types.MessageActionChatEditTitle(title="Promo 2"))

    await Backfill(pool, ingest).run("promo_chan")

    stored = await docs(store, f"id{ch.id}")
    doc = stored[post.id]
    assert doc["reactions"] == [
        {"emoji": "🔥", "custom_emoji_id": None, "count": 12, "paid": False},
        {"emoji": None, "custom_emoji_id": "5000000000000000001", "count": 3, "paid": False},
    ]
    assert doc["buttons"] == [
        [{"text": "Get it", "url": "https://t.me/promo_chan/1", "kind": "url"}],
        [{"text": "Vote", "url": None, "kind": "callback"}],
    ]
    assert doc["pinned"] is True and stored[pin_note.id]["pinned"] is False
    assert (stored[pin_note.id]["service"], stored[pin_note.id]["reply_to"]) == ("PinMessage", post.id)
    assert stored[retitled.id]["service"] == "ChatEditTitle"


async def test_a_bot_found_in_a_button_is_tracked(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    X.add_bot(
        world,
        "Vault",
        "vault_dl_bot",
        description="Sends the files",
        commands=[("start", "begin"), ("get", "get a file")],
    )
    world.add_user("Not a bot", username="fake_robot")  # a person whose name merely ends in "bot"
    ch = world.add_channel("Teasers", username="teaser_chan")
    post: FakeMessage = world.add_message(ch, "full video: https://t.me/fake_robot")
    X.add_buttons(post, [[("Full video", "https://t.me/Vault_DL_bot?start=abc")]])

    result = await Backfill(pool, ingest).run("teaser_chan")

    assert result.bots == ["vault_dl_bot"]
    key = await ingest.resolve_channel(ChannelRef(username="vault_dl_bot"))
    assert key is not None
    latest = (await ChannelRepo(store).get(key))["latest"]
    assert (latest["kind"], latest["title"], latest["description"]) == ("bot", "Vault", "Sends the files")
    assert latest["bot_commands"] == [
        {"command": "start", "description": "begin"},
        {"command": "get", "description": "get a file"},
    ]
    assert await ingest.resolve_channel(ChannelRef(username="fake_robot")) is None  # a person: nothing kept
    full_user_calls = calls(world, functions.users.GetFullUserRequest)
    again = await Backfill(pool, ingest).run("teaser_chan")
    assert again.bots == [] and calls(world, functions.users.GetFullUserRequest) == full_user_calls


async def test_comments_topics_and_bots_can_be_switched_off(
    world: FakeTelegram, pool: AccountPool, ingest: Ingest, store: Store
) -> None:
    ch, group = commented_channel(world)
    post = world.add_message(ch, "post")
    X.add_buttons(post, [[("bot", "https://t.me/some_bot")]])
    X.add_comment(world, ch, post, "a comment", sender=world.add_user("Fay", username="fay_f"))
    forum = world.add_channel("Forum", username="a_forum", megagroup=True)
    X.add_topic(world, forum, "Topic")

    runner = Backfill(pool, ingest, comments=False, topics=False, bots=False)
    await runner.run("leaks_chan")
    await runner.run("a_forum")

    for request in (
        functions.messages.GetRepliesRequest,
        functions.messages.GetForumTopicsRequest,
        functions.users.GetFullUserRequest,
    ):
        assert calls(world, request) == 0, request.__name__
    assert await docs(store, f"id{group.id}") == {}


def test_the_cli_offers_the_reach_switches_and_the_bot_command() -> None:
    import subprocess
    import sys

    backfill = subprocess.run(
        [sys.executable, "-m", "crawler", "backfill", "--help"], capture_output=True, text=True, check=True
    )
    for switch in ("--no-comments", "--no-topics", "--no-bots"):
        assert switch in backfill.stdout
    bot = subprocess.run([sys.executable, "-m", "crawler", "bot", "--help"], capture_output=True, text=True, check=True)
    assert "Record bots" in bot.stdout


async def test_a_watched_channel_is_followed_with_its_comments_and_a_watched_forum_with_its_topics(
    world: FakeTelegram, ingest: Ingest, store: Store
) -> None:
    """Done-when of issue #19 item 3: no web preview is involved, only MTProto."""
    import asyncio

    from telegram_watch.entities import Target
    from telegram_watch.live import Watcher

    watcher_account = world.add_account("watcher")
    ch, group = commented_channel(world)
    forum = world.add_channel("Forum", username="watched_forum", megagroup=True)
    topic = X.add_topic(world, forum, "Links")
    world.join(watcher_account, ch)
    gina = world.add_user("Gina", username="gina_g")
    post = world.add_message(ch, "post")
    X.add_comment(world, ch, post, "early comment", sender=gina)
    pool = pool_over(world, watcher_account)
    watcher = Watcher(pool, ingest, [Target.parse("leaks_chan"), Target.parse("watched_forum")])
    try:
        await watcher.start()
        assert sorted(d["text"] for d in (await docs(store, f"id{group.id}")).values()) == ["early comment", "post"]
        latest = (await ChannelRepo(store).get(f"id{forum.id}"))["latest"]
        assert [t["title"] for t in latest["topics"]] == ["Links"] and topic.id in await docs(store, f"id{forum.id}")

        late = X.add_comment(world, ch, post, "late comment", sender=gina)
        world.post(ch, "next post")  # a live signal: the catch-up reads the new post and the new comment
        for _ in range(200):
            await asyncio.sleep(0.01)
            await watcher.drain()
            if late.id in await docs(store, f"id{group.id}"):
                break
        assert (await docs(store, f"id{group.id}"))[late.id]["thread_root"] == post.extra.discussion[1]
    finally:
        await watcher.stop()
        await pool.close()


def test_button_kinds_paid_reactions_and_bot_links_convert() -> None:
    from datetime import UTC, datetime

    from telegram_watch.bots import bot_username
    from telegram_watch.convert import convert_message

    msg = types.Message(
        id=7,
        peer_id=types.PeerChannel(42),
        date=datetime(2026, 1, 1, tzinfo=UTC),
        message="x",
        reactions=types.MessageReactions(results=[types.ReactionCount(reaction=types.ReactionPaid(), count=5)]),
        reply_markup=types.ReplyInlineMarkup(
            rows=[
                types.KeyboardInlineButtonRow(
                    buttons=[
                        types.KeyboardInlineButton(
                            text="App", type=types.InlineButtonTypeWebView(url="https://a.example/")
                        ),
                        types.KeyboardInlineButton(text="Share", type=types.InlineButtonTypeSwitchInline(query="q")),
                    ]
                )
            ]
        ),
    )
    record = convert_message(msg, ChannelRef(tg_id=42))
    assert [r.model_dump() for r in record.reactions] == [
        {"emoji": None, "custom_emoji_id": None, "count": 5, "paid": True}
    ]
    assert [(b.text, b.url, b.kind) for b in record.buttons[0]] == [
        ("App", "https://a.example/", "web_view"),
        ("Share", None, "switch_inline"),
    ]
    assert bot_username("https://t.me/Some_Bot?start=1") == "some_bot"
    assert bot_username("t.me/some_bot/app") == "some_bot"
    for not_a_bot in ("https://t.me/s/news_bot", "https://t.me/+abcdef", "https://example.org/x_bot", "t.me/robotics"):
        assert bot_username(not_a_bot) is None, not_a_bot
