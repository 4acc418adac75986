"""``tgwatch targets|schedule|run-now|run|worker|runs``: scheduled operation from the command line."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from config.targets import check_cron, load_targets, parse_duration
from crawler.audit import AuditLog
from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.progress import progress_bar
from crawler.scheduling import manage
from crawler.scheduling.plan import Schedule, build_schedules, exchange_schedule, select, takedown_schedule
from crawler.scheduling.runners import RUNNERS, RunContext
from crawler.scheduling.service import ServiceOptions, run_service, run_worker
from crawler.scheduling.shutdown import Shutdown
from crawler.scheduling.tasks import TaskSpec
from crawler.scheduling.worker import consumer_name
from foundation.errors import ConfigError, NotFound
from storage.repos.errors import ErrorRepo
from storage.repos.runs import RunRepo
from storage.repos.targets import TargetRepo, canonical_target

METHODS = click.Choice(["web", "mtproto"])


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if parse_duration(value) <= 0 and param.name != "jitter":
            raise ValueError("must be positive")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


def _cron(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_cron(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _load_config(app: AppContext) -> Any:
    return load_targets(app.config_path)


async def _schedules(app: AppContext, store: Any) -> list[Schedule]:
    return build_schedules(_load_config(app), await TargetRepo(store).list())


def _actor() -> manage.Actor:
    return manage.Actor(cli_actor(), "cli", "cli")


def _audit(app: AppContext, store: Any) -> AuditLog:
    """The audit trail with its ledger hook, as every CLI command that records an action uses it."""
    from crawler.evidence.wiring import audit_log, build_ledger

    return audit_log(store, build_ledger(store, app.settings))


# --- targets ----------------------------------------------------------------------------------


@click.group("targets")
def targets_group() -> None:
    """Channels crawled on a schedule (configuration [[targets]] plus those added here)."""


@targets_group.command("add")
@click.argument("name")
@click.option("--method", type=METHODS, default="web", show_default=True, help="web preview or MTProto")
@click.option("--every", callback=_duration, help="interval, e.g. 30m, 6h, 1d")
@click.option("--cron", callback=_cron, help='crontab expression (UTC), e.g. "0 */6 * * *"')
@click.option("--group", help="take the schedule of [groups.GROUP]")
@click.option("--jitter", callback=_duration, help="spread start times over this window")
@click.option("--priority", type=int, help="higher runs first when workers are busy")
@pass_app
@async_command
async def targets_add(
    app: AppContext, name: str, method: str, every: str | None, cron: str | None, group: str | None,
    jitter: str | None, priority: int | None,
) -> None:  # fmt: skip
    """Add NAME (username, @name or t.me link) or change its schedule."""
    if every and cron:
        raise click.UsageError("give --every or --cron, not both")
    groups = _load_config(app).groups
    if group is not None and group not in groups and group != "default":
        raise click.UsageError(f"no [groups.{group}] in the configuration (known: {', '.join(groups) or 'none'})")
    async with app.open() as opened:
        doc, schedule = await manage.add_target(
            opened.store, _load_config(app), _audit(app, opened.store), _actor(), name,
            method=method, every=every, cron=cron, group=group, jitter=jitter, priority=priority,
        )  # fmt: skip
    click.echo(f"{doc['_id']}  {schedule.method}  {schedule.describe}")


@targets_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def targets_list(app: AppContext, as_json: bool) -> None:
    """Every target with its effective method, schedule and source, and what tgwatch noted about it
    (a switch to MTProto it made itself, or why no method can read the target)."""
    async with app.open() as opened:
        docs = {str(d["_id"]): d for d in await TargetRepo(opened.store).list()}
        schedules = build_schedules(_load_config(app), docs.values())
        waiting = len(await manage.proposed_targets(opened.store))
    for s in schedules:
        notes = _target_notes(docs.get(s.target, {}))
        if as_json:
            click.echo(_dumps({**s.__dict__, "describe": s.describe, **notes}))
        else:
            state = "paused" if s.paused else "active"
            line = f"{s.target:<40} {s.method:<8} {state:<7} {s.describe:<22} {s.group or '-':<10} {s.source}"
            if notes.get("unreachable"):
                line += f"  UNREACHABLE: {notes['unreachable']['reason']}"
            elif notes.get("method_switch"):
                change = notes["method_switch"]
                line += f"  switched {change.get('from')}->{change.get('to')}: {change.get('reason')}"
            click.echo(line)
    if waiting and not as_json:
        click.echo(f"{waiting} proposed targets wait for review: tgwatch targets proposed")


def _target_notes(doc: dict[str, Any]) -> dict[str, Any]:
    """The target's last automatic method switch and its unreachable mark, when it has them."""
    notes: dict[str, Any] = {}
    changes = doc.get("method_changes") or []
    if changes:
        notes["method_switch"] = changes[-1]
    if doc.get("unreachable"):
        notes["unreachable"] = doc["unreachable"]
    return notes


