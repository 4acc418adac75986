"""The default embedded store and everything else under ``data_dir`` are private to their owner.

nx-27017 has no authentication, so the file system is the boundary: a fresh ``data_dir`` is made
0700/0600 (keys and ``state.json`` included), an older looser one is tightened when opened, the
server listens only on a 0600 unix socket inside it (no TCP port), and another local user can read
none of it. A malformed ``TGWATCH_MONGODB_URI`` is one clear error line.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from storage._embedded_state import Layout
from storage.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

# run as another uid: try everything a local attacker would, print what succeeded
PROBE = r"""
import os, socket, sys
from pathlib import Path
os.setgroups([])
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[2]))
data = Path(sys.argv[1])
got = []
for path in sys.argv[3:]:
    p = Path(path)
    try:
        if p.name.endswith(".sock"):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(p))
            got.append("connected " + path)
        elif p.is_dir():
            os.listdir(p)
            got.append("listed " + path)
        else:
            p.read_bytes()
            got.append("read " + path)
    except OSError:
        pass
print("\n".join(got) if got else "NOTHING")
"""


def _tgwatch(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-format", "json", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A world-traversable parent (pytest's own tmp dirs are 0700, which would hide the data_dir's modes)."""
    parent = Path(tempfile.mkdtemp(prefix="tgw-private-", dir="/tmp"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(root: Path) -> None:
    for name, mode in _modes(root).items():
        path = root / name
        wanted = 0o700 if path.is_dir() else 0o600
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}, want {oct(wanted)}"


def test_fresh_data_dir_is_owner_only(open_parent: Path) -> None:
    data = open_parent / "data"
    done = _tgwatch(data, "db", "status")
    assert done.returncode == 0, done.stderr[-1500:]
    modes = _modes(data)
    for name in (".", "embedded", "embedded/users", "mongo", "keys"):
        assert modes[name] == 0o700, (name, oct(modes[name]))
    for name in ("mongo/tgwatch.db", "embedded/lock", "embedded/nx-27017.log", "embedded/supervisor.log"):
        assert modes[name] == 0o600, (name, oct(modes[name]))
    assert [n for n in modes if n.startswith("keys/")], "a key file was made"
    _assert_private(data)


def test_state_file_and_socket_while_running_are_owner_only_and_no_tcp_port(open_parent: Path) -> None:
    data = open_parent / "data"
    with EmbeddedStore(data) as store:
        layout = Layout.for_data_dir(data)
        status = store.status()
        assert status.socket is not None and status.pid is not None
        assert stat.S_IMODE(layout.state.stat().st_mode) == 0o600
        assert stat.S_IMODE(os.stat(status.socket).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(status.socket).st_mode)
        listening = [c for c in psutil.Process(status.pid).net_connections(kind="inet") if c.status == "LISTEN"]
        assert listening == [], f"the embedded server listens on TCP: {listening}"
        _assert_private(data)


def test_looser_existing_data_dir_is_tightened_on_open(open_parent: Path) -> None:
    data = open_parent / "data"
    for sub in ("keys", "mongo", "embedded", "quarantine/ab"):
        (data / sub).mkdir(parents=True)
    (data / "keys" / "extra.key").write_text("x")
    (data / "quarantine" / "ab" / "blob").write_bytes(b"x")
    for path in (data, *data.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    done = _tgwatch(data, "db", "status")
    assert done.returncode == 0, done.stderr[-1500:]
    assert "made private" in done.stderr
    _assert_private(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a probe as another uid (nobody)")
def test_another_local_user_can_read_nothing(open_parent: Path) -> None:
    data = open_parent / "data"
    done = _tgwatch(data, "db", "status")  # keys, db files, logs
    assert done.returncode == 0, done.stderr[-1500:]
    with EmbeddedStore(data) as store:
        status = store.status()
        assert status.socket is not None
        layout = Layout.for_data_dir(data)
        targets = [
            str(p) for p in (data, layout.control_dir, layout.state, layout.data_path, data / "keys",
                             *data.rglob("*.db"), *data.rglob("*.key"), *data.rglob("*.log"))
        ] + [status.socket]  # fmt: skip
        assert len(targets) >= 10
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, str(data), str(NOBODY), *targets],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-1500:]
    assert probe.stdout.strip() == "NOTHING", probe.stdout


@pytest.mark.parametrize(
    "uri",
    ["mongodb://tgw:pa ss-word-9@db.example:notaport/", "http://db.example/", "mongodb://a:b:hunter2-pw@h/"],
)
def test_malformed_mongodb_uri_is_one_clear_line(tmp_path: Path, uri: str) -> None:
    done = _tgwatch(tmp_path / "data", "db", "status", env={"TGWATCH_MONGODB_URI": uri})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: store: mongodb_uri is not a valid MongoDB URI"), lines
    for secret in ("pa ss-word-9", "hunter2-pw"):
        assert secret not in done.stderr and secret not in done.stdout


def test_socket_path_too_long_falls_back_to_a_private_temp_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    layout = Layout.for_data_dir(deep)
    assert layout.socket.parent != layout.control_dir and len(os.fsencode(layout.socket)) < 108
    with EmbeddedStore(deep) as store:
        status = store.status()
        assert status.socket == str(layout.socket)
        parent = layout.socket.parent
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700 and parent.stat().st_uid == os.getuid()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(status.socket)
    shutil.rmtree(layout.socket.parent, ignore_errors=True)
