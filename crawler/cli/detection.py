"""``tgwatch queue …`` (operators) and ``tgwatch detector run`` (the reference consumer)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import click

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.detection.client import DetectionClient
from crawler.detection.consumer import callable_detector, command_detector, run_consumer
from crawler.detection.service import DetectionService


@click.group("queue")
def queue_group() -> None:
    """The detection queue."""


@queue_group.command("stats")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def queue_stats(app: AppContext, as_json: bool) -> None:
    """Jobs ready, leased, done and dead, and the oldest ready job's age."""
    async with app.open() as opened:
        stats = await DetectionService(opened.store, app.settings).stats()
    if as_json:
        click.echo(json.dumps(stats))
    else:
        for key, value in stats.items():
            click.echo(f"{key:<18} {value}")


@queue_group.command("dead")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
@async_command
async def queue_dead(app: AppContext, limit: int) -> None:
    """Dead-letter jobs with their last error."""
    async with app.open() as opened:
        jobs = await DetectionService(opened.store, app.settings).queue.dead(limit)
    for job in jobs:
        last = (job.get("errors") or ["?"])[-1]
        click.echo(f"{job['_id']}  attempts={job['attempts']}  {last}")


@queue_group.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="requeue every dead job")
@pass_app
@async_command
async def queue_requeue(app: AppContext, job_ids: tuple[str, ...], all_dead: bool) -> None:
    """Put dead jobs back on the queue (attempts reset, error history kept)."""
    if not job_ids and not all_dead:
        raise click.UsageError("name JOB_IDS or use --all-dead")
    async with app.open() as opened:
        queue = DetectionService(opened.store, app.settings).queue
        ids = list(job_ids) + ([j["_id"] for j in await queue.dead(100_000)] if all_dead else [])
        done = [job_id for job_id in ids if await queue.requeue(job_id)]
    click.echo(f"requeued {len(done)} of {len(ids)}")


@click.group("detector")
def detector_group() -> None:
    """Run a detector against the queue over HTTP."""


@detector_group.command("run")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="tgwatch API base URL")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="file holding the detector token (or set env TGWATCH_DETECTOR_TOKEN)",
)
@click.option("--token", "token_arg", hidden=True, help="deprecated: visible in the process list")
@click.option("--cmd", "command", help='external program, e.g. "my-detector --json {path}"')
@click.option("--callable", "func", help="Python callable module:function(path, job) -> verdict dict")
@click.option("--name", default=f"detector-{os.getpid()}", show_default="detector-PID", help="consumer name")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--until-empty", is_flag=True, help="exit when no job is ready")
@click.option(
    "--timeout", "per_media_timeout", type=float, default=300.0, show_default=True, help="seconds per media for --cmd"
)
@click.option("--lease", "lease_seconds", type=float, default=120.0, show_default=True)
@async_command
async def detector_run(
    url: str,
    token_file: Path | None,
    token_arg: str | None,
    command: str | None,
    func: str | None,
    name: str,
    concurrency: int,
    until_empty: bool,
    per_media_timeout: float,
    lease_seconds: float,
) -> None:
    """Lease media, run the detector on each, post its verdict; nack what fails."""
    if bool(command) == bool(func):
        raise click.UsageError("give exactly one of --cmd or --callable")
    token = detector_token(token_file, token_arg)
    detector = command_detector(command, per_media_timeout) if command else callable_detector(str(func))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with DetectionClient(url, token) as client:
        stats = await run_consumer(
            client, detector, concurrency=concurrency, until_empty=until_empty, lease_seconds=lease_seconds, stop=stop
        )
    click.echo(json.dumps({"consumer": name, **stats.__dict__}))


TOKEN_ENV = "TGWATCH_DETECTOR_TOKEN"


def detector_token(token_file: Path | None, token_arg: str | None) -> str:
    """The token from ``--token-file``, the environment, or (warned) the command line.

    Any local user can read another process's argv (``ps``, ``/proc/PID/cmdline``), so a token
    given as ``--token`` is as good as published on a shared host; a file or the environment is not.
    """
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"cannot read --token-file {token_file}: {exc}") from None
        if not token:
            raise click.UsageError(f"--token-file {token_file} is empty")
        return token
    if token_arg:
        click.echo(
            f"warning: --token puts the token in the process list, readable by every local user; "
            f"use --token-file or {TOKEN_ENV} instead",
            err=True,
        )
        return token_arg
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise click.UsageError(f"no detector token: give --token-file FILE or set {TOKEN_ENV}")
    return token
