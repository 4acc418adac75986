"""A malformed or empty session string is a clear error: no traceback, no connection, no secret echoed."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from telegram_watch.crypto import generate_key
from tests.test_cli import assert_no_server_left

pytestmark = pytest.mark.xdist_group("cli")

#: a version byte + base64 of a buffer too short for (dc, ip, port, key): Telethon raises struct.error
SHORT_BUFFER = "1" + base64.urlsafe_b64encode(b"x" * 10).decode()


def accounts_add(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_TELEGRAM__SECRETS_KEY=generate_key(),
        TGWATCH_TELEGRAM__API_ID="1",
        TGWATCH_TELEGRAM__API_HASH="0123456789abcdef0123456789abcdef",
    )
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), "accounts", "add", "acc1", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("bad", ["1AAAA", SHORT_BUFFER, "garbage", "1ééé"])
def test_malformed_session_string_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    data = tmp_path / "data"
    proc = accounts_add(data, "--session-string", "-", stdin=bad + "\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "session string is malformed" in out
    assert "Traceback" not in out and bad not in out
    assert_no_server_left(data)


def test_empty_session_string_never_connects(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = accounts_add(data, "--session-string", "-", stdin="\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "session string is empty" in out
    assert "telethon" not in out.lower() and "Traceback" not in out
    assert_no_server_left(data)


def test_session_string_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    proc = accounts_add(tmp_path / "data", "--session-string", SHORT_BUFFER)
    assert proc.returncode == 1
    assert "warning: --session-string puts the session in the process list" in proc.stderr
    assert SHORT_BUFFER not in proc.stdout + proc.stderr
