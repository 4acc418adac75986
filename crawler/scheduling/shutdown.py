"""Signals → a clean stop.

First SIGTERM/SIGINT sets ``stop``: schedulers stop creating tasks, workers claim nothing more and
give crawls in flight their grace period, child processes get SIGTERM. A second signal cancels the
main task (every ``finally`` still runs: crawls abandoned, tasks given back, children killed).
"""

from __future__ import annotations

import asyncio
import signal

from foundation.logs import get_logger

log = get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.received: list[str] = []
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> Shutdown:
        """Take over SIGTERM/SIGINT for the running task (replaces ``run_async``'s handler)."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in SIGNALS:
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def _on_signal(self, sig: signal.Signals) -> None:
        self.received.append(sig.name)
        if not self.stop.is_set():
            log.info("stopping: finishing work in flight (signal again to abandon it)", signal=sig.name)
            self.stop.set()
        elif self._task is not None:
            log.warning("second signal: abandoning work in flight", signal=sig.name)
            self._task.cancel()
