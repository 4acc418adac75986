"""Files and process checks shared by the embedded-store launcher and its supervisor.

Several tgwatch processes may point at one ``data_dir``; they coordinate only through files in
``data_dir/embedded/`` so that no process needs to know about the others:

* ``lock``        an ``fcntl.flock`` serializing start, reuse and stop decisions
* ``state.json``  the running server (supervisor pid, server pid, port); written and removed under
                  the lock, always atomically (write + rename)
* ``users/``      one file per live user (``<pid>.<token>``); the supervisor stops the server when
                  none of them is alive any more
* ``nx-27017.sock`` the server's unix socket (0600); no TCP port is opened
* ``nx-27017.log`` / ``supervisor.log``  what the two processes printed

Everything under ``data_dir`` is private to its owner (directories 0700, files 0600): the
embedded server has no authentication, so the file modes are what keep other local users out.

A pid alone is not an identity (pids are reused after a ``kill -9``), so every recorded pid is paired
with the process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), which never
changes for a process and cannot match a later process with the same pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bson
import psutil

from storage.private import make_private_dir, secure_tree

HOST = "127.0.0.1"
OP_MSG = 2013
SOCKET_NAME = "nx-27017.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with the NUL; keep a margin


@dataclass(frozen=True)
class Layout:
    """Where everything of one embedded store lives, derived from tgwatch's ``data_dir``."""

    data_dir: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Layout:
        # absolute, so cmdline matching and the files agree whatever the caller's cwd
        return cls(Path(os.path.abspath(data_dir)))

    @property
    def data_path(self) -> Path:
        """nx-27017's ``--data-dir``: one SQLite file per logical database."""
        return self.data_dir / "mongo"

    @property
    def control_dir(self) -> Path:
        return self.data_dir / "embedded"

    @property
    def lock(self) -> Path:
        return self.control_dir / "lock"

    @property
    def state(self) -> Path:
        return self.control_dir / "state.json"

    @property
    def users(self) -> Path:
        return self.control_dir / "users"

    @property
    def server_log(self) -> Path:
        return self.control_dir / "nx-27017.log"

    @property
    def supervisor_log(self) -> Path:
        return self.control_dir / "supervisor.log"

    @property
    def server_pid_file(self) -> Path:
        return self.control_dir / "nx-27017.pid"

    @property
    def socket(self) -> Path:
        """The server's unix socket: in the control dir, or (when that path is too long for a
        socket address) in a private per-data_dir directory under the temp dir."""
        preferred = self.control_dir / SOCKET_NAME
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"tgwatch-{os.getuid()}-{digest}" / SOCKET_NAME

    def ensure(self) -> None:
        """Create the layout private to this user, tightening whatever an older version left looser."""
        make_private_dir(self.data_dir)
        for path in (self.control_dir, self.users, self.data_path):
            make_private_dir(path)
            secure_tree(path)
        if self.socket.parent != self.control_dir:
            make_private_dir(self.socket.parent, shared_parent=True)


# --- process identity -------------------------------------------------------------------------


def process_start(pid: int) -> str | None:
    """An identity token for a live, non-zombie process, or None when there is no such process."""
    if pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _psutil_start(pid)
    # comm (field 2) may hold spaces and parentheses: split after the last ')'
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return f"ticks:{fields[19]}"


def _psutil_start(pid: int) -> str | None:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"ctime:{proc.create_time():.2f}"
    except psutil.Error:
        return None


def same_process(pid: int, start: str) -> bool:
    """True when ``pid`` is still the very process recorded with ``start`` (not a reused pid)."""
    return process_start(pid) == start


