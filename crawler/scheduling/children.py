"""Child ``tgwatch worker`` processes of ``tgwatch run --workers N``.

No cluster manager: just N local worker processes, each a full ``tgwatch worker`` claiming from the
same queue. On Linux each child asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), so even a ``kill -9`` of the parent leaves no orphan crawling on; a clean
stop sends SIGTERM, waits for the grace period, then SIGKILLs what is left and reaps everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

from foundation.child_processes import die_with_parent
from foundation.logs import get_logger

log = get_logger(__name__)

#: what a child may take beyond ``--grace`` to stop cleanly before it is killed: after the grace it
#: cancels its crawls, and a Scrapy spider may take up to ``spiders.runner.STOP_SPIDER_SECONDS``
#: (15 s) to stop, then the task is given back; killed sooner, it leaves its task leased until the
#: lease runs out (on a loaded machine a child took well over the old 5 s)
STOP_SLACK_SECONDS = 20.0


class Children:
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, n: int) -> None:
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(*self.argv, preexec_fn=die_with_parent(signal.SIGTERM))
            self.procs.append(proc)
            log.info("worker process started", pid=proc.pid)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @staticmethod
    def _kill(procs: list[asyncio.subprocess.Process]) -> None:
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()

    async def stop(self, grace: float) -> None:
        """SIGTERM every child, wait ``grace`` seconds, SIGKILL the rest; always reaps them all."""
        alive = [p for p in self.procs if p.returncode is None]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        if alive:
            done = asyncio.gather(*(p.wait() for p in alive))
            try:
                await asyncio.wait_for(asyncio.shield(done), grace)
            except TimeoutError:
                self._kill(alive)
                await done
            except asyncio.CancelledError:
                self._kill(alive)
                await asyncio.shield(done)
                raise
        for p in self.procs:
            log.info("worker process stopped", pid=p.pid, returncode=p.returncode)
