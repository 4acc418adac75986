"""CPU-bound hashing off the event loop: a process pool sized to the cores, with back-pressure.

Decode + PDQ holds the GIL, so threads would not scale; processes do. Each submission carries its
payload (bytes or a path) to a worker, so the number in flight is bounded by a semaphore: a flood
of media waits at :meth:`HashPool.hash_media` instead of piling bytes up in the executor's queue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from crawler.hashing.digests import digest_bytes
from crawler.hashing.images import ImageLimits, PdqHash, hash_image
from crawler.hashing.sniff import media_kind, sniff
from crawler.hashing.video import FrameHash, VideoLimits, hash_video
from foundation.errors import MediaError, TooLarge, Undecodable


@dataclass(frozen=True)
class MediaHashes:
    """Everything hashing learnt about one media file. Digests are always set; PDQ only for images,
    ``frames`` only for videos (and animations); ``error`` says why perceptual hashing failed."""

    sha256: str
    md5: str
    size: int
    mime: str | None
    kind: str  # image | video | other
    pdq: PdqHash | None = None
    frames: tuple[PdqHash, ...] = ()
    video_frames: tuple[FrameHash, ...] = ()
    dihedral: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    error: MediaError | None = field(default=None, compare=False)


@dataclass(frozen=True)
class HashOptions:
    image: ImageLimits = field(default_factory=ImageLimits)
    video: VideoLimits = field(default_factory=VideoLimits)
    dihedral: bool = False
    max_bytes: int = 500 * 1024 * 1024


def hash_media_sync(data: bytes | Path, kind: str = "auto", options: HashOptions | None = None) -> MediaHashes:
    """Digests, sniffed type and perceptual hashes of one file, in this process.

    Never raises for bad media: the ``MediaError`` lands in ``error`` beside the digests.
    ``TooLarge`` for the byte cap is raised, because then nothing was read.
    """
    options = options or HashOptions()
    if isinstance(data, Path):
        size = data.stat().st_size
        if size > options.max_bytes:
            raise TooLarge(f"{data.name} is {size} bytes, cap is {options.max_bytes}")
        data = data.read_bytes()
    if len(data) > options.max_bytes:
        raise TooLarge(f"media is {len(data)} bytes, cap is {options.max_bytes}")
    digests = digest_bytes(data)
    mime = sniff(data[:64])
    if kind == "auto":
        kind = media_kind(mime)
    base = {"sha256": digests.sha256, "md5": digests.md5, "size": digests.size, "mime": mime, "kind": kind}
    try:
        if kind == "image":
            img = hash_image(data, options.image, dihedral=options.dihedral)
            return MediaHashes(
                **base,  # type: ignore[arg-type]
                pdq=img.pdq,
                frames=img.frames,
                dihedral=img.dihedral,
                width=img.width,
                height=img.height,
            )
        if kind == "video":
            return MediaHashes(**base, video_frames=tuple(hash_video(data, options.video)))  # type: ignore[arg-type]
    except MediaError as exc:
        return MediaHashes(**base, error=exc)  # type: ignore[arg-type]
    except Exception as exc:  # a decoder bug on hostile input must not kill the crawl
        return MediaHashes(**base, error=Undecodable(f"{type(exc).__name__}: {exc}"))  # type: ignore[arg-type]
    return MediaHashes(**base)  # type: ignore[arg-type]


def exit_with_process(pid: int) -> None:
    """Pool worker initializer: end this worker as soon as process ``pid`` (the pool's owner) ends.

    A pool worker blocks reading its call queue, whose write end it holds itself, so it never sees
    its owner die; it also holds the forkserver's "alive" pipe, and the forkserver holds the resource
    tracker's. A ``kill -9`` of the owner would leave all three running forever. A pidfd (or, without
    one, a once-a-second poll) on the owner ends the worker, and then the chain unwinds by itself.
    """
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)
    except (OSError, AttributeError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while _alive(pid):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name=f"exit-with-{pid}", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HashPool:
    """``async with HashPool() as pool: await pool.hash_media(data)``.

    ``workers`` defaults to the usable cores; ``max_in_flight`` (default ``2 × workers``) bounds the
    submissions holding payloads at once. ``workers=0`` hashes inline in the event loop's thread
    (for tools hashing a handful of files).
    """

    def __init__(
        self, workers: int | None = None, *, max_in_flight: int | None = None, options: HashOptions | None = None
    ) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.workers = cores if workers is None else workers
        self.max_in_flight = max_in_flight or max(1, 2 * self.workers)
        self.options = options or HashOptions()
        self._slots = asyncio.Semaphore(self.max_in_flight)
        # forkserver, not fork: the parent runs driver and event-loop threads, and forking a threaded
        # process can deadlock the child on a lock some other thread held
        self._executor = (
            ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=exit_with_process,
                initargs=(os.getpid(),),
            )
            if self.workers
            else None
        )
        self.in_flight = 0
        self.peak_in_flight = 0

    async def hash_media(self, data: bytes | Path, kind: str = "auto") -> MediaHashes:
        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                if self._executor is None:
                    return hash_media_sync(data, kind, self.options)
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, hash_media_sync, data, kind, self.options)
            finally:
                self.in_flight -= 1

    async def warm_up(self) -> None:
        """Start every worker now, so the first real files do not pay process start-up."""
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._executor, os.getpid) for _ in range(self.workers)))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> HashPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)
