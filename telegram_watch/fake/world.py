"""The fake Telegram world: accounts, channels, messages, media bytes, invites, live events.

Tests and benchmarks build a world with the methods here, then talk to it only through a
real ``TelegramClient`` (``world.client(account)``). Live changes (:meth:`FakeTelegram.post`,
:meth:`edit`, :meth:`delete`) bump the channel's ``pts`` and push real ``Update*`` objects to
the connected clients of accounts that joined the channel; a client that was not connected
gets them only by asking ``updates.getChannelDifference`` (Telethon's gap / catch-up path).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import types

from . import tl
from .entities import detect_entities
from .faults import Faults
from .model import (
    ChannelEvent,
    FakeChannel,
    FakeChat,
    FakeFile,
    FakeInvite,
    FakeMessage,
    FakeUser,
    Forward,
)

SERVER_IP = "149.154.167.51"  # Telethon's DEFAULT_IPV4_IP; stored in sessions, never dialled
SERVER_PORT = 443


class UpdateSink(Protocol):
    """A connected fake sender: who it is logged in as, and where updates go."""

    @property
    def account(self) -> FakeUser | None: ...

    def push(self, updates: Any) -> None: ...


class FakeTelegram:
    """An in-memory Telegram. See the package docstring for how clients attach to it."""

    def __init__(self, *, seed: str = "tgwatch", wire_roundtrip: bool = True, latency: float = 0.0) -> None:
        # wire_roundtrip: serialize every answer to bytes and parse it back with the request's
        # own read_result, as the real sender does: catches malformed TL objects early.
        self.seed = seed
        self.wire_roundtrip = wire_roundtrip
        self.latency = latency
        self.faults = Faults()
        self.clock: Callable[[], float] = time.time
        self.users: dict[int, FakeUser] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.chats: dict[int, FakeChat] = {}
        self.invites: dict[str, FakeInvite] = {}
        self.files: dict[tuple[str, int], FakeFile] = {}
        self.auth_keys: dict[bytes, int] = {}  # auth key → account id (an authorization)
        self.exported: dict[int, tuple[bytes, int]] = {}  # auth.exportAuthorization tokens
        self.calls: Counter[tuple[str, str]] = Counter()  # (account name, request type) → count
        self.log: deque[tuple[str, str]] = deque(maxlen=10_000)
        self.sinks: set[UpdateSink] = set()
        self.reports: list[dict[str, Any]] = []  # in-app reports received (fake/report_handlers.py)
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- identity helpers

    def now(self) -> int:
        return int(self.clock())

    def _new_id(self, base: int) -> int:
        return base + next(self._ids)

    def access_hash(self, kind: str, obj_id: int, viewer_id: int) -> int:
        """Per-account access hash, as on Telegram: a hash from one account fails on another."""
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{obj_id}:{viewer_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True)

    def can_see(self, viewer: FakeUser, ch: FakeChannel) -> bool:
        """Whether ``viewer`` may read ``ch`` (public, or joined; never after a kick)."""
        if viewer.id in ch.kicked:
            return False
        return not ch.private or viewer.id in ch.members

    # ----------------------------------------------------------------- building the world

    def add_account(
        self, name: str, *, phone: str | None = None, first_name: str | None = None, login_code: str = "12345"
    ) -> FakeUser:
        """A user account a client can log in as (``world.client(account)``)."""
        n = len(self.users) + 1
        account = FakeUser(
            id=self._new_id(500_000_000),
            first_name=first_name or name.title(),
            username=name,
            phone=phone or f"1555000{n:04d}",
            login_code=login_code,
        )
        self.users[account.id] = account
        return account

    def add_user(self, first_name: str, *, username: str | None = None, bot: bool = False) -> FakeUser:
        """A user that only appears as a message sender (megagroups) or forward source."""
        u = FakeUser(id=self._new_id(600_000_000), first_name=first_name, username=username, bot=bot)
        self.users[u.id] = u
        return u

    def add_channel(
        self,
        title: str,
        *,
        username: str | None = None,
        about: str = "",
        megagroup: bool = False,
        private: bool = False,
        participants: int = 0,
        signatures: bool = False,
        date: int | None = None,
    ) -> FakeChannel:
        """A broadcast channel (or a supergroup with ``megagroup=True``).

        Private channels have no username and are readable only after joining via an invite.
        """
        if private and username:
            raise ValueError("a private channel has no public username")
        ch = FakeChannel(
            id=self._new_id(1_000_000_000),
            title=title,
            date=self.now() if date is None else date,
            username=username,
            about=about,
            megagroup=megagroup,
            private=private,
            participants_count=participants,
            signatures=signatures,
        )
        self.channels[ch.id] = ch
        return ch

    def add_basic_group(self, title: str, *, migrated_to: FakeChannel | None = None, participants: int = 0) -> FakeChat:
        """A basic group; with ``migrated_to`` it is the deactivated pre-upgrade chat."""
        c = FakeChat(id=self._new_id(1_000), title=title, date=self.now(), participants_count=participants)
        self.chats[c.id] = c
        if migrated_to is not None:
            c.migrated_to = migrated_to
            migrated_to.migrated_from_chat_id = c.id
            migrated_to.migrated_from_max_id = c.history.top_id
        return c

    def add_invite(
        self,
        channel: FakeChannel,
        *,
        hash: str | None = None,
        expires: int | None = None,
        request_needed: bool = False,
        usage_limit: int | None = None,
    ) -> FakeInvite:
        """An invite link ``t.me/+HASH`` for ``channel``."""
        inv = FakeInvite(
            hash=hash or os.urandom(12).hex(),
            channel=channel,
            expires=expires,
            request_needed=request_needed,
            usage_limit=usage_limit,
        )
        self.invites[inv.hash] = inv
        return inv

    def join(self, account: FakeUser, channel: FakeChannel | FakeChat) -> None:
        """Make ``account`` a member (no request is involved; for test setup)."""
        if account.id not in channel.members:
            channel.members.add(account.id)
            channel.participants_count += 1

    def kick(self, account: FakeUser, channel: FakeChannel) -> None:
        """Ban ``account`` from ``channel``: from now on it gets CHANNEL_PRIVATE."""
        channel.members.discard(account.id)
        channel.kicked.add(account.id)

    def ban_channel(self, channel: FakeChannel, *, reason: str = "terms", text: str | None = None) -> None:
        """Telegram blocks the channel: it resolves as restricted, reads get CHANNEL_BANNED.

        The entity then carries ``RestrictionReason(platform="all", reason, text)``, the notice
        Telegram's apps show instead of the channel (``text`` defaults to the generic one).
        """
        channel.banned = True
        channel.ban_reason = reason
        if text is not None:
            channel.ban_text = text

    def change_username(self, channel: FakeChannel, new: str | None) -> None:
        """Rename: the old username stops resolving (USERNAME_NOT_OCCUPIED) and is freed."""
        if channel.username:
            channel.old_usernames.append(channel.username)
        channel.username = new

    # ----------------------------------------------------------------- media

    def _file(self, kind: str, **kwargs: Any) -> FakeFile:
        fid = self._new_id(7_000_000_000_000)
        f = FakeFile(
            kind=kind,
            id=fid,
            access_hash=self.access_hash(kind, fid, 0),
            file_reference=os.urandom(16),
            date=self.now(),
            **kwargs,
        )
        self.files[(kind, fid)] = f
        return f

    def photo(
        self, data: bytes, w: int, h: int, *, thumbs: dict[str, tuple[int, int, bytes]] | None = None
    ) -> FakeFile:
        """A photo whose largest size (``"y"``) is ``data``; ``thumbs`` adds smaller sizes."""
        sizes = dict(thumbs or {})
        sizes["y"] = (w, h, data)
        return self._file("photo", sizes=sizes, mime_type="image/jpeg")

    def document(
        self, data: bytes, mime_type: str, attributes: Iterable[Any] = (), *, file_name: str | None = None
    ) -> FakeFile:
        attrs = list(attributes)
        if file_name:
            attrs.append(types.DocumentAttributeFilename(file_name=file_name))
        return self._file("document", data=data, mime_type=mime_type, attributes=attrs)

    def video(
        self, data: bytes, *, duration: float, w: int, h: int, round: bool = False, file_name: str | None = None
    ) -> FakeFile:
        attr = types.DocumentAttributeVideo(
            duration=duration, w=w, h=h, round_message=round or None, supports_streaming=True
        )
        return self.document(data, "video/mp4", [attr], file_name=file_name)

    def gif(self, data: bytes, *, duration: float, w: int, h: int) -> FakeFile:
        """An animation: Telegram stores GIFs as silent MP4 with ``DocumentAttributeAnimated``."""
        attrs = [
            types.DocumentAttributeVideo(duration=duration, w=w, h=h, nosound=True),
            types.DocumentAttributeAnimated(),
        ]
        return self.document(data, "video/mp4", attrs, file_name="animation.gif.mp4")

    def voice(self, data: bytes, *, duration: int) -> FakeFile:
        return self.document(data, "audio/ogg", [types.DocumentAttributeAudio(duration=duration, voice=True)])

    def sticker(self, data: bytes, *, alt: str = "", w: int = 512, h: int = 512) -> FakeFile:
        attrs = [
            types.DocumentAttributeImageSize(w=w, h=h),
            types.DocumentAttributeSticker(alt=alt, stickerset=types.InputStickerSetEmpty()),
        ]
        return self.document(data, "image/webp", attrs, file_name="sticker.webp")

    def expire_file_reference(self, f: FakeFile) -> None:
        """Rotate the file reference: old references now get FILE_REFERENCE_EXPIRED."""
        f.file_reference = os.urandom(16)

    # ----------------------------------------------------------------- history

    def add_message(
        self,
        target: FakeChannel | FakeChat,
        text: str = "",
        *,
        entities: list[Any] | None = None,
        auto_entities: bool = True,
        date: int | None = None,
        media: FakeFile | None = None,
        fwd: Forward | None = None,
        reply_to: int | None = None,
        grouped_id: int | None = None,
        views: int | None = None,
        forwards: int | None = None,
        post_author: str | None = None,
        edit_date: int | None = None,
        sender: FakeUser | None = None,
        msg_id: int | None = None,
    ) -> FakeMessage:
        """Append a message to the history (setup: no pts bump, no update; see :meth:`post`)."""
        history = target.history
        if date is None:
            date = max(self.now(), history.dates[-1] if history.dates else 0)
        if entities is None and auto_entities and text:
            entities = detect_entities(text) or None
        is_broadcast = isinstance(target, FakeChannel) and not target.megagroup
        if views is None and is_broadcast:
            views = 0
        m = FakeMessage(
            msg_id or history.next_id,
            date,
            text,
            entities=entities,
            media=media,
            fwd=fwd,
            reply_to=reply_to,
            grouped_id=grouped_id,
            views=views,
            forwards=forwards,
            post_author=post_author,
            edit_date=edit_date,
            sender_id=sender.id if sender else None,
        )
        history.append(m)
        return m

    def fill_history(
        self,
        channel: FakeChannel,
        count: int,
        *,
        start_date: int = 1_600_000_000,
        step: int = 60,
        text: Callable[[int], str] | None = None,
    ) -> None:
        """Append ``count`` plain text messages cheaply (benchmarks: no entity detection)."""
        history = channel.history
        first = history.next_id
        date = max(start_date, history.dates[-1] if history.dates else 0)
        make = text or (lambda i: f"message {i}")
        views = 0 if not channel.megagroup else None
        for i in range(first, first + count):
            history.append(FakeMessage(i, date, make(i), views=views))
            date += step

    # ----------------------------------------------------------------- live events

    def _record(self, ch: FakeChannel, kind: str, pts_count: int, **kw: Any) -> ChannelEvent:
        ch.pts += pts_count
        ev = ChannelEvent(pts=ch.pts, pts_count=pts_count, kind=kind, date=self.now(), **kw)
        ch.events.append(ev)
        return ev

    def post(self, channel: FakeChannel, text: str = "", **kwargs: Any) -> FakeMessage:
        """A new message appears now: UpdateNewChannelMessage to connected members."""
        m = self.add_message(channel, text, **kwargs)
        self.announce(channel, m)
        return m

    def announce(self, channel: FakeChannel, m: FakeMessage) -> None:
        """Push a message already in the history as new (``post`` is add + announce; builders that
        decorate a message first, e.g. a live comment in ``extras``, announce it afterwards)."""
        ev = self._record(channel, "new", 1, msg_id=m.id)
        self._fan_out(channel, lambda: types.UpdateNewChannelMessage(tl.message(channel, m), ev.pts, 1))

    def edit(self, channel: FakeChannel, msg_id: int, text: str, *, entities: list[Any] | None = None) -> FakeMessage:
        """Edit a message now: UpdateEditChannelMessage with the new text and edit_date."""
        m = channel.history.by_id.get(msg_id)
        if m is None:
            raise KeyError(f"no message {msg_id} in channel {channel.id}")
        m.text = text
        m.entities = entities if entities is not None else (detect_entities(text) or None)
        m.edit_date = max(self.now(), m.date)
        ev = self._record(channel, "edit", 1, msg_id=m.id)
        self._fan_out(channel, lambda: types.UpdateEditChannelMessage(tl.message(channel, m), ev.pts, 1))
        return m

    def delete(self, channel: FakeChannel, ids: Iterable[int]) -> list[int]:
        """Delete messages now: UpdateDeleteChannelMessages (pts_count = number deleted)."""
        gone = [i for i in ids if channel.history.remove(i) is not None]
        if gone:
            ev = self._record(channel, "delete", len(gone), deleted_ids=gone)
            self._fan_out(channel, lambda: types.UpdateDeleteChannelMessages(channel.id, list(gone), ev.pts, len(gone)))
        return gone

    def _fan_out(self, channel: FakeChannel, make_update: Callable[[], Any]) -> None:
        for sink in list(self.sinks):
            account = sink.account
            if account is None or account.id not in channel.members or not self.can_see(account, channel):
                continue
            sink.push(
                types.Updates(
                    updates=[make_update()],
                    users=[],
                    chats=[tl.channel(self, account, channel)],
                    date=tl.when(self.now()),
                    seq=0,
                )
            )

    # ----------------------------------------------------------------- accounts & clients

    def authorize(self, account: FakeUser, key: bytes) -> None:
        self.auth_keys[key] = account.id

    def account_for_key(self, key: bytes | None) -> FakeUser | None:
        if key is None:
            return None
        account_id = self.auth_keys.get(key)
        return None if account_id is None else self.users[account_id]

    def session_string(self, account: FakeUser) -> str:
        """A Telethon ``StringSession`` logged in as ``account`` (a fresh authorization)."""
        key = os.urandom(256)
        self.authorize(account, key)
        session = StringSession()
        session.set_dc(tl.DC_ID, SERVER_IP, SERVER_PORT)
        session.auth_key = AuthKey(key)
        return session.save()

    def revoke(self, account: FakeUser) -> None:
        """Terminate every authorization of ``account``: AUTH_KEY_UNREGISTERED from now on."""
        for key in [k for k, v in self.auth_keys.items() if v == account.id]:
            del self.auth_keys[key]

    def deactivate(self, account: FakeUser) -> None:
        """Telegram bans the account: USER_DEACTIVATED_BAN on every request."""
        account.deactivated = True

    def client(self, account: FakeUser | None = None, **kwargs: Any) -> Any:
        """A real-code ``TelegramClient`` wired to this world (logged in when ``account``)."""
        from .client import FakeTelegramClient

        session = StringSession(self.session_string(account)) if account is not None else StringSession()
        return FakeTelegramClient(self, session, **kwargs)
