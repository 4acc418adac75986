"""TL objects → tgwatch records: the only place that knows what a Telethon ``Message`` looks like.

Albums: the web preview shows a grouped album as ONE post carrying every photo/video, under the id
of its first message. MTProto returns one TL message per item sharing a ``grouped_id``. To keep one
record shape whatever the source, ``convert_messages`` merges each group into one ``Message`` with
the id of the group's lowest message id, the caption of the first part that has one, every part's
media in id order and the raw TL JSON of all parts (a list) as its evidence. Callers must hand over
whole groups (the backfill holds back a group cut by a batch boundary); ``split_incomplete_tail``
helps with that.

Evidence: each record keeps the TL object as JSON (bytes as base64, datetimes ISO 8601, keys sorted)
with its SHA-256 (``RawCapture.of("tl_json", ...)``), so what Telegram returned can be shown later.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from telethon.helpers import add_surrogate, del_surrogate
from telethon.tl import types
from telethon.tl.tlobject import TLObject

from foundation.models import (
    BotCommand,
    Button,
    Channel,
    ChannelRef,
    ChannelState,
    Counters,
    ForumTopic,
    ForwardInfo,
    LinkPreview,
    Location,
    MediaKind,
    MediaRef,
    Message,
    Poll,
    PollOption,
    RawCapture,
    Reaction,
    Sender,
    Source,
    utcnow,
)

DEFAULT_WEB_BASE = "https://t.me"


# --- raw evidence -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, TLObject):
        return value.to_dict()
    return repr(value)


def tl_json(obj: TLObject | Sequence[TLObject]) -> str:
    """Deterministic JSON of a TL object (or a list of them): same object, same bytes, same digest."""
    data = [o.to_dict() for o in obj] if isinstance(obj, list | tuple) else obj.to_dict()  # type: ignore[union-attr]
    return json.dumps(data, default=_json_default, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def raw_capture(obj: TLObject | Sequence[TLObject], *, request: str, fetched_at: datetime) -> RawCapture:
    return RawCapture.of("tl_json", tl_json(obj), request=request, fetched_at=fetched_at)


# --- text and entities --------------------------------------------------------------------------


def _entity_texts(text: str, entities: Iterable[Any]) -> list[tuple[Any, str]]:
    """Each entity with the text it covers (offsets are UTF-16 code units, hence the surrogates)."""
    wide = add_surrogate(text)
    return [(e, del_surrogate(wide[e.offset : e.offset + e.length])) for e in entities]


def text_features(text: str, entities: Sequence[Any] | None) -> tuple[list[str], list[str], list[str]]:
    """(links, mentions, hashtags) in order of appearance, without duplicates.

    Mentions are usernames without ``@`` (or ``id<N>`` for a mention of a user without username),
    hashtags without ``#``, both lower-cased as Telegram matches them case-insensitively.
    """
    links: dict[str, None] = {}
    mentions: dict[str, None] = {}
    hashtags: dict[str, None] = {}
    for entity, covered in _entity_texts(text, entities or ()):
        if isinstance(entity, types.MessageEntityUrl):
            links[covered] = None
        elif isinstance(entity, types.MessageEntityTextUrl):
            links[entity.url] = None
        elif isinstance(entity, types.MessageEntityMention):
            mentions[covered.lstrip("@").lower()] = None
        elif isinstance(entity, types.MessageEntityMentionName):
            mentions[f"id{entity.user_id}"] = None
        elif isinstance(entity, types.MessageEntityHashtag):
            hashtags[covered.lstrip("#").lower()] = None
    return list(links), list(mentions), list(hashtags)


# --- media --------------------------------------------------------------------------------------


def _file_locator(
    kind: str, obj: Any, *, channel_id: int | None, msg_id: int, thumb: str | None = None
) -> dict[str, Any]:
    """Enough to download the file again, and to refetch the message when its reference expires."""
    locator: dict[str, Any] = {
        "type": kind,
        "id": obj.id,
        "access_hash": obj.access_hash,
        "file_reference": base64.b64encode(obj.file_reference or b"").decode("ascii"),
        "dc_id": obj.dc_id,
        "channel_id": channel_id,
        "msg_id": msg_id,
    }
    if thumb is not None:
        locator["thumb_size"] = thumb
    return locator


def largest_photo_size(photo: types.Photo) -> tuple[str | None, int | None, int | None, int | None]:
    """(type, width, height, bytes) of the biggest size that has dimensions."""
    best: tuple[str | None, int | None, int | None, int | None] = (None, None, None, None)
    best_area = -1
    for size in photo.sizes:
        w, h = getattr(size, "w", None), getattr(size, "h", None)
        if w is None or h is None:
            continue  # stripped/path sizes are previews without dimensions
        if isinstance(size, types.PhotoSizeProgressive):
            nbytes: int | None = max(size.sizes) if size.sizes else None
        elif isinstance(size, types.PhotoCachedSize):
            nbytes = len(size.bytes)
        else:
            nbytes = getattr(size, "size", None)
        if w * h > best_area:
            best_area, best = w * h, (size.type, w, h, nbytes)
    return best


def photo_ref(photo: types.Photo, *, channel_id: int | None, msg_id: int) -> MediaRef:
    thumb, w, h, nbytes = largest_photo_size(photo)
    return MediaRef(
        kind=MediaKind.PHOTO,
        width=w,
        height=h,
        size=nbytes,
        mime="image/jpeg",
        locator=_file_locator("photo", photo, channel_id=channel_id, msg_id=msg_id, thumb=thumb),
    )


def document_ref(doc: types.Document, *, channel_id: int | None, msg_id: int) -> MediaRef:
    kind = MediaKind.DOCUMENT
    fields: dict[str, Any] = {}
    animated = False
    for attr in doc.attributes:
        if isinstance(attr, types.DocumentAttributeFilename):
            fields["file_name"] = attr.file_name
        elif isinstance(attr, types.DocumentAttributeVideo):
            kind = MediaKind.ROUND_VIDEO if attr.round_message else MediaKind.VIDEO
            fields.update(width=attr.w, height=attr.h, duration=float(attr.duration))
        elif isinstance(attr, types.DocumentAttributeAnimated):
            animated = True
        elif isinstance(attr, types.DocumentAttributeAudio):
            kind = MediaKind.VOICE if attr.voice else MediaKind.AUDIO
            fields["duration"] = float(attr.duration)
            if attr.title:
                fields["title"] = attr.title
        elif isinstance(attr, types.DocumentAttributeSticker):
            kind = MediaKind.STICKER
            fields["emoji"] = attr.alt or None
        elif isinstance(attr, types.DocumentAttributeImageSize):
            fields.setdefault("width", attr.w)
            fields.setdefault("height", attr.h)
    if animated and kind is not MediaKind.STICKER:
        kind = MediaKind.GIF
    return MediaRef(
        kind=kind,
        size=doc.size,
        mime=doc.mime_type,
        locator=_file_locator("document", doc, channel_id=channel_id, msg_id=msg_id),
        **fields,
    )


def _media_parts(msg: types.Message, channel_id: int | None) -> dict[str, Any]:
    """Record fields for one message's media: media refs, poll, location or link preview."""
    media = msg.media
    out: dict[str, Any] = {}
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        out["media"] = [photo_ref(media.photo, channel_id=channel_id, msg_id=msg.id)]
    elif isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        out["media"] = [document_ref(media.document, channel_id=channel_id, msg_id=msg.id)]
    elif isinstance(media, types.MessageMediaPoll):
        poll = media.poll
        question = getattr(poll.question, "text", poll.question)
        voters = {r.option: r.voters for r in (media.results.results or [])} if media.results else {}
        total = media.results.total_voters if media.results else None
        out["poll"] = Poll(
            question=str(question),
            options=[
                PollOption(text=str(getattr(a.text, "text", a.text)), voters=voters.get(a.option)) for a in poll.answers
            ],
            kind="quiz" if poll.quiz else ("public poll" if poll.public_voters else "anonymous poll"),
            voters=total,
        )
    elif isinstance(media, types.MessageMediaGeo | types.MessageMediaVenue | types.MessageMediaGeoLive):
        geo = media.geo
        out["location"] = Location(
            latitude=getattr(geo, "lat", None),
            longitude=getattr(geo, "long", None),
            title=getattr(media, "title", None),
            address=getattr(media, "address", None),
        )
    elif isinstance(media, types.MessageMediaWebPage) and isinstance(media.webpage, types.WebPage):
        page = media.webpage
        out["link_preview"] = LinkPreview(
            url=page.url, site=page.site_name, title=page.title, description=page.description
        )
    elif media is not None and not isinstance(media, types.MessageMediaEmpty):
        out["unknown"] = [type(media).__name__]
    return out


