"""A detector program started by ``tgwatch detector run --cmd`` ends when its consumer is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from aiohttp.test_utils import TestServer

import config
from config import Settings
from crawler.api.app import build_app
from crawler.detection.service import DetectionService
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import Store

HANGING_DETECTOR = "import sys, time\nprint('started', file=sys.stderr, flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "data")


@pytest.fixture
async def server(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        yield srv


async def test_killed_consumer_takes_its_detector_with_it(
    store: Store, server: TestServer, settings: Settings, tmp_path: Path
) -> None:
    service = DetectionService(store, settings)
    await service.enqueue(service.quarantine.put(b"synthetic bytes for a detector job"))
    token, _ = await TokenRepo(store, server_secret(config.load())).create("detector-child", Role.DETECTOR)
    script = tmp_path / "hang.py"
    script.write_text(HANGING_DETECTOR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env["TGWATCH_DETECTOR_TOKEN"] = token
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "detector", "run", "--url", str(server.make_url("/")),
        "--cmd", f"{sys.executable} {script} {{path}}", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    detectors: list[psutil.Process] = []
    try:
        for _ in range(1200):
            detectors = [p for p in psutil.Process(consumer.pid).children() if str(script) in " ".join(p.cmdline())]
            if detectors:
                break
            await asyncio.sleep(0.1)
        assert detectors, "the consumer never started its detector"
        consumer.send_signal(signal.SIGKILL)
        assert await consumer.wait() == -signal.SIGKILL
    finally:
        if consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
    _, alive = await asyncio.to_thread(psutil.wait_procs, detectors, 60)
    for proc in alive:
        proc.kill()
    assert not alive, "the detector outlived its consumer"
