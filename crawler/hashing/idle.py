"""A hash pool that exists only while there is media to hash.

Why: every crawling process (``tgwatch run`` and each ``tgwatch worker`` child) owns a
:class:`~crawler.hashing.pool.HashPool`, and each pool worker holds Pillow, NumPy, pdqhash and PyAV
(~65 MB resident). Media arrive in bursts — a channel's first crawl, then little — so between bursts
those workers sat idle and made up a third of the tree's memory (issue 17). This wrapper starts a
pool on the first file, and shuts it down (its workers exit) after ``idle_seconds`` without work; the
next file starts a fresh one, paying the process start once. The hashes are the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol

from crawler.hashing.pool import HashPool, MediaHashes


class MediaHasher(Protocol):
    """What the media stage needs of a hasher (``HashPool`` or ``IdleHashPool``)."""

    async def hash_media(self, data: bytes | Path, kind: str = "auto") -> MediaHashes: ...


class IdleHashPool:
    """``async with IdleHashPool(lambda: HashPool(...), idle_seconds=60) as pool: await pool.hash_media(data)``."""

    def __init__(self, make: Callable[[], HashPool], *, idle_seconds: float = 60.0) -> None:
        self._make = make
        self.idle_seconds = idle_seconds
        self._pool: HashPool | None = None
        self._busy = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: pools started so far (a test and the soak can see the pool come back after idling)
        self.started = 0

    @property
    def running(self) -> bool:
        return self._pool is not None

    async def hash_media(self, data: bytes | Path, kind: str = "auto") -> MediaHashes:
        self._cancel_timer()
        self._busy += 1
        try:
            if self._pool is None:
                self._pool = self._make()
                self.started += 1
            return await self._pool.hash_media(data, kind)
        finally:
            self._busy -= 1
            if self._busy == 0 and self._pool is not None:
                self._timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._close_idle)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_idle(self) -> None:
        self._timer = None
        if self._busy or self._pool is None:
            return
        pool, self._pool = self._pool, None
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(pool.close))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        self._cancel_timer()
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def __aenter__(self) -> IdleHashPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
