"""Handlers for reply threads and forums: ``messages.getReplies``, ``messages.getDiscussionMessage``
and ``messages.getForumTopics`` (how the threads look is described in ``extras``).

A broadcast channel's comments are read *through the channel*: ``getReplies(channel, post)``
answers with messages of the discussion group even when that group is private, as on Telegram.
"""

from __future__ import annotations

from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import messages as t_messages

from . import tl
from .dispatch import handles
from .extras import thread_ids
from .faults import RpcFault
from .model import FakeChannel, FakeMessage, FakeUser, History
from .read_handlers import _people, input_channel, readable
from .world import FakeTelegram


def _thread(world: FakeTelegram, viewer: FakeUser, peer: Any, msg_id: int) -> tuple[FakeChannel, int, FakeChannel]:
    """(chat holding the thread, root id, chat asked about) for a post, a group message or a topic."""
    if not isinstance(peer, types.InputPeerChannel):
        raise RpcFault("PEER_ID_INVALID")
    asked = readable(world, viewer, input_channel(world, viewer, peer))
    if asked.megagroup:
        if msg_id not in asked.history.by_id:
            raise RpcFault("MSG_ID_INVALID")
        return asked, msg_id, asked
    post = asked.history.by_id.get(msg_id)
    x = post.extra if post is not None else None
    if x is None or x.discussion is None:
        raise RpcFault("MSG_ID_INVALID")
    group, root = x.discussion
    return group, root, asked


def _chats(
    world: FakeTelegram, viewer: FakeUser, group: FakeChannel, asked: FakeChannel, extra: list[Any]
) -> list[Any]:
    out = [tl.channel(world, viewer, group)]
    if asked is not group:
        out.append(tl.channel(world, viewer, asked))
    seen = {group.id, asked.id}
    return out + [c for c in extra if c.id not in seen]


@handles(functions.messages.GetRepliesRequest)
def _get_replies(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    group, root, asked = _thread(world, viewer, req.peer, req.msg_id)
    thread = History()
    for i in thread_ids(group, root):
        thread.append(group.history.by_id[i])
    offset_date = int(req.offset_date.timestamp()) if req.offset_date else 0
    found = list(
        thread.slice(
            offset_id=req.offset_id,
            offset_date=offset_date,
            add_offset=req.add_offset,
            limit=min(req.limit, 100),
            max_id=req.max_id,
            min_id=req.min_id,
        )
    )
    users, chats = _people(world, viewer, found)
    return t_messages.ChannelMessages(
        pts=group.pts,
        count=len(thread),
        messages=[tl.message(group, m) for m in found],
        topics=[],
        chats=_chats(world, viewer, group, asked, chats),
        users=users,
    )


@handles(functions.messages.GetDiscussionMessageRequest)
def _get_discussion_message(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    group, root, asked = _thread(world, viewer, req.peer, req.msg_id)
    top: FakeMessage = group.history.by_id[root]
    ids = thread_ids(group, root)
    users, chats = _people(world, viewer, [top])
    return t_messages.DiscussionMessage(
        messages=[tl.message(group, top)],
        unread_count=0,
        chats=_chats(world, viewer, group, asked, chats),
        users=users,
        max_id=ids[-1] if ids else None,
    )


@handles(functions.messages.GetForumTopicsRequest)
def _get_forum_topics(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    """Topics newest first (by id here; Telegram orders by last activity), paged by ``offset_topic``."""
    if not isinstance(req.peer, types.InputPeerChannel):
        raise RpcFault("PEER_ID_INVALID")
    group = readable(world, viewer, input_channel(world, viewer, req.peer))
    if not group.forum:
        raise RpcFault("CHANNEL_FORUM_MISSING")
    ordered = sorted(group.topics, key=lambda t: t.id, reverse=True)
    if req.q:
        ordered = [t for t in ordered if req.q.lower() in t.title.lower()]
    if req.offset_topic:
        ordered = [t for t in ordered if t.id < req.offset_topic]
    page = ordered[: max(0, min(req.limit, 100))]
    topics, tops = [], []
    for t in page:
        ids = thread_ids(group, t.id)
        top = ids[-1] if ids else t.id
        if top in group.history.by_id:
            tops.append(group.history.by_id[top])
        topics.append(
            types.ForumTopic(
                id=t.id,
                date=tl.when(t.date),
                peer=types.PeerChannel(group.id),
                title=t.title,
                icon_color=t.icon_color,
                top_message=top,
                read_inbox_max_id=top,
                read_outbox_max_id=top,
                unread_count=0,
                unread_mentions_count=0,
                unread_reactions_count=0,
                unread_poll_votes_count=0,
                from_id=types.PeerUser(t.creator_id) if t.creator_id else types.PeerChannel(group.id),
                notify_settings=types.PeerNotifySettings(),
                closed=t.closed or None,
                pinned=t.pinned or None,
                hidden=t.hidden or None,
                icon_emoji_id=t.icon_emoji_id,
            )
        )
    users, chats = _people(world, viewer, tops)
    return t_messages.ForumTopics(
        count=len(group.topics),
        topics=topics,
        messages=[tl.message(group, m) for m in tops],
        chats=[tl.channel(world, viewer, group), *(c for c in chats if c.id != group.id)],
        users=users,
        pts=group.pts,
        order_by_create_date=True,
    )
