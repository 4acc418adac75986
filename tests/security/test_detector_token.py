"""``tgwatch detector run`` takes its token from a file or the environment, not from argv.

A token on the command line is readable by every local user (``ps``, ``/proc/PID/cmdline``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

import config
from config import Settings
from crawler.api.app import build_app
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store

DETECTOR = "crawler.detection.demo_detector:hash_list_detector"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "data")


@pytest.fixture
async def server(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        yield srv


async def detector_run(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "detector", "run", "--url", url, "--callable", DETECTOR,
        "--until-empty", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_file_and_env_work_without_a_warning(store: Store, server: TestServer, tmp_path: Path) -> None:
    token, _ = await TokenRepo(store, server_secret(config.load())).create("detector-file", Role.DETECTOR)
    token_file = tmp_path / "detector.token"
    token_file.write_text(token + "\n")
    url = str(server.make_url("/"))

    code, out, err = await detector_run(url, "--token-file", str(token_file))
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["acked"] == 0
    assert "warning" not in err and token not in err + out

    code, out, err = await detector_run(url, env={"TGWATCH_DETECTOR_TOKEN": token})
    assert code == 0, err
    assert "warning" not in err and token not in err + out


async def test_token_on_the_command_line_is_warned_about(store: Store, server: TestServer) -> None:
    token, _ = await TokenRepo(store, server_secret(config.load())).create("detector-argv", Role.DETECTOR)
    code, out, err = await detector_run(str(server.make_url("/")), "--token", token)
    assert code == 0, err
    assert "warning: --token puts the token in the process list" in err
    assert "--token-file" in err and token not in err + out


async def test_no_token_or_a_bad_file_is_a_clear_error(server: TestServer, tmp_path: Path) -> None:
    url = str(server.make_url("/"))
    code, _, err = await detector_run(url)
    assert code == 2 and "no detector token" in err and "Traceback" not in err
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    code, _, err = await detector_run(url, "--token-file", str(empty))
    assert code == 2 and "is empty" in err and "Traceback" not in err
