"""The embedded MongoDB-compatible store: nx-27017 started (or reused) for a tgwatch ``data_dir``.

With no MongoDB URI configured, tgwatch keeps its data in nx-27017 (a wire-protocol server on
SQLite). Three properties matter, and the design follows from them:

* **One server per data directory.** Several tgwatch processes may share a ``data_dir``; the second
  one reuses the running server instead of opening the same SQLite files twice. Decisions to start,
  reuse or stop are serialized by an ``flock``; the running server is recorded in a state file that
  is trusted only when both recorded processes are still the same processes (pid *and* start time,
  so a pid reused after ``kill -9`` is not mistaken for ours) and the server answers ``ping``.
* **Never an orphan.** The server is owned by a small detached supervisor
  (``storage/_supervisor.py``), not by whichever tgwatch process started it. Users register a file
  each; the supervisor stops the server once no registered user is alive, however they ended
  (clean exit, SIGTERM, ``kill -9``). The server dies with the supervisor (``PR_SET_PDEATHSIG``).
* **Private.** nx-27017 has no authentication, so it listens on a unix socket in the 0700
  ``data_dir/embedded`` (never on TCP) and every file under ``data_dir`` is owner-only; see
  ``storage/private.py``.
* **Same address after a restart.** The socket path depends only on ``data_dir``, so when a
  long-running process brings a dead server back (``ensure_running``) its driver reconnects by itself.
* **Fast clean stop.** The last user to ``release`` stops the server itself, under the lock, and
  waits until it is gone, so a following start never overlaps a server still shutting down.

The API is synchronous: it is called before the event loop runs, or via ``asyncio.to_thread``.
"""

from __future__ import annotations

import atexit
import importlib.util
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import structlog

from foundation.errors import StoreError
from storage._embedded_state import (
    Layout,
    ServerState,
    live_users,
    locked,
    log_tail,
    ping,
    process_start,
    read_state,
    register_user,
    same_process,
    signal_if_same,
    wait_gone,
)
from storage._supervisor import BUILTIN_SERVER, STOP_GRACE_SECONDS

