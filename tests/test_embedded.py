"""The embedded nx-27017 launcher with real processes: start, reuse, clean stop, recovery, no orphans.

Every test gets its own data dir; afterwards no process whose command line names that dir and
nx-27017 may remain (the server itself, or its supervisor, which names the executable).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from foundation.errors import StoreError
from storage._embedded_state import Layout, ping, process_start, read_state, same_process
from storage.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[1]

# A second tgwatch process: acquires, reports, then waits for a line on stdin (or EOF) and exits
# normally, so its atexit release runs. With --exit-on-sigterm it turns SIGTERM into SystemExit
# as a CLI would; without, SIGTERM kills it outright (no atexit) and the supervisor must notice.
USER = r"""
import json, signal, sys
from pathlib import Path
from storage.embedded import EmbeddedStore
if "--exit-on-sigterm" in sys.argv:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
store = EmbeddedStore(Path(sys.argv[1]))
uri = store.acquire()
status = store.status()
info = {"uri": uri, "server_pid": status.pid, "supervisor_pid": status.supervisor_pid}
print("READY " + json.dumps(info), flush=True)
sys.stdin.readline()
"""


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """nx-27017 servers (and supervisors, whose command line names the executable) for ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if ("nx-27017" in cmd or "nx_27017" in cmd) and str(data_dir) in cmd:
            found.append(proc)
    return found


def gone(pid: int, start: str | None) -> Callable[[], bool]:
    return lambda: start is None or not same_process(pid, start)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    wait_until(lambda: not server_processes(path), timeout=15)
    leftovers = server_processes(path)
    for proc in leftovers:  # keep the machine clean even when the assertion below fails
        proc.kill()
    assert not leftovers, f"orphaned: {[' '.join(p.cmdline()) for p in leftovers if p.is_running()]}"


class User:
    """Another tgwatch process using the store (a real subprocess)."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", USER, str(data_dir), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY "):
                self.info: dict[str, Any] = json.loads(line.removeprefix("READY "))
                return
        self.proc.wait(timeout=10)
        errors = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"user process failed ({self.proc.returncode}): {errors}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self) -> None:
        """Let it exit normally (its atexit release runs)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)
        self.proc.wait(timeout=30)


def client_for(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, serverSelectionTimeoutMS=5000)


def sync_ping(uri: str) -> dict[str, Any]:
    with client_for(uri) as client:
        client.admin.command("ping")
        return dict(client.admin.command("buildInfo"))


def test_start_ping_stop(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    uri = store.acquire()
    assert store.acquire() == uri  # idempotent
    assert sync_ping(uri)["version"].startswith("7.")

    status = store.status()
    assert status.running and status.uri == uri and status.socket is not None and status.socket.endswith(".sock")
    assert status.users == [os.getpid()]
    assert status.data_path == data_dir / "mongo" and status.log_path.is_file()
    assert status.pid is not None
    server = psutil.Process(status.pid)
    server_start = process_start(status.pid)
    assert str(data_dir / "mongo") in server.cmdline()

    store.release()
    store.release()  # idempotent
    # the last user's release returns only once the server is gone
    assert gone(status.pid, server_start)()
    after = store.status()
    assert not after.running and after.pid is None and after.users == []
    assert not Layout.for_data_dir(data_dir).state.exists()


def test_context_manager_data_survives_restart(data_dir: Path) -> None:
    with EmbeddedStore(data_dir) as store:
        assert store.uri is not None
        first_pid = store.status().pid
        with client_for(store.uri) as client:
            client.tgw.notes.insert_one({"_id": "kept", "n": 1})
    assert store.uri is None
    with EmbeddedStore(data_dir) as again:
        assert again.uri is not None
        assert again.status().pid != first_pid
        with client_for(again.uri) as client:
            assert client.tgw.notes.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}


def test_two_stores_in_one_process_are_counted_separately(data_dir: Path) -> None:
    outer, inner = EmbeddedStore(data_dir), EmbeddedStore(data_dir)
    uri = outer.acquire()
    assert inner.acquire() == uri
    inner.release()  # outer still holds it (same pid, its own registration)
    assert outer.status().running and sync_ping(uri)
    outer.release()
    assert not outer.status().running


@pytest.mark.slow
def test_second_process_reuses_server_and_last_user_stops_it(data_dir: Path) -> None:
    mine = EmbeddedStore(data_dir)
    uri = mine.acquire()
    first = mine.status()
    other = User(data_dir)
    try:
        assert other.info == {"uri": uri, "server_pid": first.pid, "supervisor_pid": first.supervisor_pid}
        assert mine.status().users == sorted([os.getpid(), other.pid])

        mine.release()  # the other process still uses it: the server stays
        kept = mine.status()
        assert kept.running and kept.pid == first.pid and kept.users == [other.pid]
        assert sync_ping(uri)
    finally:
        other.finish()
    assert first.pid is not None
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == psutil.STATUS_ZOMBIE
    assert not mine.status().running