# --- messages -----------------------------------------------------------------------------------


def peer_channel_id(msg: Any) -> int | None:
    peer = getattr(msg, "peer_id", None)
    if isinstance(peer, types.PeerChannel):
        return int(peer.channel_id)
    if isinstance(peer, types.PeerChat):
        return int(peer.chat_id)
    return None


def permalink(ref: ChannelRef, msg_id: int, web_base: str = DEFAULT_WEB_BASE) -> str | None:
    if ref.username:
        return f"{web_base}/{ref.username}/{msg_id}"
    if ref.tg_id is not None:
        return f"{web_base}/c/{ref.tg_id}/{msg_id}"
    return None


def _forward(fwd: types.MessageFwdHeader | None) -> ForwardInfo | None:
    if fwd is None:
        return None
    channel_id = fwd.from_id.channel_id if isinstance(fwd.from_id, types.PeerChannel) else None
    name = fwd.from_name or fwd.post_author
    if name is None and isinstance(fwd.from_id, types.PeerUser):
        name = f"id{fwd.from_id.user_id}"
    date = fwd.date if fwd.date is None or fwd.date.tzinfo else fwd.date.replace(tzinfo=UTC)
    return ForwardInfo(name=name, channel_id=channel_id, msg_id=fwd.channel_post, date=date)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def reactions_of(msg: Any) -> list[Reaction]:
    """The reaction counts under a message (standard emoji, custom emoji, paid stars)."""
    results = getattr(getattr(msg, "reactions", None), "results", None) or []
    out: list[Reaction] = []
    for rc in results:
        r = rc.reaction
        if isinstance(r, types.ReactionEmoji):
            out.append(Reaction(emoji=r.emoticon, count=rc.count))
        elif isinstance(r, types.ReactionCustomEmoji):
            out.append(Reaction(custom_emoji_id=str(r.document_id), count=rc.count))
        elif isinstance(r, types.ReactionPaid):
            out.append(Reaction(paid=True, count=rc.count))
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _button(b: Any) -> Button:
    """Layer 229 buttons carry their behaviour in ``type`` (``InlineButtonTypeUrl`` …); older ones are
    classes of their own (``KeyboardButtonUrl`` …). Both give the text, the URL if any, and a kind."""
    kind_obj = getattr(b, "type", None) or b
    name = type(kind_obj).__name__
    for prefix in ("InlineButtonType", "ButtonType", "KeyboardButton"):
        name = name.removeprefix(prefix)
    return Button(text=str(getattr(b, "text", "")), url=getattr(kind_obj, "url", None), kind=_snake(name) or "text")


