"""The fake server: one function per TL request, answering with real TL objects.

``answer(world, auth_key, request)`` is the whole server. It unwraps the connection
wrappers (``invokeWithLayer``, ``initConnection``, ``invokeWithoutUpdates``), finds the
account the auth key is logged in as, applies scripted faults, then calls the handler.
Errors are raised as :class:`RpcFault` (a Telegram error message such as
``CHANNEL_PRIVATE``); the fake sender converts them into Telethon's own exception classes.

This module stays the import path for the server and exists to load every handler module:
handlers register themselves on import, so importing only ``dispatch`` would leave the
registry empty. The code lives in

* ``dispatch`` — the registry (:func:`handles`) and :func:`answer` / :func:`answer_with_key`;
* ``auth_handlers`` — ``help.getConfig`` and ``auth.*`` (login, logout, exported authorizations);
* ``read_handlers`` — input resolution, users and channels, history, files, updates;
* ``membership_handlers`` — invite links, joining and leaving;
* ``report_handlers`` — in-app reports (``messages.report``, ``account.reportPeer``);
* ``thread_handlers`` — comments (``messages.getReplies``/``getDiscussionMessage``) and forum topics;
* ``bot_handlers`` — ``users.getFullUser`` (bio, bot description and commands).
* ``account_handlers`` — frozen accounts and ``help.getAppConfig``; ``story_handlers`` — stories;
  ``discovery_handlers`` — channel recommendations and global search
  (``download_faults`` scripts interrupted downloads and duplicated sessions).
"""

from __future__ import annotations

from . import (  # noqa: F401  (register on import)
    account_handlers,
    auth_handlers,
    bot_handlers,
    discovery_handlers,
    membership_handlers,
    read_handlers,
    report_handlers,
    story_handlers,
    thread_handlers,
)
from .dispatch import Handler, UnsupportedRequest, answer, answer_with_key, handles

__all__ = [
    "Handler",
    "UnsupportedRequest",
    "answer",
    "answer_with_key",
    "auth_handlers",
    "bot_handlers",
    "handles",
    "membership_handlers",
    "read_handlers",
    "report_handlers",
    "thread_handlers",
]
