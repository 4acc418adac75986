"""The reference consumer behind ``tgwatch detector run``.

For every leased job it fetches the media through the job's signed URL into a private temporary
file, runs the detector (an external program given as ``--cmd "PROGRAM {path}"``, or a Python
callable ``module:function``), heartbeats the lease while it runs, and acks the verdict it printed.
A detector that crashes, times out or prints something that is not a verdict gets the job nacked
with the reason, so the queue retries it and finally dead-letters a poison job.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import secrets
import shlex
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crawler.detection.client import DetectionApiError, DetectionClient
from crawler.detection.service import VerdictIn
from foundation.child_processes import die_with_parent
from foundation.logs import get_logger

log = get_logger(__name__)

Detector = Callable[[Path, dict[str, Any]], Awaitable[dict[str, Any]]]


class DetectorFailed(Exception):
    """The detector did not produce a verdict for this job (the job is nacked with this reason)."""


def command_detector(template: str, timeout: float) -> Detector:
    """Run ``template`` with ``{path}`` replaced, without a shell; stdout must be a JSON verdict."""
    argv = shlex.split(template)
    if not any("{path}" in arg for arg in argv):
        raise ValueError("--cmd must contain {path}")

    async def run(path: Path, job: dict[str, Any]) -> dict[str, Any]:
        args = [arg.replace("{path}", str(path)) for arg in argv]
        # a consumer killed mid-job must not leave its detector running on (nobody would read it)
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=die_with_parent()
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DetectorFailed(f"detector timed out after {timeout:g}s") from None
        if proc.returncode != 0:
            raise DetectorFailed(f"detector exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
        try:
            return dict(json.loads(out.decode()))
        except (ValueError, TypeError) as exc:
            raise DetectorFailed(f"detector output is not a JSON object: {out[:200]!r}") from exc

    return run


def callable_detector(spec: str) -> Detector:
    """``module:function`` taking (path, job) and returning a verdict dict (sync or async)."""
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise ValueError("--callable must look like module:function")
    func = getattr(importlib.import_module(module_name), func_name)

    async def run(path: Path, job: dict[str, Any]) -> dict[str, Any]:
        result = func(path, job)
        if inspect.isawaitable(result):
            result = await result
        return dict(result)

    return run


@dataclass
class ConsumerStats:
    acked: int = 0
    nacked: int = 0
    lost: int = 0
    decisions: dict[str, int] = field(default_factory=dict)


async def run_consumer(
    client: DetectionClient,
    detector: Detector,
    *,
    concurrency: int = 1,
    until_empty: bool = False,
    lease_seconds: float = 120.0,
    poll_interval: float = 2.0,
    stop: asyncio.Event | None = None,
    detector_name: str | None = None,
) -> ConsumerStats:
    """Drain the queue; ``detector_name`` leases only that detector's jobs."""
    stats = ConsumerStats()
    stop = stop or asyncio.Event()
    with tempfile.TemporaryDirectory(prefix="tgwatch-detector-") as tmp:
        os.chmod(tmp, 0o700)
        while not stop.is_set():
            jobs = await client.claim(concurrency, lease_seconds, detector=detector_name)
            if not jobs:
                if until_empty:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_interval)
                continue
            await asyncio.gather(*(_one(client, detector, job, Path(tmp), lease_seconds, stats) for job in jobs))
    return stats


async def _one(
    client: DetectionClient,
    detector: Detector,
    job: dict[str, Any],
    tmp: Path,
    lease_seconds: float,
    stats: ConsumerStats,
) -> None:
    # our name, never the server's: a job's sha256 of "../../x" must not name a file outside ``tmp``
    path = tmp / f"job-{secrets.token_hex(8)}.bin"
    heartbeat = asyncio.create_task(_heartbeat(client, job, lease_seconds))
    try:
        data = await client.media(job)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        raw = await detector(path, job)
        verdict = VerdictIn.model_validate(raw)
    except (DetectorFailed, ValidationError, DetectionApiError, OSError, ValueError) as exc:
        heartbeat.cancel()
        reason = failure_reason(exc)
        log.warning("detector failed", job=job["job_id"], error=reason[:300])
        try:
            await client.nack(job, reason[:3000])
            stats.nacked += 1
        except DetectionApiError:
            stats.lost += 1
        return
    finally:
        heartbeat.cancel()
        path.unlink(missing_ok=True)
    try:
        await client.ack(job, verdict.model_dump(mode="json"))
        stats.acked += 1
        stats.decisions[verdict.decision.value] = stats.decisions.get(verdict.decision.value, 0) + 1
    except DetectionApiError as exc:
        log.warning("ack refused", job=job["job_id"], error=str(exc))
        stats.lost += 1


def failure_reason(exc: BaseException) -> str:
    """What a failed job records (its errors are read by monitors in the dead-letter list): a
    rejected verdict is described by field and rule, never by its values (a watchlist verdict's
    person references and distances must not leave the case-scoped alert)."""
    if isinstance(exc, ValidationError):
        return "invalid verdict: " + "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'verdict'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
    return str(exc)


async def _heartbeat(client: DetectionClient, job: dict[str, Any], lease_seconds: float) -> None:
    while True:
        await asyncio.sleep(max(lease_seconds / 3, 1.0))
        try:
            await client.extend(job, lease_seconds)
        except DetectionApiError:
            return
