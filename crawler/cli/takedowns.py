"""``tgwatch takedown …``: turn alerts into removal requests, send them, and follow them until gone.

The acting person is the OS user (``--actor`` overrides it). Every change is a ledger entry (made by
``TakedownService``); reading a request's history is audited like other evidence reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click

from crawler.audit import AuditLog
from crawler.cli.app import AppContext, async_command, pass_app
from crawler.cli.case_option import case_id_param
from crawler.evidence.hooks import audit_hook
from crawler.evidence.wiring import build_ledger
from crawler.takedowns.models import Reason, RequestStatus, TakedownRequest
from crawler.takedowns.render import render_json, render_text, tree_head
from crawler.takedowns.sending import Dispatcher, SendOutcome
from crawler.takedowns.service import TakedownService
from crawler.takedowns.stats import compute_stats
from crawler.tokens import cli_actor
from foundation.models import utcnow
from storage.client import open_store

REASONS = [r.value for r in Reason]
STATUSES = [s.value for s in RequestStatus]
actor_option = click.option("--actor", help="who is acting (default: the OS user)")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


@asynccontextmanager
async def _service(app: AppContext) -> AsyncIterator[TakedownService]:
    async with open_store(app.settings) as store:
        yield TakedownService(store, build_ledger(store, app.settings), app.settings.takedowns)


def _line(req: TakedownRequest) -> str:
    removed = sum(1 for i in req.items if i.status.value == "removed")
    sent = req.sent_at.strftime("%Y-%m-%d %H:%M") if req.sent_at else "not sent"
    return (
        f"{req.id}  {req.status.value:<8}  {req.reason.value:<15}  {removed}/{len(req.items)} removed  "
        f"sent {sent}  case {req.case or '-'}"
    )


@click.group("takedown")
def takedown_group() -> None:
    """Removal requests to platforms: create, review drafts, send, mark sent, re-check, figures."""


@takedown_group.command("create")
@click.option("--alert", "alert", help="an alert key: its message and every stored message with its media")
@click.option("--message", "messages", multiple=True, help="CHANNEL/ID (repeatable)")
@click.option("--channel", help="report a whole channel (NAME, @NAME or t.me link)")
@click.option("--reason", type=click.Choice(REASONS), required=True, help="the reason category")
@click.option("--case", "case_id", callback=case_id_param, help="the case the request belongs to")
@click.option("--note", help="a free-text note printed in the report")
@click.option("--json", "as_json", is_flag=True)
@actor_option
@pass_app
@async_command
async def create_cmd(
    app: AppContext,
    alert: str | None,
    messages: tuple[str, ...],
    channel: str | None,
    reason: str,
    case_id: str | None,
    note: str | None,
    as_json: bool,
    actor: str | None,
) -> None:
    """Group items into one request (one ledger entry) and print its id."""
    if alert is None and not messages and channel is None:
        raise click.UsageError("name what to report: --alert, --message or --channel")
    async with _service(app) as service:
        req = await service.create(
            reason=Reason(reason), actor=cli_actor(actor), alert=alert, messages=messages,
            channel=channel, case=case_id, note=note,
        )  # fmt: skip
    if as_json:
        click.echo(_dumps(render_json(req, app.settings.takedowns)))
        return
    click.echo(f"created {req.id}: {len(req.items)} items, reason {req.reason.value}, ledger entry {req.ledger[0]}")
    for item in req.items:
        click.echo(f"  {item.link or item.item_id}  ({len(item.media)} media, evidence {item.evidence})")
    click.echo(f"next: tgwatch takedown show {req.id} --format text, then tgwatch takedown mark-sent {req.id} --via …")


@takedown_group.command("show")
@click.argument("request_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "status"]), default="text", show_default=True)
@click.option("--language", help="the text report's language (one with report.* in its catalog; default: settings)")
@pass_app
@async_command
async def show_cmd(app: AppContext, request_id: str, fmt: str, language: str | None) -> None:
    """Print the report (text for Telegram's abuse channels, JSON for a hotline system) or item states."""
    async with _service(app) as service:
        req = await service.get(request_id)
        head = await tree_head(service.ledger) if fmt == "json" else None
    if fmt == "text":
        click.echo(render_text(req, app.settings.takedowns, language=language), nl=False)
    elif fmt == "json":
        click.echo(_dumps(render_json(req, app.settings.takedowns, tree_head=head)))
    else:
        click.echo(_line(req))
        for item in req.items:
            checked = item.checked_at.strftime("%Y-%m-%d %H:%M") if item.checked_at else "never"
            nxt = item.next_check_at.strftime("%Y-%m-%d %H:%M") if item.next_check_at else "final"
            click.echo(
                f"  {item.link or item.item_id}  {item.status.value} ({item.status_reason or '-'})  "
                f"checked {checked}  next {nxt}"
            )
        for sent in req.sendings:
            digest = f"  sha256 {sent.sha256}" if sent.sha256 else ""
            click.echo(f"  sent {sent.at:%Y-%m-%d %H:%M:%S} via {sent.via} by {sent.by}{digest}")
        for failed in req.failures:
            click.echo(
                f"  FAILED {failed.at:%Y-%m-%d %H:%M:%S} {failed.channel} attempt {failed.attempt}: {failed.error}"
            )
        if req.rejected_at is not None:
            click.echo(f"  rejected {req.rejected_at:%Y-%m-%d %H:%M} by {req.rejected_by}: {req.reject_reason}")


@takedown_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def list_cmd(app: AppContext, status: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Requests, newest first."""
    async with _service(app) as service:
        reqs = await service.recent(statuses=list(status) or None, limit=limit)
    if as_json:
        click.echo(_dumps([r.model_dump(mode="json") for r in reqs]))
        return
    for req in reqs:
        click.echo(_line(req))
    if not reqs:
        click.echo("no takedown requests")


@takedown_group.command("mark-sent")
@click.argument("request_id")
@click.option("--via", required=True, help="how it was sent, e.g. email:abuse@telegram.org, in-app, hotline:NAME")
@click.option("--reference", help="the platform's ticket or reference number")
@actor_option
@pass_app
@async_command
async def mark_sent_cmd(app: AppContext, request_id: str, via: str, reference: str | None, actor: str | None) -> None:
    """Record who sent the request, when and how (a ledger entry)."""
    async with _service(app) as service:
        req = await service.mark_sent(request_id, via=via, actor=cli_actor(actor), reference=reference)
    sent = req.sendings[-1]
    click.echo(
        f"{req.id} marked sent via {sent.via} by {sent.by} at {sent.at:%Y-%m-%d %H:%M:%S} UTC ({req.status.value})"
    )


@asynccontextmanager
async def _dispatcher(app: AppContext) -> AsyncIterator[Dispatcher]:
    """The configured senders; the account pool is opened only when the in-app sender is enabled."""
    from crawler.takedowns.senders import build_senders

    async with open_store(app.settings) as store:
        service = TakedownService(store, build_ledger(store, app.settings), app.settings.takedowns)
        pool: Any = None
        reporter: Any = None
        try:
            if app.settings.takedowns.senders.mtproto.enabled:
                from storage.repos.accounts import AccountRepo
                from telegram_watch.accounts import Accounts
                from telegram_watch.client import real_client_factory
                from telegram_watch.crypto import SecretBox
                from telegram_watch.pool import AccountPool
                from telegram_watch.report import MtprotoReporter

                accounts = Accounts(AccountRepo(store), SecretBox.from_settings(app.settings))
                pool = await AccountPool.load(
                    accounts, real_client_factory(app.settings), pacing=app.settings.telegram.request_pacing_seconds
                )
                reporter = MtprotoReporter(pool, pacing=app.settings.takedowns.senders.mtproto.pacing)
            yield Dispatcher(service, build_senders(app.settings, reporter=reporter))
        finally:
            if pool is not None:
                await pool.close()


def _print_outcome(outcome: SendOutcome, as_json: bool) -> None:
    req = outcome.request
    if as_json:
        click.echo(_dumps({"request": req.id, "status": req.status.value, "sent": outcome.sent,
                           "failed": outcome.failed}))  # fmt: skip
    else:
        for via in outcome.sent:
            click.echo(f"{req.id} sent via {via}")
        for failure in outcome.failed:
            click.echo(f"{req.id} NOT sent: {failure}", err=True)
        click.echo(f"{req.id}: {req.status.value}")
    if outcome.failed:
        raise SystemExit(1)


@takedown_group.command("send")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@actor_option
@pass_app
@async_command
async def send_cmd(app: AppContext, request_id: str, as_json: bool, actor: str | None) -> None:
    """Send through the configured senders (e-mail, in-app report, hotline); each sending is a ledger entry.

    Without any sender configured the request is recorded as sent by hand."""
    async with _dispatcher(app) as dispatcher:
        outcome = await dispatcher.send(request_id, actor=cli_actor(actor))
    _print_outcome(outcome, as_json)


@takedown_group.command("approve")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@actor_option
@pass_app
@async_command
async def approve_cmd(app: AppContext, request_id: str, as_json: bool, actor: str | None) -> None:
    """Approve a draft and send it at once (the approval and each sending are ledger entries)."""
    async with _dispatcher(app) as dispatcher:
        outcome = await dispatcher.approve(request_id, actor=cli_actor(actor))
    _print_outcome(outcome, as_json)


@takedown_group.command("reject")
@click.argument("request_id")
@click.option("--reason", "why", required=True, help="why the draft must not be sent")
@actor_option
@pass_app
@async_command
async def reject_cmd(app: AppContext, request_id: str, why: str, actor: str | None) -> None:
    """Reject a draft with a reason (a ledger entry); it is never sent and no longer re-checked."""
    async with _service(app) as service:
        req = await service.reject(request_id, reason=why, actor=cli_actor(actor))
    click.echo(f"{req.id} rejected by {req.rejected_by}: {req.reject_reason}")


@takedown_group.command("edit")
@click.argument("request_id")
@click.option("--note", help="replace the note printed in the report ('' removes it)")
@click.option("--reason", type=click.Choice(REASONS), help="change the reason category")
@click.option("--remove-item", "remove_items", multiple=True, help="an item id to drop (repeatable)")
@actor_option
@pass_app
@async_command
async def edit_cmd(
    app: AppContext,
    request_id: str,
    note: str | None,
    reason: str | None,
    remove_items: tuple[str, ...],
    actor: str | None,
) -> None:
    """Edit an unsent request (a ledger entry naming each change)."""
    async with _service(app) as service:
        req = await service.edit(
            request_id, actor=cli_actor(actor), note=note, reason=Reason(reason) if reason else None,
            remove_items=remove_items,
        )  # fmt: skip
    click.echo(f"{req.id}: {len(req.items)} items, reason {req.reason.value}, note {req.note or '-'}")


@takedown_group.command("recheck")
@click.argument("request_id", required=False)
@click.option("--base-url", help="t.me pages base URL (default: settings telegram_web_base)")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def recheck_cmd(app: AppContext, request_id: str | None, base_url: str | None, as_json: bool) -> None:
    """Re-fetch reported items (every item of ID, or every item due now) and record what is gone."""
    from crawler.takedowns.run import build_probes, run_recheck
    from storage.repos.accounts import AccountRepo

    async with open_store(app.settings) as store:
        pool_holder: list[Any] = []

        async def pool() -> Any:
            from telegram_watch.accounts import Accounts
            from telegram_watch.client import real_client_factory
            from telegram_watch.crypto import SecretBox
            from telegram_watch.pool import AccountPool

            accounts = Accounts(AccountRepo(store), SecretBox.from_settings(app.settings))
            opened = await AccountPool.load(
                accounts, real_client_factory(app.settings), pacing=app.settings.telegram.request_pacing_seconds
            )
            pool_holder.append(opened)
            return opened

        try:
            probes = build_probes(app.settings, web_base=base_url, pool=pool)
            summary = await run_recheck(app.settings, store, probes, request_id=request_id, method="takedown")
        finally:
            for opened in pool_holder:
                await opened.close()
    if as_json:
        click.echo(_dumps(summary.as_dict()))
        return
    results = ", ".join(f"{k}: {v}" for k, v in sorted(summary.results.items())) or "nothing due"
    click.echo(f"checked {summary.checked} items of {summary.requests} requests: {results}")
    click.echo(
        f"status changes: {summary.changed}"
        + (f"; re-opened: {', '.join(summary.reopened)}" if summary.reopened else "")
    )


@takedown_group.command("stats")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def stats_cmd(app: AppContext, as_json: bool) -> None:
    """Time to request and to removal, share removed after 24 h / 7 d / 30 d, overdue requests."""
    async with _service(app) as service:
        stats = compute_stats(await service.all(), utcnow(), overdue_after=app.settings.takedowns.overdue_after)
    data = stats.as_dict()
    if as_json:
        click.echo(_dumps(data))
        return
    click.echo(f"requests: {data['requests']}")
    click.echo(f"items:    {data['items']}")
    for name in ("detection_to_request", "request_to_removal"):
        d = data[name]
        click.echo(f"{name.replace('_', ' ')}: n={d['count']} median {_dur(d['median_s'])} p90 {_dur(d['p90_s'])}")
    for name, share in data["removed_within"]["items"].items():
        pct = "-" if share["share"] is None else f"{100 * share['share']:.1f}%"
        click.echo(f"removed within {name}: {pct} of {share['eligible']} items")
    click.echo(f"overdue: {data['overdue']['count']} {' '.join(data['overdue']['requests'])}".rstrip())


@takedown_group.command("history")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@actor_option
@pass_app
@async_command
async def history_cmd(app: AppContext, request_id: str, as_json: bool, actor: str | None) -> None:
    """The request's ledger entries, oldest first (audited)."""
    async with _service(app) as service:
        entries = await service.history(request_id)
        audit = AuditLog(service.store, hooks=[audit_hook(service.ledger)])
        await audit.record_access(
            actor=cli_actor(actor), role="operator", action="takedowns.history",
            target=request_id, result_count=len(entries), via="cli",
        )  # fmt: skip
    if as_json:
        click.echo(_dumps(entries))
        return
    for e in entries:
        extra = {k: e[k] for k in ("item", "from", "to", "via", "cause", "status_reason") if k in e}
        click.echo(f"#{e['seq']}  {e['logged_at']}  {e['action']:<12} {e.get('actor', '')}  {extra or ''}".rstrip())


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"
