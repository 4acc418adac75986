"""Interrupted downloads and shared sessions: the faults large files and busy workers meet.

* :func:`tap_file_offsets` records the offset of every ``upload.getFile`` (which account asked is
  not known at this layer; the order is), so a test can assert where a download resumed.
* :func:`cut_download` answers the first ``upload.getFile`` at or past ``at_offset`` with a flood
  wait (``FLOOD_WAIT_N``) or by dropping the connection (the caller gets ``ConnectionError``, as
  when Telethon's sender runs out of reconnection attempts).
* :func:`duplicate_sessions` answers ``AUTH_KEY_DUPLICATED`` while one auth key is connected
  twice, as Telegram does when two processes use one session at once.
"""

from __future__ import annotations

from typing import Any

from telethon.tl import functions

from .faults import FaultRule
from .world import FakeTelegram

GetFile = functions.upload.GetFileRequest


def tap_file_offsets(world: FakeTelegram) -> list[int]:
    """Every ``upload.getFile`` offset from now on, in order (put the tap before any cut)."""
    offsets: list[int] = []

    def record(request: Any) -> bool:
        offsets.append(int(request.offset))
        return False

    world.faults.rules.insert(0, FaultRule("TAP", request_types=(GetFile,), predicate=record, times=None))
    return offsets


def cut_download(world: FakeTelegram, at_offset: int, *, flood_seconds: int | None = None, times: int = 1) -> FaultRule:
    """Interrupt a download when it reaches ``at_offset``: a flood wait, or a dropped connection."""

    def past(request: Any) -> bool:
        return int(request.offset) >= at_offset

    if flood_seconds is not None:
        return world.faults.add(f"FLOOD_WAIT_{flood_seconds}", request_type=GetFile, predicate=past, times=times)

    left = [times]

    def drop(request: Any) -> bool:
        if past(request) and left[0] > 0:
            left[0] -= 1
            raise ConnectionError("the fake Telegram dropped the connection mid-download")
        return False

    rule = FaultRule("DISCONNECT", request_types=(GetFile,), predicate=drop, times=None)
    world.faults.rules.append(rule)
    return rule


def duplicate_sessions(world: FakeTelegram) -> FaultRule:
    """``AUTH_KEY_DUPLICATED`` for every request while any auth key has two live connections."""

    def duplicated(request: Any) -> bool:
        keys = [getattr(getattr(s, "auth_key", None), "key", None) for s in world.sinks]
        live = [k for k in keys if k is not None]
        return len(live) != len(set(live))

    return world.faults.add("AUTH_KEY_DUPLICATED", predicate=duplicated, times=None)