@pytest.mark.slow
def test_concurrent_starts_share_one_server(data_dir: Path) -> None:
    users = [
        subprocess.Popen(
            [sys.executable, "-c", USER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    try:
        infos = []
        for proc in users:
            assert proc.stdout is not None
            line = next(line for line in proc.stdout if line.startswith("READY "))
            infos.append(json.loads(line.removeprefix("READY ")))
        assert len({info["server_pid"] for info in infos}) == 1
        assert len({info["uri"] for info in infos}) == 1
        servers = [p for p in server_processes(data_dir) if str(data_dir / "mongo") in p.info["cmdline"]]
        assert [p.pid for p in servers] == [infos[0]["server_pid"]]  # one server opened the files
    finally:
        for proc in users:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in users:
            proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("exits_cleanly", [True, False], ids=["sigterm-handled", "sigterm-default"])
def test_sigterm_to_user_stops_server(data_dir: Path, exits_cleanly: bool) -> None:
    user = User(data_dir, *(["--exit-on-sigterm"] if exits_cleanly else []))
    server_pid = user.info["server_pid"]
    server_start = process_start(server_pid)
    user.signal(signal.SIGTERM)
    # handled: atexit release stops it at once; default: the supervisor sees the user gone
    assert wait_until(gone(server_pid, server_start))
    assert wait_until(lambda: not EmbeddedStore(data_dir).status().running)


@pytest.mark.slow
def test_kill9_of_only_user_makes_supervisor_stop_server(data_dir: Path) -> None:
    user = User(data_dir)
    server_pid, supervisor_pid = user.info["server_pid"], user.info["supervisor_pid"]
    server_start, supervisor_start = process_start(server_pid), process_start(supervisor_pid)
    user.signal(signal.SIGKILL)
    assert wait_until(gone(server_pid, server_start))
    assert wait_until(gone(supervisor_pid, supervisor_start))
    assert wait_until(lambda: not Layout.for_data_dir(data_dir).state.exists())


@pytest.mark.slow
def test_kill9_of_server_is_detected_and_replaced(data_dir: Path) -> None:
    old = EmbeddedStore(data_dir)
    old.acquire()
    dead = old.status()
    assert dead.pid is not None
    os.kill(dead.pid, signal.SIGKILL)
    fresh = EmbeddedStore(data_dir)
    try:
        uri = fresh.acquire()
        status = fresh.status()
        assert status.running and status.pid != dead.pid
        assert sync_ping(uri)
    finally:
        old.release()
        assert fresh.status().running  # still one live user
        fresh.release()
    assert not fresh.status().running


@pytest.mark.slow
def test_kill9_of_supervisor_takes_server_down(data_dir: Path) -> None:
    store = EmbeddedStore(data_dir)
    store.acquire()
    status = store.status()
    assert status.pid is not None and status.supervisor_pid is not None
    server_start = process_start(status.pid)
    os.kill(status.supervisor_pid, signal.SIGKILL)
    assert wait_until(gone(status.pid, server_start))  # PR_SET_PDEATHSIG
    assert not store.status().running
    store.release()  # a stale state file is not an error
    with EmbeddedStore(data_dir) as again:
        assert again.uri is not None and sync_ping(again.uri)


@pytest.mark.parametrize("stale", ["reused-pid", "garbage"])
def test_stale_state_file_is_replaced_without_harming_strangers(data_dir: Path, stale: str) -> None:
    layout = Layout.for_data_dir(data_dir)
    layout.ensure()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if stale == "garbage":
            layout.state.write_text("{not json")
        else:  # the recorded pids now belong to an unrelated process; the port answers nothing
            start = process_start(stranger.pid)
            assert start is not None
            record = {
                "supervisor_pid": stranger.pid,
                "supervisor_start": "ticks:1",
                "server_pid": stranger.pid,
                "server_start": "ticks:1",
                "port": 9,
                "data_path": str(layout.data_path),
                "started_at": 0.0,
            }
            layout.state.write_text(json.dumps(record))
        with EmbeddedStore(data_dir) as store:
            assert store.uri is not None and sync_ping(store.uri)
            state = read_state(layout.state)
            assert state is not None and state.server_pid != stranger.pid
        assert stranger.poll() is None  # never signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_missing_executable_is_a_clear_store_error(data_dir: Path) -> None:
    with pytest.raises(StoreError, match="not found"):
        EmbeddedStore(data_dir, executable=str(data_dir / "no-such-nx-27017")).acquire()


def _fake_server(tmp_path: Path, body: str) -> str:
    """A stand-in executable named nx-27017 (so the orphan check sees it) running a shell body."""
    path = tmp_path / "bin" / "nx-27017"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_server_that_fails_to_start_reports_its_log(data_dir: Path, tmp_path: Path) -> None:
    fake = _fake_server(tmp_path, 'echo "cannot open database: simulated failure" >&2\nexit 3')
    store = EmbeddedStore(data_dir, executable=fake)
    with pytest.raises(StoreError, match="exited with code 3") as info:
        store.acquire()
    assert "simulated failure" in str(info.value)
    layout = Layout.for_data_dir(data_dir)
    assert not layout.state.exists() and list(layout.users.iterdir()) == []
    assert store.uri is None


@pytest.mark.slow
def test_server_that_never_answers_times_out_and_is_killed(data_dir: Path, tmp_path: Path) -> None:
    fake = _fake_server(tmp_path, "echo starting\nwhile true; do sleep 0.2; done")
    with pytest.raises(StoreError, match=r"did not answer ping within 1\.5s"):
        EmbeddedStore(data_dir, start_timeout=1.5, executable=fake).acquire()
    assert wait_until(lambda: not server_processes(data_dir))


def test_ping_of_a_closed_port_is_false() -> None:
    assert ping(9, timeout=0.5) is False


async def test_db_fixture_gives_a_fresh_database(db: AsyncDatabase[dict[str, Any]], embedded_uri: str) -> None:
    assert db.name.startswith("t_test_db_fixture")
    assert await db.list_collection_names() == []
    await db.things.insert_one({"_id": 1, "shape": "circle"})
    assert await db.things.find_one({"_id": 1}) == {"_id": 1, "shape": "circle"}
    assert (await db.client.admin.command("ping"))["ok"] == 1.0
