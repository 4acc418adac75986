"""A fake Telegram for tests and benchmarks: real Telethon on top, no network underneath.

    world = FakeTelegram()
    alice = world.add_account("alice")
    news = world.add_channel("News", username="examplenews")
    world.add_message(news, "see https://example.org #tag")
    client = world.client(alice, flood_sleep_threshold=0)   # a real TelegramClient subclass
    await client.connect()
    async for m in client.iter_messages("examplenews", wait_time=0): ...

Where the seam is, and why there
--------------------------------
Telethon 1.45 talks to the network through one object, ``client._sender`` (an
``MTProtoSender``): ``send(request)`` returns a future resolved when the ``rpc_result``
arrives, and unsolicited ``Updates`` are put on ``client._updates_queue``, which the client's
real update loop (``_update_loop`` → ``MessageBox`` → ``_dispatch_update``) consumes. Replacing
that sender — and nothing above it — keeps every client method real: ``_call`` (its flood-wait
bookkeeping and ``flood_sleep_threshold``, entity caching in the session), ``connect`` (the
``initConnection``/``GetConfig`` handshake, ``get_me``, ``GetState``), ``is_user_authorized``,
``get_entity``, ``iter_messages``, ``get_messages``, ``download_media`` (chunked
``upload.getFile`` and Telethon's own file-reference refetch), event builders, gap detection and
``getChannelDifference`` catch-up.

Overridden, and nothing else:

* ``FakeTelegramClient.__init__`` — after the real ``__init__``, swaps ``self._sender`` for a
  :class:`FakeSender` (``MTProtoSender`` subclass). ``FakeSender`` overrides ``connect`` (keeps
  the ``Connection`` object it is given but never opens it; a session without an auth key gets
  a random one, as the DH exchange would produce), ``disconnect``, ``disconnected``,
  ``send`` (answers via :func:`handlers.answer`), ``_transport_connected`` and
  ``_keepalive_ping`` (no-op). RPC errors are built with Telethon's ``rpc_message_to_error``,
  results pass the real ``_store_own_updates``; with ``wire_roundtrip=True`` (default) every
  answer is serialized and parsed back with the request's own ``read_result``, so malformed
  TL objects fail here as they would on the wire.
* ``FakeTelegramClient._create_exported_sender`` — Telethon's body verbatim except that the
  borrowed sender for another data center is a ``FakeSender`` (media here lives in DC 2, the
  session's DC, so downloads normally never borrow one).

Which account a client is: the auth key. ``world.session_string(account)`` registers a fresh
key for the account and returns a ``StringSession`` string, so code that builds its clients
from session strings works unchanged; ``auth.sendCode``/``auth.signIn`` (code only, no 2FA)
bind a new key too. Access hashes are per account, as on Telegram.

Semantics worth knowing:

* ``messages.getHistory``: range ``min_id < id < max_id`` first, then offset/limit (see
  :meth:`model.History.slice`); ``limit`` is capped at 100.
* ``iter_messages`` sleeps 1 s between requests when ``limit > 3000`` unless ``wait_time=0``
  is passed — that is Telethon, not the fake.
* ``add_message``/``fill_history`` build history silently; ``post``/``edit``/``delete`` are
  live: they bump the channel pts and push updates to connected clients of member accounts.
* Telethon 1.45's ``MessageBox`` applies a channel difference's ``pts`` before its
  ``other_updates``, so edits and deletions *missed while disconnected* are dropped by the
  client; missed new messages are delivered. The fake answers as Telegram does.
* Banned (Telegram-blocked) channels resolve as ``restricted`` and reads raise
  ``ChannelBannedError``; kicked accounts and non-members of private channels get
  ``ChannelPrivateError``.
"""

from __future__ import annotations

from .client import FakeTelegramClient
from .entities import detect_entities, text_url
from .faults import FaultRule, Faults, RpcFault
from .handlers import UnsupportedRequest
from .model import FakeChannel, FakeChat, FakeFile, FakeInvite, FakeMessage, FakeUser, Forward, History
from .sender import FakeSender
from .world import FakeTelegram

__all__ = [
    "FakeChannel",
    "FakeChat",
    "FakeFile",
    "FakeInvite",
    "FakeMessage",
    "FakeSender",
    "FakeTelegram",
    "FakeTelegramClient",
    "FakeUser",
    "FaultRule",
    "Faults",
    "Forward",
    "History",
    "RpcFault",
    "UnsupportedRequest",
    "detect_entities",
    "text_url",
]