def buttons_of(msg: Any) -> list[list[Button]]:
    """The keyboard under a message, row by row; ``kind`` is the TL button type (``url``, ``callback`` …)."""
    markup = getattr(msg, "reply_markup", None)
    rows = getattr(markup, "rows", None) or []
    out: list[list[Button]] = []
    for row in rows:
        buttons = [_button(b) for b in row.buttons]
        if buttons:
            out.append(buttons)
    return out


def sender_of(msg: Any) -> Sender | None:
    """A group message's author: public display name and username only, when the message names a user.

    Channel posts (signed by ``post_author``) and anonymous admins carry no user, hence None.
    """
    from_id = getattr(msg, "from_id", None)
    if not isinstance(from_id, types.PeerUser):
        return None
    user = getattr(msg, "sender", None)  # Telethon's Message resolves it from the answer's users
    if not isinstance(user, types.User):
        return Sender(tg_id=from_id.user_id)
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or None
    return Sender(tg_id=user.id, name=name, username=user.username, bot=bool(user.bot))


def _thread_fields(reply: Any) -> dict[str, Any]:
    """reply_to / thread_root / topic_id from a reply header.

    In a forum a message posted straight into topic T has ``reply_to_msg_id == T`` and no top id:
    that is the topic, not a reply. Elsewhere ``reply_to_top_id`` names the root of a reply thread.
    """
    if not isinstance(reply, types.MessageReplyHeader):
        return {"reply_to": getattr(reply, "reply_to_msg_id", None)}
    top, to = reply.reply_to_top_id, reply.reply_to_msg_id
    if reply.forum_topic:
        return {"reply_to": to if top else None, "topic_id": top or to}
    return {"reply_to": to, "thread_root": top}


def convert_message(
    msg: types.Message | types.MessageService,
    ref: ChannelRef,
    *,
    fetched_at: datetime | None = None,
    request: str = "messages.getHistory",
    web_base: str = DEFAULT_WEB_BASE,
    thread_root: int | None = None,
) -> Message:
    """One TL message as one record (no album merging: see ``convert_messages``)."""
    fetched_at = fetched_at or utcnow()
    return _build([msg], ref, fetched_at=fetched_at, request=request, web_base=web_base, thread_root=thread_root)