@targets_group.command("remove")
@click.argument("name")
@pass_app
@async_command
async def targets_remove(app: AppContext, name: str) -> None:
    """Remove NAME from the database (a configured target stays until removed from the file)."""
    key, _ = canonical_target(name)
    async with app.open() as opened:
        try:
            configured = await manage.remove_target(
                opened.store, _load_config(app), _audit(app, opened.store), _actor(), name
            )
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"removed {key}" + (" (still in the configuration file)" if configured else ""))


@targets_group.command("pause")
@click.argument("name")
@click.option("--resume", is_flag=True, help="resume instead of pausing")
@pass_app
@async_command
async def targets_pause(app: AppContext, name: str, resume: bool) -> None:
    """Pause NAME (no new crawl tasks) or, with --resume, resume it."""
    async with app.open() as opened:
        try:
            key = await manage.set_paused(
                opened.store, _load_config(app), _audit(app, opened.store), _actor(), name, paused=not resume
            )
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"{'resumed' if resume else 'paused'} {key}")


@targets_group.command("proposed")
@click.option("--rejected", is_flag=True, help="also list the rejected proposals")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def targets_proposed(app: AppContext, rejected: bool, as_json: bool) -> None:
    """Targets proposed for review (bots found in buttons, links and mentions, or named to
    ``tgwatch bot``) with where they were found; none is crawled before it is approved."""
    async with app.open() as opened:
        docs = await manage.proposed_targets(opened.store, rejected=rejected)
    for doc in docs:
        if as_json:
            click.echo(_dumps(doc))
            continue
        found = doc.get("proposed") or {}
        where = found.get("message") or doc.get("found_in") or "-"
        how = found.get("how") or found.get("by") or "-"
        button = f"  button {found['button_text']!r}" if found.get("button_text") else ""
        click.echo(f"{doc['_id']:<40} {doc.get('status'):<9} {found.get('by', '-'):<12} {how:<8} {where}{button}")
    if not docs and not as_json:
        click.echo("no proposed targets")


@targets_group.command("approve")
@click.argument("name")
@pass_app
@async_command
async def targets_approve(app: AppContext, name: str) -> None:
    """Approve a proposed target: it is crawled on its schedule from now on."""
    async with app.open() as opened:
        try:
            doc = await manage.review_target(opened.store, _audit(app, opened.store), _actor(), name, approve=True)
        except (NotFound, ConfigError) as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"approved {doc['_id']}")


@targets_group.command("reject")
@click.argument("name")
@click.option("--reason", help="why (kept with the decision)")
@pass_app
@async_command
async def targets_reject(app: AppContext, name: str, reason: str | None) -> None:
    """Reject a proposed target: it is not crawled and never proposed again."""
    async with app.open() as opened:
        try:
            doc = await manage.review_target(
                opened.store, _audit(app, opened.store), _actor(), name, approve=False, reason=reason
            )
        except (NotFound, ConfigError) as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"rejected {doc['_id']}")


# --- schedule / run-now ---------------------------------------------------------------------------


@click.group("schedule")
def schedule_group() -> None:
    """The effective schedules."""


