"""Comments and forum topics over MTProto: the requests, and the bookkeeping of which threads to read.

Comments. A broadcast channel with comments has a discussion group (``linked_chat_id``). Telegram
copies each post into that group; the copy is the *thread root* and the comments are group messages
answering it. They are read through the channel (``messages.getReplies(channel, post)``), which works
for anyone who can read the channel, even when the group itself is private, and stored as messages of
the discussion group with ``thread_root`` = the copy's id (the copy itself is stored too, from
``messages.getDiscussionMessage``, so the link back to the post is kept: its ``forwarded_from``).

Each thread has its own checkpoint, ``mtproto:id<channel>:comments:<post>``, walked exactly like a
history (``backfill._Walk``), so a cut run resumes inside the thread. Which threads to read: the history
walk notes every post that has comments in its own checkpoint (``extra["comments_pending"]``, post id →
the thread's newest comment id) together with the batch that read the post, so a crash between the
history and the comments loses nothing; every run also looks at the newest posts again (new comments
land mostly under recent posts). A thread is read only when its newest comment is past its checkpoint
(or its walk is unfinished). The pending list keeps the newest ``MAX_PENDING`` posts (one document stays
small; the rest are counted), and one thread's walk reads at most ``Backfill.max_thread_messages`` per
run, the rest on the next runs from the thread's checkpoint.

Forum topics. A forum supergroup's messages all live in its history, each with its ``topic_id``, so the
history walk (and its checkpoint) reads every topic's messages exactly; the topic list and metadata come
from ``messages.getForumTopics`` and are kept on the group's channel record (a list cut at
``MAX_TOPIC_PAGES`` pages says so in the record's ``notices``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

from foundation.models import Checkpoint, ForumTopic
from telegram_watch.convert import convert_topics
from telegram_watch.entities import Target, input_peer

PENDING = "comments_pending"
#: posts kept pending at most (the newest): the list lives in one checkpoint document, which must stay
#: far below MongoDB's 16 MB; how many older ones were given up is counted in ``DROPPED``
MAX_PENDING = 5000
DROPPED = "comments_dropped"
TOPIC_PAGE = 100
MAX_TOPIC_PAGES = 50  # 5,000 topics: a guard against a server that never ends the list


def thread_stream(channel_id: int | None, post_id: int) -> str:
    return f"mtproto:id{channel_id}:comments:{post_id}"


def commented_posts(msgs: Sequence[Any]) -> dict[str, int]:
    """Post id (as text: checkpoint keys) → newest comment id, for posts that have comments."""
    out: dict[str, int] = {}
    for m in msgs:
        replies = getattr(m, "replies", None)
        if isinstance(replies, types.MessageReplies) and replies.comments and replies.replies > 0:
            out[str(m.id)] = int(replies.max_id or 0)
    return out


def with_pending(checkpoint: Checkpoint, pending: dict[str, int], *, limit: int = MAX_PENDING) -> Checkpoint:
    """The checkpoint with ``pending`` as its pending threads, the newest ``limit`` posts of it.

    The posts left out are counted in ``extra[DROPPED]`` (a later run no longer reads their new
    comments unless they are among the newest posts again, which every run looks at)."""
    extra = {**checkpoint.extra, PENDING: pending}
    if len(pending) > limit:
        kept = sorted(pending, key=int, reverse=True)[:limit]
        extra[PENDING] = {p: pending[p] for p in kept}
        extra[DROPPED] = int(checkpoint.extra.get(DROPPED) or 0) + len(pending) - limit
    return checkpoint.model_copy(update={"extra": extra})


def dropped(checkpoint: Checkpoint | None) -> int:
    return int(checkpoint.extra.get(DROPPED) or 0) if checkpoint is not None else 0


def note_threads(checkpoint: Checkpoint, msgs: Sequence[Any], *, limit: int = MAX_PENDING) -> Checkpoint:
    """The checkpoint with this batch's commented posts added to the pending threads (capped)."""
    found = commented_posts(msgs)
    if not found:
        return checkpoint
    pending = dict(checkpoint.extra.get(PENDING) or {})
    for post, newest in found.items():
        pending[post] = max(newest, int(pending.get(post, 0)))
    return with_pending(checkpoint, pending, limit=limit)


def without_pending(checkpoint: Checkpoint, post: str) -> Checkpoint:
    pending = dict(checkpoint.extra.get(PENDING) or {})
    pending.pop(post, None)
    return checkpoint.model_copy(update={"extra": {**checkpoint.extra, PENDING: pending}})


async def fetch_replies(
    client: TelegramClient, target: Target, post_id: int, *, offset_id: int, floor: int, limit: int
) -> list[Any]:
    """One page of a post's comments (``messages.getReplies``), newest first, above ``floor``."""
    peer = await input_peer(client, target)
    page = await client.get_messages(peer, limit=limit, offset_id=offset_id, min_id=floor, reply_to=post_id)
    return list(page or [])


async def fetch_discussion_root(client: TelegramClient, target: Target, post_id: int) -> list[Any]:
    """The discussion group's copy of a post (``messages.getDiscussionMessage``), as Telethon messages."""
    peer = await input_peer(client, target)
    answer = await client(functions.messages.GetDiscussionMessageRequest(peer=peer, msg_id=post_id))
    entities = {_peer_id(x): x for x in [*answer.users, *answer.chats]}
    out = []
    for m in answer.messages:
        if isinstance(m, types.Message | types.MessageService):
            m._finish_init(client, entities, None)
            out.append(m)
    return out


def _peer_id(entity: Any) -> int:
    from telethon import utils

    return int(utils.get_peer_id(entity))


async def linked_chat(client: TelegramClient, target: Target) -> Any:
    """The discussion group entity of a channel (``channels.getFullChannel`` names it and sends it)."""
    peer = await input_peer(client, target)
    full = await client(functions.channels.GetFullChannelRequest(peer))
    linked = getattr(full.full_chat, "linked_chat_id", None)
    if linked is None:
        return None
    return next((c for c in full.chats if getattr(c, "id", None) == linked), None)


@dataclass(frozen=True)
class TopicList:
    topics: list[ForumTopic]
    #: False when the list was cut at ``max_pages`` (a notice on the channel record says so)
    ended: bool = True


async def fetch_topics(client: TelegramClient, target: Target, *, max_pages: int = MAX_TOPIC_PAGES) -> TopicList:
    """Every topic of a forum supergroup, paged the way Telegram pages them (date, top message, topic)."""
    peer = await input_peer(client, target)
    topics: list[ForumTopic] = []
    seen: set[int] = set()
    offset_date, offset_id, offset_topic = None, 0, 0
    for _ in range(max_pages):
        answer = await client(
            functions.messages.GetForumTopicsRequest(
                peer=peer, offset_date=offset_date, offset_id=offset_id, offset_topic=offset_topic, limit=TOPIC_PAGE
            )
        )
        page = [t for t in convert_topics(answer) if t.id not in seen]
        raw = [t for t in answer.topics if isinstance(t, types.ForumTopic)]
        topics.extend(page)
        seen.update(t.id for t in page)
        if not page or len(answer.topics) < TOPIC_PAGE or len(seen) >= answer.count:
            return TopicList(topics)
        last = raw[-1]
        offset_topic, offset_id = last.id, last.top_message
        top = next((m for m in answer.messages if getattr(m, "id", None) == last.top_message), None)
        offset_date = getattr(top, "date", None)
    return TopicList(topics, ended=False)
