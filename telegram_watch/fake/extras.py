"""What a message carries beyond text and media: reply threads, forum topics, reactions, buttons,
pins and service actions; and the world builders that set them up.

Kept apart from ``model``/``world`` (which the other fake areas also grow) so that this reach —
discussion groups, forums, bots — is one module: ``FakeMessage.extra`` holds a
:class:`MessageExtra`, and ``tl.message`` hands a message that has one to :func:`decorate`.

How Telegram shapes these, and so the fake:

* A broadcast channel with comments has a *discussion group* (``linked_chat_id`` both ways).
  Each commented post is copied into the group (a forward of the post): that copy is the thread
  root; comments are group messages whose reply header points at it (``reply_to_top_id`` when they
  answer another comment). The post carries ``replies`` (count, ``max_id``, ``channel_id``).
* A forum supergroup's topic is opened by a ``messageActionTopicCreate`` service message whose id
  is the topic id; messages in it have ``forum_topic`` reply headers naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telethon.tl import types

from .model import FakeChannel, FakeChat, FakeMessage, FakeUser, Forward
from .world import FakeTelegram


@dataclass(eq=False)
class MessageExtra:
    thread_root: int | None = None  # a comment (or reply-thread message): its root's id in this chat
    topic_id: int | None = None  # a forum message: its topic
    discussion: tuple[FakeChannel, int] | None = None  # a channel post: (discussion group, root copy id)
    reactions: list[tuple[str | int, int]] = field(default_factory=list)  # (emoji or custom emoji id, count)
    buttons: list[list[tuple[str, str | None]]] = field(default_factory=list)  # rows of (text, url or None)
    pinned: bool = False
    action: Any = None  # a TL MessageAction: the message is a service message


@dataclass(eq=False)
class FakeTopic:
    id: int  # the id of the topic's creation message
    title: str
    date: int
    creator_id: int | None = None
    icon_color: int = 0x6FB9F0
    icon_emoji_id: int | None = None
    closed: bool = False
    pinned: bool = False
    hidden: bool = False


def extra(m: FakeMessage) -> MessageExtra:
    if m.extra is None:
        m.extra = MessageExtra()
    assert isinstance(m.extra, MessageExtra)
    return m.extra


def thread_ids(group: FakeChannel, root: int) -> list[int]:
    """Ids of the messages in ``root``'s thread (comments, or a forum topic), ascending."""
    out = []
    for i in group.history.ids:
        x = group.history.by_id[i].extra
        if i != root and x is not None and root in (x.thread_root, x.topic_id):
            out.append(i)
    return out


def _reaction(r: str | int) -> Any:
    return types.ReactionCustomEmoji(document_id=r) if isinstance(r, int) else types.ReactionEmoji(emoticon=r)


def _button(text: str, url: str | None) -> Any:
    kind = types.InlineButtonTypeUrl(url=url) if url else types.InlineButtonTypeCallback(data=text.encode()[:64])
    return types.KeyboardInlineButton(text=text, type=kind)


def decorate(target: FakeChannel | FakeChat, m: FakeMessage, msg: Any) -> Any:
    """``msg`` (the TL message built by ``tl.message``) with what ``m.extra`` adds."""
    x = m.extra
    header = msg.reply_to
    if x.topic_id is not None:
        to = m.reply_to or x.topic_id
        header = types.MessageReplyHeader(
            forum_topic=True, reply_to_msg_id=to, reply_to_top_id=x.topic_id if to != x.topic_id else None
        )
    elif x.thread_root is not None:
        to = m.reply_to or x.thread_root
        header = types.MessageReplyHeader(
            reply_to_msg_id=to, reply_to_top_id=x.thread_root if to != x.thread_root else None
        )
    if x.action is not None:
        return types.MessageService(
            id=m.id,
            peer_id=msg.peer_id,
            date=msg.date,
            action=x.action,
            from_id=msg.from_id,
            reply_to=header,
            post=msg.post,
            pinned=x.pinned or None,
        )
    msg.reply_to = header
    if x.reactions:
        msg.reactions = types.MessageReactions(
            results=[types.ReactionCount(reaction=_reaction(r), count=c) for r, c in x.reactions]
        )
    if x.buttons:
        msg.reply_markup = types.ReplyInlineMarkup(
            rows=[types.KeyboardInlineButtonRow(buttons=[_button(t, u) for t, u in row]) for row in x.buttons]
        )
    if x.pinned:
        msg.pinned = True
    if x.discussion is not None:
        group, root = x.discussion
        ids = thread_ids(group, root)
        msg.replies = types.MessageReplies(
            replies=len(ids), replies_pts=group.pts, comments=True, channel_id=group.id, max_id=ids[-1] if ids else None
        )
    return msg