def _build(
    parts: Sequence[types.Message | types.MessageService],
    ref: ChannelRef,
    *,
    fetched_at: datetime,
    request: str,
    web_base: str,
    thread_root: int | None = None,
) -> Message:
    parts = sorted(parts, key=lambda m: m.id)
    first = parts[0]
    captioned = next((p for p in parts if getattr(p, "message", None)), first)
    text = getattr(captioned, "message", None) or ""
    links, mentions, hashtags = text_features(text, getattr(captioned, "entities", None))
    channel_id = peer_channel_id(first)
    fields: dict[str, Any] = {"media": [], "unknown": []}
    for part in parts:
        if isinstance(part, types.Message):
            extra = _media_parts(part, channel_id)
            fields["media"].extend(extra.pop("media", []))
            fields["unknown"].extend(extra.pop("unknown", []))
            for key, value in extra.items():
                fields.setdefault(key, value)
    service = None
    if isinstance(first, types.MessageService):
        service = type(first.action).__name__.removeprefix("MessageAction")
    edit_dates = [d for d in (_aware(getattr(p, "edit_date", None)) for p in parts) if d is not None]
    views = [v for v in (getattr(p, "views", None) for p in parts) if v is not None]
    forwards = [v for v in (getattr(p, "forwards", None) for p in parts) if v is not None]
    thread = _thread_fields(getattr(first, "reply_to", None))
    if thread_root is not None:  # read as one thread: every message of it belongs to that root
        thread["thread_root"] = thread_root
        if thread.get("reply_to") is None and first.id != thread_root:
            thread["reply_to"] = thread_root
    via = getattr(first, "via_bot_id", None)
    grouped = getattr(first, "grouped_id", None)
    raw_obj: TLObject | list[TLObject] = list(parts) if len(parts) > 1 else first
    return Message(
        ref=ref,
        msg_id=first.id,
        source=Source.MTPROTO,
        date=_aware(first.date),
        permalink=permalink(ref, first.id, web_base),
        edited=bool(edit_dates),
        edit_date=max(edit_dates) if edit_dates else None,
        author=getattr(first, "post_author", None),
        text=text,
        links=links,
        mentions=mentions,
        hashtags=hashtags,
        views=max(views) if views else None,
        forwards=max(forwards) if forwards else None,
        forwarded_from=_forward(getattr(first, "fwd_from", None)),
        reactions=reactions_of(first),
        buttons=buttons_of(captioned),
        pinned=any(bool(getattr(p, "pinned", False)) for p in parts),
        sender=sender_of(first),
        via_bot=f"id{via}" if via else None,
        grouped_id=str(grouped) if grouped is not None else None,
        service=service,
        raw=raw_capture(raw_obj, request=request, fetched_at=fetched_at),
        **thread,
        **fields,
    )


def convert_messages(
    msgs: Iterable[Any],
    ref: ChannelRef,
    *,
    fetched_at: datetime | None = None,
    request: str = "messages.getHistory",
    web_base: str = DEFAULT_WEB_BASE,
    thread_root: int | None = None,
) -> list[Message]:
    """TL messages → records, one per message or per album (merged by ``grouped_id``).

    ``MessageEmpty`` (deleted ids in a range) is skipped. Output keeps the input's order of first
    appearance of each message/album.
    """
    fetched_at = fetched_at or utcnow()
    groups: dict[int, list[Any]] = {}
    order: list[tuple[str, Any]] = []
    for msg in msgs:
        if not isinstance(msg, types.Message | types.MessageService):
            continue
        gid = getattr(msg, "grouped_id", None)
        if gid is None:
            order.append(("one", msg))
        else:
            if gid not in groups:
                groups[gid] = []
                order.append(("group", gid))
            groups[gid].append(msg)
    return [
        _build(
            [item] if kind == "one" else groups[item],
            ref,
            fetched_at=fetched_at,
            request=request,
            web_base=web_base,
            thread_root=thread_root,
        )
        for kind, item in order
    ]


