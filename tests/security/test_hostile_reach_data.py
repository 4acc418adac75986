"""#19 message fields against hostile data and evidence integrity: thousands of reactions, buttons or
bot commands stay bounded (and the cut is recorded), and an edited link button is a new version
whose old link stays in the version history (the evidence of which bot a post pointed at)."""

from __future__ import annotations

from datetime import UTC, datetime

from crawler.evidence.entries import record_bytes
from crawler.ingest import Ingest
from foundation.models import (
    MAX_BOT_COMMANDS,
    MAX_BUTTON_TEXT,
    MAX_BUTTONS,
    MAX_REACTIONS,
    BotCommand,
    Button,
    Channel,
    ChannelRef,
    Message,
    RawCapture,
    Reaction,
    Sender,
    Source,
)
from storage.client import Store
from storage.repos import MessageRepo

REF = ChannelRef(username="button_chan")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def post(buttons: list[list[Button]], **kw: object) -> Message:
    html = "<div>join</div>"
    return Message(
        ref=REF,
        msg_id=1,
        source=Source.WEB,
        date=T0,
        text="join",
        html=html,
        buttons=buttons,
        raw=RawCapture.of("html", html + str(buttons), url="http://sample/s/button_chan", fetched_at=T0),
        channel_key="button_chan",
        **kw,  # type: ignore[arg-type]
    )


async def test_an_edited_link_button_is_a_new_version_keeping_the_old_link(ingest: Ingest, store: Store) -> None:
    await ingest.submit([post([[Button(text="Get it", url="https://t.me/first_bot")]])])
    await ingest.submit([post([[Button(text="Get it", url="https://t.me/second_bot")]])])
    current = await MessageRepo(store).get("button_chan/1")
    assert current is not None and current["version"] == 2
    assert current["buttons"][0][0]["url"] == "https://t.me/second_bot"
    versions = await MessageRepo(store).versions("button_chan/1")
    assert [v["buttons"][0][0]["url"] for v in versions] == ["https://t.me/first_bot", "https://t.me/second_bot"]


def test_messages_without_link_buttons_keep_their_content_hash() -> None:
    """Stored messages must not all turn into new versions because the hash learned a new field."""
    plain = post([])
    callback_only = post([[Button(text="Vote", kind="callback")]])
    assert plain.content_hash() == callback_only.content_hash()
    assert plain.content_hash() == post([], reactions=[Reaction(emoji="👍", count=3)], pinned=True).content_hash()


def test_thousands_of_reactions_and_buttons_are_bounded_and_the_cut_is_recorded() -> None:
    reactions = [Reaction(custom_emoji_id=str(10**18 + i), count=i) for i in range(5000)]
    rows = [[Button(text=f"b{r}-{c}" * 1000, url=f"https://t.me/x{r}_bot") for c in range(8)] for r in range(1000)]
    msg = post(rows, reactions=reactions)
    assert len(msg.reactions) == MAX_REACTIONS
    assert sum(len(r) for r in msg.buttons) == MAX_BUTTONS
    assert all(len(b.text) <= MAX_BUTTON_TEXT for r in msg.buttons for b in r)
    assert any(n.startswith("reactions: 5000 kinds") for n in msg.notices)
    assert any(n.startswith("buttons: 8000 in 1000 rows") for n in msg.notices)
    again = Message.from_doc(msg.to_doc())  # a stored record reads back without a second notice
    assert again.notices == msg.notices and again.content_hash() == msg.content_hash()


def test_a_bot_with_thousands_of_commands_is_bounded() -> None:
    commands = [BotCommand(command=f"c{i}", description="d" * 100_000) for i in range(10_000)]
    bot = Channel(
        ref=ChannelRef(username="huge_bot"), source=Source.MTPROTO, seen_at=T0, kind="bot", bot_commands=commands
    )
    assert len(bot.bot_commands) == MAX_BOT_COMMANDS
    assert all(len(c.description) <= 1024 for c in bot.bot_commands)


def test_every_new_message_field_goes_into_the_ledger_canonical_form() -> None:
    """Huge Telegram ids (custom emoji, senders) must canonicalize: JCS refuses ints past 2**53."""
    msg = post(
        [[Button(text="go", url="https://t.me/go_bot", kind="url")]],
        reactions=[Reaction(custom_emoji_id=str(2**63 - 1), count=2**60), Reaction(paid=True, count=1)],
        sender=Sender(tg_id=2**60, name="n", username="u"),
        thread_root=2**62,
        topic_id=7,
        pinned=True,
        author_username="u",
    )
    data, digest = record_bytes(msg.to_doc())
    assert b'"1152921504606846976"' in data and len(digest) == 64