@schedule_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def schedule_list(app: AppContext, as_json: bool) -> None:
    """Each target's schedule, its last and next due time (UTC)."""
    now = datetime.now(UTC)
    async with app.open() as opened:
        schedules = await _schedules(app, opened.store)
    recheck = takedown_schedule(app.settings.takedowns.recheck_every)  # the built-in job `tgwatch run` adds
    exchanges = exchange_schedule(app.settings.exchanges.sync_every)  # likewise, when exchanges sync on a schedule
    for s in [*schedules, *(b for b in (recheck, exchanges) if b)]:
        last, nxt = s.due_at_or_before(now), None if s.paused else s.next_due(now)
        row = {"target": s.target, "method": s.method, "schedule": s.describe, "group": s.group,
               "paused": s.paused, "last_due": last, "next_due": nxt, "jitter_offset": s.offset()}  # fmt: skip
        if as_json:
            click.echo(_dumps(row))
        else:
            when = "paused" if s.paused else (nxt.strftime("%Y-%m-%d %H:%M:%S") if nxt else "-")
            click.echo(f"{s.target:<40} {s.method:<8} {s.describe:<22} next {when}")


@click.command("run-now")
@click.argument("selector", metavar="TARGET|GROUP")
@pass_app
@async_command
async def run_now_cmd(app: AppContext, selector: str) -> None:
    """Crawl TARGET (or every target of GROUP) now, in this process, with run records.

    A name that is not a known target is crawled once with the web method.
    """
    async with app.open() as opened:
        chosen = select(await _schedules(app, opened.store), selector)
        if not chosen:
            try:
                key, _ = canonical_target(selector)
            except ConfigError as exc:
                raise click.ClickException(f"no target or group {selector!r}") from exc
            chosen = [Schedule(key, selector, "web", 0.0, None, 0.0, 0, None, "run-now")]
        ctx = RunContext(app.settings, opened.store, opened.ingest, consumer=consumer_name("run-now"))
        failed = 0
        try:
            with progress_bar("crawling", total=len(chosen)) as bar:
                for s in chosen:
                    now = int(time.time())
                    spec = TaskSpec(f"run-now/{s.target}/{now}", s.target, s.name, s.method, now)
                    outcome = await RUNNERS[s.method](ctx, spec)
                    failed += outcome.status == "failed"
                    bar.advance(note=s.target)
                    counts = outcome.counts
                    click.echo(
                        f"{s.target}: {outcome.status}, pages {counts.get('pages', 0)}, new {counts.get('new', 0)},"
                        f" updated {counts.get('updated', 0)}, errors {outcome.errors}  (run {outcome.run_id})"
                    )
        finally:
            await ctx.aclose()
    if failed:
        raise click.ClickException(f"{failed} of {len(chosen)} crawls failed (see `tgwatch runs show RUN`)")


# --- run / worker ---------------------------------------------------------------------------------


def _child_argv(app: AppContext, lease: float, grace: float) -> list[str]:
    argv = [sys.executable, "-m", "crawler"]
    if app.config_path is not None:
        argv += ["--config", str(app.config_path)]
    for flag in ("data_dir", "log_format", "log_level"):
        value = app.overrides.get(flag)
        if value is not None:
            argv += ["--" + flag.replace("_", "-"), str(value)]
    return [*argv, "worker", "--lease", str(lease), "--grace", str(grace)]


