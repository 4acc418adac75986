"""The detached process that owns one nx-27017 server; run as ``python -m storage._supervisor``.

Why a separate process: the server must outlive the tgwatch process that happened to start it (a
second tgwatch may still be using it) yet never outlive the last user. The supervisor:

* detaches (new session, then a second fork so it is nobody's child and no zombie is left behind);
* starts nx-27017 on a private unix socket (``storage/_nx_27017_unix.py``; no TCP port), the child
  armed with ``PR_SET_PDEATHSIG=SIGKILL`` so it dies with the supervisor even on ``kill -9``;
* waits for a ``ping`` on that socket, writes ``state.json`` and reports ``ready`` (or ``failed``)
  on the status pipe the launcher gave it;
* polls the registered users every 0.5 s; when none is alive, it stops the server (SIGTERM, then
  SIGKILL after a grace period) under the lock, removes the state file and exits;
* on SIGTERM/SIGINT/SIGHUP it stops the server at once (the releasing launcher holds the lock and
  has already removed the state file).

It is self-contained on purpose (stdlib, bson, structlog): it lives as long as the server,
so it should stay small.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import IO, Any

import structlog

from foundation.child_processes import die_with_parent
from storage._embedded_state import (
    Layout,
    ServerState,
    live_users,
    locked,
    ping,
    process_start,
    read_state,
    try_lock,
    write_state,
)

POLL_SECONDS = 0.5
TICK_SECONDS = 0.05
STOP_GRACE_SECONDS = 5.0
LOG_ROTATE_BYTES = 16 * 2**20  # nx-27017 logs every connection; keep one previous file
#: ``--executable`` value meaning "nx-27017's handler on a unix socket, run by this Python"
BUILTIN_SERVER = "builtin:nx_27017_unix"

log = structlog.get_logger(__name__)


class StartFailed(Exception):
    """nx-27017 could not be brought to answer ``ping``."""


def rotate(path: Path) -> None:
    """Move a log past ``LOG_ROTATE_BYTES`` aside (``.1``) so restarts do not grow it without bound."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


