"""Every foundation command through a real subprocess, each with its own embedded store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.xdist_group("cli")


def tgwatch(data_dir: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), "--log-format", "json", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=180,
        cwd=data_dir.parent,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tgwatch {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def assert_no_server_left(data_dir: Path) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        assert not ("nx-27017" in cmd or "nx_27017" in cmd) or str(data_dir) not in cmd, f"orphan server: {cmd}"


def test_help_everywhere(tmp_path: Path) -> None:
    out = tgwatch(tmp_path / "d", "--help")
    for command in ("init", "config", "db", "query", "demo"):
        assert command in out
    assert "--data-dir" in out
    assert "effective settings" in tgwatch(tmp_path / "d", "config", "show", "--help")


def test_init_is_idempotent_and_db_status_counts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = tgwatch(data, "init")
    second = tgwatch(data, "init")
    assert "messages" in first and first.splitlines()[1:] == second.splitlines()[1:]
    status = json.loads(tgwatch(data, "db", "status", "--json"))
    assert status["kind"] == "embedded" and status["server"].startswith("nx_27017")
    assert status["collections"]["messages"] == 0
    assert_no_server_left(data)


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "TGWATCH_TELEGRAM__API_HASH": "0123456789abcdef0123456789abcdef",
        "TGWATCH_MONGODB_URI": "mongodb://admin:hunter2@db.example/?replicaSet=rs0",
    }
    out = tgwatch(tmp_path / "d", "config", "show", env=env)
    assert "hunter2" not in out and "0123456789abcdef" not in out
    assert "admin:****@db.example" in out and f'data_dir = "{tmp_path / "d"}"' in out
    as_json = json.loads(tgwatch(tmp_path / "d", "config", "show", "--json", env=env))
    assert as_json["telegram"]["api_hash"] == "**********"


def test_demo_then_query_messages_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = tgwatch(data, "demo")
    assert "idempotent" in out and "deleted=1" in out
    # issue 18: staff told on local servers, a policy draft approved and sent, a late list matched
    assert "webhook received: hash_match daily_brief signature ok" in out
    assert "e-mail received: [tgwatch] Hash-list match" in out
    assert re.search(r"drafted at once by the list's policy: TD-\d+ status=draft", out)
    assert "status=sent sent via email:abuse@telegram.org, mtproto:in-app report" in out
    assert re.search(r"e-mail to abuse@telegram.org: ledger sha256 [0-9a-f]{16}… equals the SHA-256", out)
    assert re.search(r"fake Telegram recorded messages.report: peer @daily_brief .* message ids \[\d+\]", out)
    assert re.search(r"ALERT \(retroactive\) .* list 'demo-late' .*; first seen 20\d\d-", out)
    lines = [
        json.loads(line)
        for line in tgwatch(data, "query", "messages", "--channel", "tgwatch_demo", "--json").splitlines()
    ]
    by_id = {line["msg_id"]: line for line in lines}
    assert set(by_id) >= {1, 2, 3, 4, 5}
    assert by_id[4]["version"] == 2 and by_id[4]["edited"] is True
    assert by_id[5]["deleted"] is True and by_id[5]["text"]
    assert by_id[2]["text"].startswith("데모 채널")
    assert set(by_id[1]) >= {"channel", "msg_id", "date", "text", "media", "views", "edited", "deleted", "version"}
    assert by_id[1]["media"] and by_id[1]["media"][0]["kind"] == "photo"
    assert_no_server_left(data)


def test_store_error_is_a_clean_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(tmp_path), "db", "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "TGWATCH_MONGODB_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "store:" in proc.stderr and "Traceback" not in proc.stderr