@click.command("run")
@click.option("--with-api", is_flag=True, help="also serve the HTTP API (with /metrics) in this process")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--work/--no-work", default=True, show_default=True, help="also crawl due tasks in this process")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="crawls at once here")
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True, help="child worker processes")
@click.option("--lease", type=float, default=60.0, show_default=True, help="task lease seconds")
@click.option("--grace", type=float, default=30.0, show_default=True, help="seconds to finish crawls on SIGTERM")
@click.option("--sync", "sync_seconds", type=float, default=30.0, show_default=True, help="schedule reload seconds")
@pass_app
@async_command
async def run_cmd(
    app: AppContext, with_api: bool, host: str, port: int, work: bool, concurrency: int, workers: int, lease: float,
    grace: float, sync_seconds: float,
) -> None:  # fmt: skip
    """Run the scheduler daemon until SIGTERM/Ctrl-C (twice: abandon crawls in flight)."""
    from crawler.server_modules import ALL_MODULES

    opts = ServiceOptions(
        work=work, concurrency=concurrency, workers=workers, child_argv=_child_argv(app, lease, grace),
        with_api=with_api, host=host, port=port, api_modules=ALL_MODULES, lease_seconds=lease,
        grace_seconds=grace, sync_seconds=sync_seconds,
    )  # fmt: skip
    _load_config(app)  # fail early on a bad targets section
    shutdown = Shutdown().install()
    try:
        async with app.open(keep_alive=True) as opened:
            ctx = RunContext(app.settings, opened.store, opened.ingest, consumer=consumer_name("run"))

            def ready(info: dict[str, object]) -> None:
                click.echo("tgwatch run: " + _dumps(info), err=True)

            await run_service(ctx, lambda: _load_config(app), opts, shutdown, on_ready=ready)
    finally:
        shutdown.uninstall()


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--lease", type=float, default=60.0, show_default=True, help="task lease seconds")
@click.option("--grace", type=float, default=30.0, show_default=True, help="seconds to finish crawls on SIGTERM")
@click.option("--poll", type=float, default=2.0, show_default=True, help="seconds between claims when idle")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="serve /healthz, /readyz, /metrics here")
@click.option("--host", default="127.0.0.1", show_default=True, help="address for --metrics-port")
@click.option("--until-idle", is_flag=True, help="exit when no task is ready (batch use, tests)")
@pass_app
@async_command
async def worker_cmd(
    app: AppContext, concurrency: int, lease: float, grace: float, poll: float, metrics_port: int | None, host: str,
    until_idle: bool,
) -> None:  # fmt: skip
    """Claim crawl tasks from the shared queue and run them until SIGTERM."""
    opts = ServiceOptions(concurrency=concurrency, lease_seconds=lease, grace_seconds=grace, poll_seconds=poll,
                          host=host)  # fmt: skip
    shutdown = Shutdown().install()
    try:
        async with app.open(keep_alive=True) as opened:
            ctx = RunContext(app.settings, opened.store, opened.ingest, consumer=consumer_name())
            report = await run_worker(ctx, opts, shutdown, metrics_port=metrics_port, until_idle=until_idle)
    finally:
        shutdown.uninstall()
    click.echo(f"worker done: {_dumps(report.__dict__)}", err=True)


# --- runs -----------------------------------------------------------------------------------------


@click.group("runs")
def runs_group() -> None:
    """Crawl run history."""


def _run_line(doc: dict[str, Any]) -> str:
    counts = doc.get("counts") or {}
    started = doc.get("started_at")
    started_s = started.strftime("%Y-%m-%d %H:%M:%S") if isinstance(started, datetime) else str(started or "-")
    return (
        f"{doc['_id']}  {started_s}  {doc.get('status', '?'):<9} {doc.get('target', '?'):<36}"
        f" pages {counts.get('pages', 0):<4} new {counts.get('new', 0):<5} upd {counts.get('updated', 0):<4}"
        f" media {counts.get('media_refs', 0):<4} err {doc.get('errors', 0)}"
    )


@runs_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--target", help="only runs of this target")
@pass_app
@async_command
async def runs_list(app: AppContext, as_json: bool, limit: int, target: str | None) -> None:
    """Newest runs first."""
    from crawler.scheduling.abandoned import reap_dead_runs

    async with app.open() as opened:
        await reap_dead_runs(opened.store)
        if target:
            key, _ = canonical_target(target)
            docs = await RunRepo(opened.store).of_target(key, limit)
        else:
            docs = await RunRepo(opened.store).list(limit)
    for doc in docs:
        click.echo(_dumps(doc) if as_json else _run_line(doc))


@runs_group.command("show")
@click.argument("run_id")
@pass_app
@async_command
async def runs_show(app: AppContext, run_id: str) -> None:
    """One run with its recorded errors (JSON)."""
    from crawler.scheduling.abandoned import reap_dead_runs

    async with app.open() as opened:
        await reap_dead_runs(opened.store)
        doc = await RunRepo(opened.store).get(run_id)
        if doc is None:
            raise click.ClickException(f"no run {run_id}")
        errors = await ErrorRepo(opened.store).recent(limit=1000, run_id=run_id)
    doc["error_details"] = [{k: v for k, v in e.items() if k not in ("_id", "run_id")} for e in errors]
    click.echo(json.dumps(doc, ensure_ascii=False, default=str, indent=2))


COMMANDS = (targets_group, schedule_group, run_now_cmd, run_cmd, worker_cmd, runs_group)