REUSE_PATIENCE_SECONDS = 15.0  # how long a live but silent server may take to answer before it is replaced
_PROJECT_ROOT = Path(__file__).resolve().parents[1]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``tgwatch db status`` shows about the embedded server."""

    running: bool
    pid: int | None  # the nx-27017 server
    socket: str | None
    uri: str | None
    users: list[int]  # live registered tgwatch pids
    data_path: Path
    log_path: Path
    supervisor_pid: int | None = None


class EmbeddedStore:
    """Start or reuse the nx-27017 server for ``data_dir``; stop it when its last user leaves."""

    def __init__(self, data_dir: Path, *, start_timeout: float = 30.0, executable: str | None = None) -> None:
        self.layout = Layout.for_data_dir(Path(data_dir))
        self.start_timeout = start_timeout
        self.executable = executable
        self._token = secrets.token_hex(6)
        self._user_file: Path | None = None
        self._owner_pid: int | None = None
        self._uri: str | None = None

    @property
    def uri(self) -> str | None:
        """The server URI while acquired, else None."""
        return self._uri

    @property
    def _lock_timeout(self) -> float:
        # long enough for another process to finish a full start or stop
        return self.start_timeout + REUSE_PATIENCE_SECONDS + 3 * STOP_GRACE_SECONDS + 30

    # -- public API --------------------------------------------------------------------------

    def acquire(self) -> str:
        """Register this process as a user, start or reuse the server, return its URI."""
        if self._uri is not None:
            return self._uri
        executable = self.find_executable()
        try:
            self.layout.ensure()
            with self._locked():
                self._user_file = register_user(self.layout.users, self._token)
                self._owner_pid = os.getpid()
                try:
                    state, reused = self._reusable(), True
                    if state is None:
                        state, reused = self._start(executable), False
                except BaseException:
                    self._unregister()
                    raise
        except OSError as exc:
            raise StoreError(f"embedded store under {self.layout.data_dir}: {exc}") from exc
        self._uri = state.uri
        atexit.register(self.release)
        log.info(
            "embedded store acquired",
            uri=state.uri,
            reused=reused,
            server_pid=state.server_pid,
            data_path=state.data_path,
        )
        return state.uri

    def release(self) -> None:
        """Unregister; the last live user stops the server and waits until it is gone."""
        if self._user_file is None:
            return
        atexit.unregister(self.release)
        if self._owner_pid != os.getpid():  # a forked child inherited us: the registration is the parent's
            self._user_file = self._uri = self._owner_pid = None
            return
        self._uri = None
        try:
            with self._locked():
                self._unregister()
                others = live_users(self.layout.users, prune=True)
                if others:
                    log.info("embedded store released; server kept for other users", users=others)
                    return
                state = read_state(self.layout.state)
                self.layout.state.unlink(missing_ok=True)
                if state is not None:
                    self._stop(state)
                    log.info("embedded server stopped by last user", server_pid=state.server_pid)
        except OSError as exc:
            raise StoreError(f"releasing embedded store under {self.layout.data_dir}: {exc}") from exc
        finally:
            # even when the lock could not be had: a vanished registration is what the supervisor
            # watches for, so the server still stops once every user is gone
            self._unregister()

    def ensure_running(self) -> bool:
        """Bring the server back if it died while we use it; True when this call started a new one.

        For long-running processes (``serve``, ``run``, ``worker``), called every second or so.
        The new server listens on the same socket path, so drivers connected to the dead one
        reconnect by themselves. Cheap when all is well: two ``/proc`` reads, no lock, no ping.
        """
        if self._uri is None or self._owner_pid != os.getpid():
            return False
        state = read_state(self.layout.state)
        if state is not None and all(same_process(pid, start) for pid, start in state.processes()):
            return False
        executable = self.find_executable()
        try:
            self.layout.ensure()
            with self._locked():
                if self._uri is None:  # released meanwhile (shutting down): leave it stopped
                    return False
                if self._user_file is None or not self._user_file.exists():
                    self._user_file = register_user(self.layout.users, self._token)
                state = self._reusable()  # another user may have brought it back already
                if state is not None:
                    return False
                state = self._start(executable)
        except OSError as exc:
            raise StoreError(f"restarting the embedded store under {self.layout.data_dir}: {exc}") from exc
        if state.uri != self._uri:  # never expected: the socket path depends only on data_dir
            log.error("restarted embedded server listens elsewhere; reopen the store", uri=state.uri)
        log.warning("embedded server was gone; started it again", server_pid=state.server_pid, socket=state.socket)
        return True

    def status(self) -> EmbeddedStatus:
        """A read-only look (no lock): is the recorded server alive and answering, and who uses it."""
        state = read_state(self.layout.state)
        running = state is not None and self._healthy(state)
        return EmbeddedStatus(
            running=running,
            pid=state.server_pid if state and running else None,
            socket=state.socket if state and running else None,
            uri=state.uri if state and running else None,
            users=live_users(self.layout.users, prune=False),
            data_path=self.layout.data_path,
            log_path=self.layout.server_log,
            supervisor_pid=state.supervisor_pid if state and running else None,
        )

    def __enter__(self) -> EmbeddedStore:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def find_executable(self) -> str:
        """The configured executable (given ``--data-dir``, ``--unix-socket``, ``-j``), else the
        built-in unix-socket server over the installed nx_27017 package."""
        if self.executable is not None:
            found = shutil.which(self.executable)
            if found is None:
                raise StoreError(f"embedded store executable {self.executable!r} not found or not executable")
            return found
        if importlib.util.find_spec("nx_27017") is None:
            raise StoreError(
                f"the nx-27017 package is not installed for {sys.executable}; install it or configure mongodb_uri"
            )
        return BUILTIN_SERVER

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with locked(self.layout.lock, self._lock_timeout):
                yield
        except TimeoutError as exc:
            raise StoreError(f"embedded store busy: {exc}") from exc

    def _unregister(self) -> None:
        if self._user_file is not None:
            self._user_file.unlink(missing_ok=True)
        self._user_file = self._owner_pid = None

    @staticmethod
    def _healthy(state: ServerState, *, patience: float = 2.0) -> bool:
        """Both recorded processes are still themselves and the server answers ``ping``.

        nx-27017 serves from one event loop, so a long operation by another user can delay the
        answer: a server whose processes are verified alive gets ``patience`` seconds of retries
        before it is judged hung (and then replaced).
        """
        deadline = time.monotonic() + patience
        while True:
            if not (
                same_process(state.supervisor_pid, state.supervisor_start)
                and same_process(state.server_pid, state.server_start)
            ):
                return False
            if ping(state.socket, timeout=max(0.2, min(2.0, deadline - time.monotonic()))):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _reusable(self) -> ServerState | None:
        """The running server if the state file is trustworthy; a stale one is cleaned away."""
        state = read_state(self.layout.state)
        if state is not None and self._healthy(state, patience=REUSE_PATIENCE_SECONDS):
            return state
        if state is not None or self.layout.state.exists():
            log.warning("stale embedded server state replaced", state_file=str(self.layout.state))
            self.layout.state.unlink(missing_ok=True)
            if state is not None:
                self._stop(state)
        return None

    def _stop(self, state: ServerState) -> None:
        """Stop the recorded supervisor and server, never signalling a process that merely reuses a pid."""
        procs = state.processes()
        # the supervisor stops its server (SIGTERM, then SIGKILL); without it, go to the server directly
        if not signal_if_same(state.supervisor_pid, state.supervisor_start, signal.SIGTERM):
            signal_if_same(state.server_pid, state.server_start, signal.SIGTERM)
        if wait_gone(procs, STOP_GRACE_SECONDS + 3):
            return
        log.warning("embedded server did not stop in time; killing it", server_pid=state.server_pid)
        for pid, start in procs:
            signal_if_same(pid, start, signal.SIGKILL)
        if not wait_gone(procs, 5):
            raise StoreError(f"embedded server (pid {state.server_pid}) would not die")

    def _kill_strays(self) -> None:
        """Kill any nx-27017 still serving our files without a state file (never expected; cheap insurance)."""
        wanted = str(self.layout.data_path)
        strays: list[psutil.Process] = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd: list[str] = proc.info.get("cmdline") or []
            if any(a == "--data-dir" and b == wanted for a, b in itertools.pairwise(cmd)):
                strays.append(proc)
        for proc in strays:
            log.warning("killing stray embedded server", pid=proc.pid)
            try:
                proc.kill()
            except psutil.Error:
                continue
        psutil.wait_procs(strays, timeout=5)

    def _start(self, executable: str) -> ServerState:
        """Launch the supervisor (which launches nx-27017) and wait for its ``ready``."""
        self._kill_strays()
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable, "-m", "storage._supervisor",
            "--data-dir", str(self.layout.data_dir),
            "--executable", executable,
            "--start-timeout", str(self.start_timeout),
            "--status-fd", str(write_fd),
        ]  # fmt: skip
        try:
            log_fd = os.open(self.layout.supervisor_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            with os.fdopen(log_fd, "ab") as supervisor_log:
                launcher = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=supervisor_log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,  # no terminal Ctrl-C reaches it; it stops when users are gone
                    cwd=self.layout.control_dir,
                    env=env,
                )
        finally:
            os.close(write_fd)
        try:
            return self._await_ready(read_fd)
        finally:
            os.close(read_fd)
            try:
                launcher.wait(timeout=10)  # the intermediate exits right after forking the supervisor
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()

    def _await_ready(self, read_fd: int) -> ServerState:
        # python start-up and imports come on top of the server's own start timeout
        deadline = time.monotonic() + self.start_timeout + 15
        supervisor: tuple[int, str] | None = None
        buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if supervisor is not None:
                    self._kill_supervisor(*supervisor)
                raise self._start_error(f"no answer from nx-27017 within {self.start_timeout:g}s")
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.5))
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                raise self._start_error("the embedded store supervisor exited during start")
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                event = _parse_event(line)
                kind = event.get("event")
                if kind == "forked":
                    pid = int(event["pid"])
                    supervisor = (pid, process_start(pid) or "-")
                elif kind == "failed":
                    raise self._start_error(str(event.get("error", "unknown error")))
                elif kind == "ready":
                    state = read_state(self.layout.state)
                    if state is None or supervisor is None or state.supervisor_pid != supervisor[0]:
                        raise self._start_error("supervisor reported ready but wrote no state file")
                    return state

    def _kill_supervisor(self, pid: int, start: str) -> None:
        """Give up on a supervisor that never got ready: SIGTERM makes it kill its half-started server."""
        signal_if_same(pid, start, signal.SIGTERM)
        if not wait_gone([(pid, start)], STOP_GRACE_SECONDS + 3):
            signal_if_same(pid, start, signal.SIGKILL)  # its server dies with it (PR_SET_PDEATHSIG)
            wait_gone([(pid, start)], 5)
        state = read_state(self.layout.state)
        if state is not None and state.supervisor_pid == pid:
            self.layout.state.unlink(missing_ok=True)

    def _start_error(self, reason: str) -> StoreError:
        message = f"embedded store failed to start under {self.layout.data_dir}: {reason}"
        for path, lines in ((self.layout.server_log, 15), (self.layout.supervisor_log, 5)):
            tail = log_tail(path, lines=lines)
            if tail:
                message += f"\n--- last lines of {path} ---\n{tail}"
        return StoreError(message)


def _parse_event(line: bytes) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}