def wait_gone(procs: list[tuple[int, str]], timeout: float) -> bool:
    """Poll until none of ``procs`` is alive; True when they all went within ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(same_process(pid, start) for pid, start in procs):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def signal_if_same(pid: int, start: str, signum: int) -> bool:
    """Send ``signum`` only if ``pid`` is still the recorded process; never signal a stranger."""
    if not same_process(pid, start):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
        return True
    return False


# --- the lock ---------------------------------------------------------------------------------


def try_lock(path: Path) -> int | None:
    """Take the lock without waiting; the returned fd holds it until closed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold the lock for the block; ``TimeoutError`` when another process keeps it too long.

    Polling with ``LOCK_NB`` rather than a blocking ``flock`` keeps the wait bounded and lets
    signal handlers run promptly.
    """
    deadline = time.monotonic() + timeout
    while (fd := try_lock(path)) is None:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"lock {path} still held after {timeout:g}s")
        time.sleep(0.05)
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


# --- state file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    """What ``state.json`` records about the running server."""

    supervisor_pid: int
    supervisor_start: str
    server_pid: int
    server_start: str
    socket: str
    data_path: str
    started_at: float

    @property
    def uri(self) -> str:
        return socket_uri(self.socket)

    def processes(self) -> list[tuple[int, str]]:
        return [(self.supervisor_pid, self.supervisor_start), (self.server_pid, self.server_start)]


def socket_uri(path: str | Path) -> str:
    """PyMongo's form for a unix socket: the percent-encoded absolute path as the host."""
    return f"mongodb://{quote(str(path), safe='')}/"


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(doc))
    os.replace(tmp, path)


def write_state(path: Path, state: ServerState) -> None:
    write_json_atomic(path, asdict(state))


def read_state(path: Path) -> ServerState | None:
    """The recorded state, or None when absent or unreadable (an unreadable file counts as stale)."""
    try:
        return ServerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# --- users ------------------------------------------------------------------------------------


def register_user(users: Path, token: str) -> Path:
    """Record this process as a user of the server; the file name carries pid and token."""
    pid = os.getpid()
    path = users / f"{pid}.{token}"
    start = process_start(pid)
    write_json_atomic(path, {"pid": pid, "start": start})
    return path


def live_users(users: Path, *, prune: bool) -> list[int]:
    """Pids of registered users still alive; with ``prune``, dead users' files are removed."""
    alive: set[int] = set()
    try:
        entries = list(users.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # a registration being written
        try:
            doc = json.loads(entry.read_text())
            pid, start = int(doc["pid"]), str(doc["start"])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            # unreadable: fall back to the pid in the name, alive in any incarnation
            pid_text = entry.name.split(".", 1)[0]
            pid = int(pid_text) if pid_text.isdigit() else 0
            start = process_start(pid) or "-"
        if same_process(pid, start):
            alive.add(pid)
        elif prune:
            entry.unlink(missing_ok=True)
    return sorted(alive)


# --- ping -------------------------------------------------------------------------------------


def _connect(target: int | str | Path, host: str, timeout: float) -> socket.socket:
    if isinstance(target, int):
        return socket.create_connection((host, target), timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(target))
    except BaseException:
        sock.close()
        raise
    return sock


def ping(target: int | str | Path, *, host: str = HOST, timeout: float = 2.0) -> bool:
    """One ``ping`` command over the wire protocol (OP_MSG) to a TCP port or a unix socket path;
    True when the server answers ok.

    Hand-rolled so the supervisor needs neither a driver nor its background monitor threads.
    """
    body = struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
    message = struct.pack("<iiii", 16 + len(body), 1, 0, OP_MSG) + body
    try:
        with _connect(target, host, timeout) as sock:
            sock.sendall(message)
            length, _, _, opcode = struct.unpack("<iiii", _recv_exactly(sock, 16))
            if opcode != OP_MSG or not 21 <= length <= 48 * 2**20:
                return False
            payload = _recv_exactly(sock, length - 16)
        if payload[4] != 0:  # section kind 0: one body document
            return False
        (doc_len,) = struct.unpack_from("<i", payload, 5)
        reply = bson.decode(payload[5 : 5 + doc_len])
        return float(reply.get("ok", 0)) == 1.0
    except (OSError, ValueError, IndexError, struct.error, bson.errors.BSONError):
        return False


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("connection closed mid-reply")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def log_tail(path: Path, *, lines: int = 15, limit: int = 2000) -> str:
    """The last lines of a log file, for error messages (empty when there is no log)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])[-limit:]
