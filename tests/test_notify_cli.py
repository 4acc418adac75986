"""``tgwatch notify …`` as staff run it: child processes on the test store, a local webhook."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from storage.client import Store
from storage.repos.alerts import AlertRepo
from tests.notify_support import SECRET, alert, webhook_receiver

ROOT = Path(__file__).resolve().parents[1]


def env_for(uri: str, database: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_MONGODB_URI=uri, TGWATCH_DATABASE=database, TGWATCH_DATA_DIR=str(data_dir), TGWATCH_LOG_FORMAT="json",
        HOOK_SECRET=SECRET, PYTHONPATH=str(ROOT), TGWATCH_HTTP__ALLOW_PRIVATE_HOSTS='["127.0.0.1"]',
    )  # fmt: skip
    return env


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert SECRET not in out.decode() + err.decode()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_add_list_test_deliver_log_remove(store: Store, embedded_uri: str, tmp_path: Path) -> None:
    env = env_for(embedded_uri, store.db.name, tmp_path)
    async with webhook_receiver() as hook:
        add_ops = ["--secret-env", "HOOK_SECRET", "--on", "hash_match", "--on", "detection", "--channel", "@LeakChan"]
        code, out, err = await cli(env, "notify", "add", "ops", "--webhook", hook.url, *add_ops, "--lang", "en")
        assert code == 0, err
        assert out.strip() == f"rule 'ops' added: webhook → {hook.url}"
        staff = ["--email", "staff@org.test", "--min-severity", "high", "--group", "News"]
        code, out, err = await cli(env, "notify", "add", "staff", *staff)
        assert code == 0, err
        code, out, err = await cli(env, "notify", "add", "chat", "--telegram-chat", "-100123")
        assert code == 0, err

        # bad input: one clear message each, nothing stored
        code, _, err = await cli(env, "notify", "add", "x", "--webhook", hook.url)
        assert code == 2 and "needs --secret-env" in err
        code, _, err = await cli(env, "notify", "add", "x", "--email", "a@b.test", "--telegram-chat", "1")
        assert code == 2 and "exactly one of" in err
        code, _, err = await cli(env, "notify", "add", "x", "--webhook", "ftp://host/x", "--secret-env", "V")
        assert code == 2 and "http:// or https://" in err
        code, _, err = await cli(env, "notify", "add", "x", "--email", "a@b.test", "--on", "nonsense:list")
        assert code == 2 and "only hash_match takes a list" in err
        code, _, err = await cli(env, "notify", "add", "ops", "--email", "a@b.test")
        assert code == 1 and "exists" in err
        assert "Traceback" not in err

        code, out, err = await cli(env, "notify", "list")
        lines = out.splitlines()
        assert [line.split()[0] for line in lines] == ["chat", "ops", "staff"]
        assert "secret-env=HOOK_SECRET" in lines[1] and "channels=leakchan" in lines[1] and "lang=en" in lines[1]
        assert "min=high" in lines[2] and "lang=ko" in lines[2] and "groups=news" in lines[2]
        assert "deliveries: ready=0" in err

        code, out, err = await cli(env, "notify", "test", "ops")
        assert code == 0, err
        assert out.startswith("test notification sent through 'ops' (sha256 ")
        assert hook.received[-1].verified and hook.received[-1].json["type"] == "test"

        # an alert raised by another process is delivered by `notify deliver`, once, however often it runs
        await AlertRepo(store).raise_alert(alert())
        for _ in range(2):
            code, _, err = await cli(env, "notify", "deliver", "--until-empty")
            assert code == 0, err
        assert [r.json["type"] for r in hook.received] == ["test", "alert"]

        code, out, _ = await cli(env, "notify", "log", "ops")
        assert [line.split()[3] for line in out.splitlines()] == ["alert", "test"]
        code, out, _ = await cli(env, "notify", "dead")
        assert out == ""

        code, out, _ = await cli(env, "notify", "remove", "ops")
        assert out.strip() == "rule 'ops' removed"
        code, _, err = await cli(env, "notify", "remove", "ops")
        assert code == 1 and "no notification rule 'ops'" in err
        code, _, err = await cli(env, "notify", "test", "chat")  # no bot token in the environment
        assert code == 1 and "TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN" in err


async def test_tgwatch_run_delivers_alerts_raised_by_another_process(
    store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    env = env_for(embedded_uri, store.db.name, tmp_path)
    async with webhook_receiver() as hook:
        code, _, err = await cli(env, "notify", "add", "ops", "--webhook", hook.url, "--secret-env", "HOOK_SECRET")
        assert code == 0, err
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crawler", "run", "--no-work", "--sync", "3600", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            while b"tgwatch run:" not in await asyncio.wait_for(proc.stderr.readline(), 120):
                pass
            await AlertRepo(store).raise_alert(alert())  # this test process, not the daemon, raises it
            await asyncio.wait_for(hook.arrived.wait(), 60)
        finally:
            proc.terminate()
            out, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err_bytes.decode()[-2000:]
        assert SECRET not in out.decode() + err_bytes.decode()
    (got,) = hook.received
    assert got.json["type"] == "alert" and got.json["delivery"].endswith("/ops")
