"""Handlers for Telegram's in-app reports: ``messages.report`` (messages) and ``account.reportPeer``
(a whole channel). Every completed report is recorded in ``world.reports`` for tests to inspect.

``messages.report`` works as on Telegram since layer 184: asked with an empty option it answers a
menu (``ReportResultChooseOption``); a chosen menu entry either opens a sub-menu or asks for a
comment (``ReportResultAddComment``); the entry asked again with the comment is
``ReportResultReported``. The menu below follows the labels Telegram's apps show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telethon.tl import functions, types

from .dispatch import handles
from .faults import RpcFault
from .model import FakeChannel, FakeUser
from .read_handlers import input_channel, readable
from .world import FakeTelegram


@dataclass(frozen=True)
class _Entry:
    text: str
    children: tuple[bytes, ...] = ()


TITLE = "Report"
TOP: tuple[bytes, ...] = (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9")
MENU: dict[bytes, _Entry] = {
    b"1": _Entry("I don't like it"),
    b"2": _Entry("Child abuse"),
    b"3": _Entry("Violence"),
    b"4": _Entry("Illegal goods"),
    b"5": _Entry("Illegal adult content", (b"51", b"52", b"53", b"54", b"55")),
    b"6": _Entry("Personal data"),
    b"7": _Entry("Scam or spam"),
    b"8": _Entry("Copyright"),
    b"9": _Entry("Other"),
    b"51": _Entry("Child abuse"),
    b"52": _Entry("Illegal sexual services"),
    b"53": _Entry("Non-consensual sexual imagery"),
    b"54": _Entry("Pornography"),
    b"55": _Entry("Other"),
}


def _menu(title: str, keys: tuple[bytes, ...]) -> Any:
    return types.ReportResultChooseOption(
        title=title, options=[types.MessageReportOption(text=MENU[k].text, option=k) for k in keys]
    )


def _path(option: bytes) -> list[str]:
    """The menu texts leading to ``option`` (``b"53"`` → Illegal adult content / Non-consensual …)."""
    parent = next((k for k, e in MENU.items() if option in e.children), None)
    return [*(_path(parent) if parent else []), MENU[option].text]


def _channel(world: FakeTelegram, viewer: FakeUser, peer: Any) -> FakeChannel:
    if not isinstance(peer, types.InputPeerChannel):
        raise RpcFault("PEER_ID_INVALID")
    return readable(world, viewer, input_channel(world, viewer, peer))


@handles(functions.messages.ReportRequest)
def _report_messages(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _channel(world, viewer, req.peer)
    if not req.id:
        raise RpcFault("MESSAGE_ID_INVALID")
    option = bytes(req.option or b"")
    if not option:
        return _menu(TITLE, TOP)
    entry = MENU.get(option)
    if entry is None:
        raise RpcFault("OPTION_INVALID")
    if entry.children:
        return _menu(entry.text, entry.children)
    if not req.message:
        return types.ReportResultAddComment(option=option, optional=True)
    world.reports.append(
        {
            "kind": "messages.report",
            "account": viewer.username,
            "channel": ch.id,
            "ids": list(req.id),
            "option": _path(option),
            "message": req.message,
        }
    )
    return types.ReportResultReported()


@handles(functions.account.ReportPeerRequest)
def _report_peer(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    ch = _channel(world, viewer, req.peer)
    world.reports.append(
        {
            "kind": "account.reportPeer",
            "account": viewer.username,
            "channel": ch.id,
            "reason": type(req.reason).__name__,
            "message": req.message,
        }
    )
    return True