class Supervisor:
    def __init__(self, layout: Layout, executable: str, start_timeout: float, status: IO[str] | None) -> None:
        self.layout = layout
        self.executable = executable
        self.start_timeout = start_timeout
        self.status = status
        self.stop_requested = False
        self.child: subprocess.Popen[bytes] | None = None
        self.pid = os.getpid()

    # -- status pipe to the launcher ---------------------------------------------------------

    def report(self, **event: Any) -> None:
        if self.status is None:
            return
        try:
            self.status.write(json.dumps(event) + "\n")
            self.status.flush()
        except OSError:  # the launcher gave up waiting; carry on, the state file is what counts
            self.status = None

    def close_status(self) -> None:
        if self.status is not None:
            with contextlib.suppress(OSError):
                self.status.close()
            self.status = None

    # -- lifecycle ---------------------------------------------------------------------------

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        self.report(event="forked", pid=self.pid)
        try:
            state = self.start()
        except StartFailed as exc:
            log.error("embedded server start failed", error=str(exc))
            self.stop_server()
            self.report(event="failed", error=str(exc))
            self.close_status()
            return 1
        write_state(self.layout.state, state)
        log.info("embedded server ready", server_pid=state.server_pid, socket=state.socket)
        self.report(event="ready", **asdict(state))
        self.close_status()
        return self.monitor()

    def start(self) -> ServerState:
        self.layout.server_pid_file.unlink(missing_ok=True)  # nx-27017 refuses a pid file naming a live pid
        self.layout.data_path.mkdir(parents=True, exist_ok=True)
        rotate(self.layout.server_log)
        socket_path = self.layout.socket
        program = [sys.executable, "-m", "storage._nx_27017_unix"]
        cmd = [
            *(program if self.executable == BUILTIN_SERVER else [self.executable]),
            "--data-dir", str(self.layout.data_path),
            "--unix-socket", str(socket_path),
            "-j", "WAL",
        ]  # fmt: skip
        with self.layout.server_log.open("ab") as server_log:
            try:
                self.child = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                    cwd=self.layout.control_dir,
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            except OSError as exc:
                raise StartFailed(f"cannot run {self.executable}: {exc}") from exc
        child = self.child
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.stop_requested:
                raise StartFailed("stop requested during start")
            code = child.poll()
            if code is not None:
                raise StartFailed(f"nx-27017 exited with code {code} during start")
            if socket_path.exists() and ping(socket_path, timeout=1.0):
                break
            if time.monotonic() >= deadline:
                raise StartFailed(f"nx-27017 did not answer ping within {self.start_timeout:g}s")
            time.sleep(TICK_SECONDS)
        server_start = process_start(child.pid)
        supervisor_start = process_start(self.pid)
        if server_start is None or supervisor_start is None:
            raise StartFailed("nx-27017 vanished right after answering ping")
        return ServerState(
            supervisor_pid=self.pid,
            supervisor_start=supervisor_start,
            server_pid=child.pid,
            server_start=server_start,
            socket=str(socket_path),
            data_path=str(self.layout.data_path),
            started_at=time.time(),
        )

    def monitor(self) -> int:
        assert self.child is not None
        next_check = 0.0
        while True:
            if self.stop_requested:
                log.info("embedded server stopping on request")
                self.stop_server()
                self.forget_state()
                return 0
            code = self.child.poll()
            if code is not None:
                log.warning("embedded server exited on its own", code=code)
                self.forget_state()
                return 1
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + POLL_SECONDS
                if not live_users(self.layout.users, prune=True) and self.stop_if_unused():
                    return 0
            time.sleep(TICK_SECONDS)

    def stop_if_unused(self) -> bool:
        """Under the lock (so no launcher is mid-way registering), stop when nobody is left."""
        fd = try_lock(self.layout.lock)
        if fd is None:
            return False  # a launcher is busy; look again on the next poll
        try:
            if live_users(self.layout.users, prune=True):
                return False
            log.info("no live user left; stopping embedded server")
            self.remove_state_if_ours()
            self.stop_server()
            return True
        finally:
            os.close(fd)

    def stop_server(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("embedded server ignored SIGTERM; killing it", server_pid=child.pid)
            child.kill()
            child.wait()
        log.info("embedded server stopped", server_pid=child.pid, code=child.returncode)

    def remove_state_if_ours(self) -> None:
        state = read_state(self.layout.state)
        if state is not None and state.supervisor_pid == self.pid:
            self.layout.state.unlink(missing_ok=True)

    def forget_state(self) -> None:
        """Remove our state file unless someone (the releasing launcher) already did."""
        state = read_state(self.layout.state)
        if state is None or state.supervisor_pid != self.pid:
            return
        with contextlib.suppress(TimeoutError), locked(self.layout.lock, timeout=1.0):
            self.remove_state_if_ours()


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage._supervisor", description=__doc__)
    parser.add_argument("--data-dir", required=True, type=Path, help="tgwatch's data_dir")
    parser.add_argument("--executable", required=True, help="the nx-27017 executable")
    parser.add_argument("--start-timeout", type=float, default=30.0)
    parser.add_argument("--status-fd", type=int, default=None, help="pipe to report forked/ready/failed on")
    args = parser.parse_args(argv)

    os.umask(0o077)  # logs, state and the server's files: owner only
    status = os.fdopen(args.status_fd, "w") if args.status_fd is not None else None
    if os.fork() > 0:
        os._exit(0)  # the launcher reaps this intermediate at once; the supervisor is adopted by init
    _configure_logging()
    layout = Layout.for_data_dir(args.data_dir)
    return Supervisor(layout, args.executable, args.start_timeout, status).run()


if __name__ == "__main__":
    sys.exit(main())