def split_incomplete_tail(msgs: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Split off the trailing messages of the album cut by a batch boundary.

    ``msgs`` are in walk order; the last message's album may continue in the next batch, so every
    message sharing its ``grouped_id`` at the end of the batch is held back. A batch made only of
    one album is returned whole (an album has at most 10 parts, batches are bigger).
    """
    if not msgs:
        return [], []
    gid = getattr(msgs[-1], "grouped_id", None)
    if gid is None:
        return list(msgs), []
    cut = len(msgs)
    while cut > 0 and getattr(msgs[cut - 1], "grouped_id", None) == gid:
        cut -= 1
    if cut == 0:
        return list(msgs), []
    return list(msgs[:cut]), list(msgs[cut:])


# --- channels -----------------------------------------------------------------------------------


def channel_ref(entity: Any) -> ChannelRef:
    username = getattr(entity, "username", None)
    if not username:
        names = getattr(entity, "usernames", None) or []
        active = [u.username for u in names if getattr(u, "active", False)]
        username = active[0] if active else None
    return ChannelRef(username=username or None, tg_id=int(entity.id))


def channel_kind(entity: Any) -> str:
    if isinstance(entity, types.Channel):
        return "megagroup" if entity.megagroup else ("gigagroup" if entity.gigagroup else "channel")
    if isinstance(entity, types.Chat):
        return "group"
    if isinstance(entity, types.User):
        return "bot" if entity.bot else "user"
    return type(entity).__name__.lower()


def convert_channel(
    entity: Any,
    *,
    full: Any = None,
    fetched_at: datetime | None = None,
    request: str = "channels.getFullChannel",
    topics: Sequence[ForumTopic] = (),
) -> Channel:
    """A channel header record from a resolved entity (and its full info when fetched)."""
    fetched_at = fetched_at or utcnow()
    full_chat = getattr(full, "full_chat", None)
    members = getattr(full_chat, "participants_count", None) or getattr(entity, "participants_count", None)
    kind = channel_kind(entity)
    counters = Counters(subscribers=members) if kind == "channel" else Counters(members=members)
    raw_obj = full if full is not None else entity
    return Channel(
        ref=channel_ref(entity),
        source=Source.MTPROTO,
        seen_at=fetched_at,
        title=getattr(entity, "title", None) or getattr(entity, "first_name", None),
        description=getattr(full_chat, "about", None),
        verified=bool(getattr(entity, "verified", False)),
        kind=kind,
        counters=counters,
        state=ChannelState.OK,
        raw=raw_capture(raw_obj, request=request, fetched_at=fetched_at),
        linked_chat_id=getattr(full_chat, "linked_chat_id", None),
        forum=bool(getattr(entity, "forum", False)),
        topics=list(topics),
    )


def convert_topics(answer: Any) -> list[ForumTopic]:
    """``messages.forumTopics`` → topic records (deleted topics are left out)."""
    out: list[ForumTopic] = []
    for t in getattr(answer, "topics", None) or []:
        if not isinstance(t, types.ForumTopic):
            continue
        out.append(
            ForumTopic(
                id=t.id,
                title=t.title,
                date=_aware(t.date),
                closed=bool(t.closed),
                pinned=bool(t.pinned),
                hidden=bool(t.hidden),
                icon_emoji_id=str(t.icon_emoji_id) if t.icon_emoji_id else None,
                top_message=t.top_message,
            )
        )
    return out


def convert_bot(user: Any, full: Any, *, fetched_at: datetime | None = None) -> Channel:
    """A bot as a channel-like record: its name, description ("what can this bot do?") and commands.

    ``full`` is ``users.userFull``; the bio (``about``) stands in when the bot has no description.
    """
    fetched_at = fetched_at or utcnow()
    full_user = getattr(full, "full_user", None)
    info = getattr(full_user, "bot_info", None)
    description = getattr(info, "description", None) or getattr(full_user, "about", None)
    commands = [BotCommand(command=c.command, description=c.description) for c in getattr(info, "commands", None) or []]
    return Channel(
        ref=channel_ref(user),
        source=Source.MTPROTO,
        seen_at=fetched_at,
        title=" ".join(p for p in (user.first_name, user.last_name) if p) or None,
        description=description,
        verified=bool(getattr(user, "verified", False)),
        kind="bot",
        state=ChannelState.OK,
        raw=raw_capture(full if full is not None else user, request="users.getFullUser", fetched_at=fetched_at),
        bot_commands=commands,
    )


def unavailable_channel(
    ref: ChannelRef, state: ChannelState, reason: str, *, seen_at: datetime | None = None
) -> Channel:
    """The record of a channel we could not read, with the clear state and the RPC that said so."""
    return Channel(ref=ref, source=Source.MTPROTO, seen_at=seen_at or utcnow(), state=state, state_reason=reason)
