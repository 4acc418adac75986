"""Fault injection: ``kill -9`` of the API server (``tgwatch serve``) while a consumer holds a lease.

The other process kinds have their kill -9 tests beside their features (web crawl:
``test_tme_spider.py::test_resume_after_kill_9_loses_and_duplicates_nothing``; MTProto backfill:
``test_tg_kill.py``; scheduler worker: ``test_scheduling_processes.py``; detection consumer:
``test_detection.py::test_four_consumers_one_killed_mid_lease``). This one kills the API, the
process between the queue and its consumers: the queue lives in the store, so after a restart
on another port the lease runs out, the job is handed out again and every job is completed
exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

import config
from crawler.detection.service import DetectionService
from crawler.tokens import Role, TokenRepo, server_secret
from storage.client import open_store
from tests.test_detection import DETECTOR, synthetic_png, until_leased

JOBS = 6
GUARD_SECONDS = 120.0  # hang guard only
_BOUND = re.compile(rb"tgwatch API on (http://[^/\s]+)/")


def _env(data: Path, **extra: str) -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": repo,
        "TGWATCH_DATA_DIR": str(data),
        "TGWATCH_DETECTION__MAX_ATTEMPTS": "3",
        **extra,
    }


async def _serve(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-level", "WARNING",
        "serve", "--port", "0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=_env(data),
    )  # fmt: skip
    assert proc.stderr is not None
    seen = b""
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        if not line:
            raise AssertionError(f"tgwatch serve exited before listening: {seen.decode()[-1500:]}")
        seen += line
        found = _BOUND.search(line)
        if found:
            return proc, found.group(1).decode()


async def _consumer(
    data: Path, url: str, token: str, script: Path, *extra: str, mode: str = "ok"
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--data-dir", str(data), "--log-format", "json",
        "detector", "run", "--url", url, "--cmd", f"{sys.executable} {script} {{path}}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(data, TGWATCH_DETECTOR_TOKEN=token, DETECTOR_MODE=mode),
    )  # fmt: skip


@pytest.mark.slow
async def test_api_killed_mid_lease_then_restarted_completes_every_job_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = config.load(data_dir=data, detection={"max_attempts": 3})
    script = tmp_path / "detector.py"
    script.write_text(DETECTOR)
    async with open_store(settings) as store:
        svc = DetectionService(store, settings)
        shas = [svc.quarantine.put(synthetic_png(300 + i)) for i in range(JOBS)]
        for sha in shas:
            await svc.enqueue(sha)
        token, _ = await TokenRepo(store, server_secret(config.load())).create("detector-kill-test", Role.DETECTOR)

        api, url = await _serve(data)
        victim: asyncio.subprocess.Process | None = None
        try:
            # a consumer leases a job (short lease) and hangs in its detector, heartbeating the API
            victim = await _consumer(data, url, token, script, "--lease", "3", mode="hang")
            await until_leased(svc, victim)
            leased = await store["detection_jobs"].find_one({"state": "leased"})
            assert leased is not None, "the consumer never got a job"
            api.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(api.wait(), 30) == -signal.SIGKILL
        finally:
            if api.returncode is None:
                api.kill()
                await api.wait()
            if victim is not None and victim.returncode is None:
                victim.kill()
                await victim.wait()

        # the queue is in the store, untouched by the kill: every job is still there, one leased
        jobs = await store["detection_jobs"].find().to_list(None)
        assert len(jobs) == JOBS and {j["state"] for j in jobs} <= {"ready", "leased"}
        for _ in range(200):  # the dead consumer's lease runs out
            job = await store["detection_jobs"].find_one({"_id": leased["_id"]})
            if job is not None and job["lease_until"] < time.time() - 0.2:
                break
            await asyncio.sleep(0.1)

        api2, url2 = await _serve(data)
        workers: list[asyncio.subprocess.Process] = []
        try:
            workers = [await _consumer(data, url2, token, script, "--until-empty") for _ in range(2)]
            outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), GUARD_SECONDS)
        finally:
            for worker in workers:  # only when the guard fired: never leave a consumer behind
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
            api2.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(api2.wait(), 30)
            except TimeoutError:
                api2.kill()
                await api2.wait()
        assert all(w.returncode == 0 for w in workers), [o[1].decode()[-800:] for o in outputs]
        verdicts = await store["verdicts"].find().to_list(None)
        assert sorted(v["sha256"] for v in verdicts) == sorted(shas), "each job completed exactly once"
        redelivered = await svc.queue.get(leased["_id"])
        assert redelivered is not None and redelivered["state"] == "done" and redelivered["attempts"] == 2
        assert (await svc.stats())["dead"] == 0