# ------------------------------------------------------------------------ world builders


def link_discussion(channel: FakeChannel, group: FakeChannel) -> None:
    """Make ``group`` (a megagroup) the discussion group of ``channel``: posts get comments."""
    if channel.megagroup or not group.megagroup:
        raise ValueError("a broadcast channel links to a megagroup")
    channel.linked_chat_id = group.id
    group.linked_chat_id = channel.id


def discussion_root(world: FakeTelegram, channel: FakeChannel, post: FakeMessage) -> FakeMessage:
    """The group's copy of ``post`` (created on first use, as Telegram does when a post goes out)."""
    x = extra(post)
    if x.discussion is not None:
        group, root_id = x.discussion
        return group.history.by_id[root_id]
    if channel.linked_chat_id is None:
        raise ValueError(f"channel {channel.id} has no discussion group")
    group = world.channels[channel.linked_chat_id]
    root = world.add_message(
        group,
        post.text,
        media=post.media,
        fwd=Forward(date=post.date, from_channel_id=channel.id, channel_post=post.id),
        date=max(post.date, group.history.dates[-1] if group.history.dates else 0),
    )
    x.discussion = (group, root.id)
    return root


def add_comment(
    world: FakeTelegram,
    channel: FakeChannel,
    post: FakeMessage,
    text: str,
    *,
    sender: FakeUser,
    reply_to: int | None = None,
) -> FakeMessage:
    """A comment under ``post``: a message of the discussion group in the post's thread."""
    root = discussion_root(world, channel, post)
    group = world.channels[channel.linked_chat_id or 0]
    m = world.add_message(group, text, sender=sender, reply_to=reply_to)
    extra(m).thread_root = root.id
    return m


def post_comment(
    world: FakeTelegram,
    channel: FakeChannel,
    post: FakeMessage,
    text: str,
    *,
    sender: FakeUser,
    reply_to: int | None = None,
) -> FakeMessage:
    """A comment posted *now*: pushed live to the discussion group's connected members (and the
    group's copy of the post too, when this is the post's first comment and the copy is new)."""
    fresh = extra(post).discussion is None
    root = discussion_root(world, channel, post)
    group = world.channels[channel.linked_chat_id or 0]
    if fresh:
        world.announce(group, root)
    m = world.add_message(group, text, sender=sender, reply_to=reply_to)
    extra(m).thread_root = root.id
    world.announce(group, m)
    return m


def add_topic(world: FakeTelegram, group: FakeChannel, title: str, *, creator: FakeUser | None = None) -> FakeTopic:
    """Open a topic in a forum supergroup (its creation service message's id is the topic id)."""
    if not group.megagroup:
        raise ValueError("only supergroups are forums")
    group.forum = True
    m = world.add_message(group, "", sender=creator)
    extra(m).action = types.MessageActionTopicCreate(title=title, icon_color=0x6FB9F0)
    topic = FakeTopic(id=m.id, title=title, date=m.date, creator_id=creator.id if creator else None)
    group.topics.append(topic)
    return topic


def add_topic_message(
    world: FakeTelegram,
    group: FakeChannel,
    topic: FakeTopic,
    text: str,
    *,
    sender: FakeUser,
    reply_to: int | None = None,
    **kwargs: Any,
) -> FakeMessage:
    m = world.add_message(group, text, sender=sender, reply_to=reply_to, **kwargs)
    extra(m).topic_id = topic.id
    return m


def add_service(
    world: FakeTelegram, target: FakeChannel | FakeChat, action: Any, *, sender: FakeUser | None = None
) -> FakeMessage:
    """A service message (``action`` is a TL ``MessageAction*``), e.g. a pin or a title change."""
    m = world.add_message(target, "", sender=sender)
    extra(m).action = action
    return m


def react(m: FakeMessage, counts: dict[str | int, int]) -> None:
    """Set the reaction counts under ``m`` (a str is an emoji, an int a custom emoji document id)."""
    extra(m).reactions = list(counts.items())


def add_buttons(m: FakeMessage, rows: list[list[tuple[str, str | None]]]) -> None:
    """An inline keyboard under ``m``: rows of (text, url); url None makes a callback button."""
    extra(m).buttons = rows


def pin(m: FakeMessage) -> None:
    extra(m).pinned = True


def add_bot(
    world: FakeTelegram,
    first_name: str,
    username: str,
    *,
    description: str = "",
    about: str = "",
    commands: list[tuple[str, str]] | None = None,
) -> FakeUser:
    """A bot account others can resolve by username; ``users.getFullUser`` shows its bot info."""
    bot = world.add_user(first_name, username=username, bot=True)
    bot.bot_description = description
    bot.about = about
    bot.bot_commands = list(commands or [])
    return bot
