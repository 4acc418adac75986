"""``tgwatch notify …``: rules that send alerts to webhooks, e-mail and a Telegram staff chat.

Secrets are never given on the command line or stored: a webhook rule names the environment
variable holding its signing secret (``--secret-env``); the SMTP password and the bot token come
from ``TGWATCH_SMTP__PASSWORD`` and ``TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.evidence.hooks import notification_hook
from crawler.evidence.wiring import build_ledger
from crawler.notify.rules import KINDS, NotifyRule
from crawler.notify.service import NotifyService
from crawler.scheduling.groups import target_groups
from storage.client import open_store


@asynccontextmanager
async def _service(app: AppContext) -> AsyncIterator[NotifyService]:
    async with open_store(app.settings) as store:
        service = NotifyService(
            store, app.settings, on_sent=notification_hook(build_ledger(store, app.settings).append),
            channel_groups=target_groups(store, app.settings),
        )  # fmt: skip
        try:
            yield service
        finally:
            await service.aclose()


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


@click.group("notify")
def notify_group() -> None:
    """Notification rules and deliveries (webhook, e-mail, Telegram bot)."""


@notify_group.command("add")
@click.argument("name")
@click.option("--webhook", "webhook", metavar="URL", help="POST signed JSON to this URL")
@click.option("--secret-env", metavar="VAR", help="environment variable with the webhook secret (or a bot token)")
@click.option("--email", "email", metavar="ADDR", help="send mail to this address (settings: smtp.*)")
@click.option("--telegram-chat", "chat", metavar="ID", help="Bot API message to this chat id (or @channel)")
@click.option("--on", "kinds", multiple=True, metavar="KIND",
              help=f"alert kind (repeatable; default all): {', '.join(KINDS)}, or hash_match:LIST")  # fmt: skip
@click.option("--channel", "channels", multiple=True, metavar="NAME", help="only alerts in this channel (repeatable)")
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="only alerts in this target group (repeatable)")
@click.option("--min-severity", type=click.Choice(["low", "medium", "high", "critical"]), default="low",
              show_default=True)  # fmt: skip
@click.option("--lang", type=click.Choice(["ko", "en"]), help="language of the messages (default: notify.default_lang)")
@pass_app
@async_command
async def notify_add(
    app: AppContext, name: str, webhook: str | None, secret_env: str | None, email: str | None, chat: str | None,
    kinds: tuple[str, ...], channels: tuple[str, ...], groups: tuple[str, ...], min_severity: str, lang: str | None,
) -> None:  # fmt: skip
    """Add rule NAME: which alerts go to one sink."""
    chosen = [(s, t) for s, t in (("webhook", webhook), ("email", email), ("telegram", chat)) if t]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --webhook, --email, --telegram-chat")
    sink, target = chosen[0]
    try:
        rule = NotifyRule(
            name=name, sink=sink, target=target, secret_env=secret_env, kinds=list(kinds), channels=list(channels),
            groups=list(groups),
            min_severity=min_severity, lang=lang or app.settings.notify.default_lang,
        )  # fmt: skip
    except ValidationError as exc:
        raise click.UsageError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    async with _service(app) as service:
        await service.add(rule)
    click.echo(f"rule {name!r} added: {sink} → {target}")


@notify_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def notify_list(app: AppContext, as_json: bool) -> None:
    """Rules, and deliveries per state (ready, leased, done, dead)."""
    async with _service(app) as service:
        rules = await service.all_rules()
        stats = await service.stats()
    if as_json:
        click.echo(json.dumps({"rules": [r.model_dump(mode="json") for r in rules], "deliveries": stats}))
        return
    for r in rules:
        on = ",".join(r.kinds) or "all kinds"
        where = ",".join(r.channels) or "all channels"
        if r.groups:
            where += " groups=" + ",".join(r.groups)
        env = f" secret-env={r.secret_env}" if r.secret_env else ""
        click.echo(f"{r.name:<16} {r.sink:<8} {r.target}  on={on} channels={where} min={r.min_severity} "
                   f"lang={r.lang}{env}")  # fmt: skip
    click.echo(
        f"deliveries: ready={stats['ready']} leased={stats['leased']} done={stats['done']} dead={stats['dead']}",
        err=True,
    )


@notify_group.command("remove")
@click.argument("name")
@pass_app
@async_command
async def notify_remove(app: AppContext, name: str) -> None:
    """Remove rule NAME (its deliveries not yet sent are skipped)."""
    async with _service(app) as service:
        await service.remove(name)
    click.echo(f"rule {name!r} removed")


@notify_group.command("test")
@click.argument("name")
@pass_app
@async_command
async def notify_test(app: AppContext, name: str) -> None:
    """Send a test message through rule NAME's sink now."""
    async with _service(app) as service:
        sha256 = await service.test(name)
    click.echo(f"test notification sent through {name!r} (sha256 {sha256})")


@notify_group.command("log")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def notify_log(app: AppContext, name: str | None, limit: int, as_json: bool) -> None:
    """Every sending attempt (newest first): sent, failed, dead, held by the rate limit, skipped."""
    async with _service(app) as service:
        entries = await service.log(name, limit)
    for e in entries:
        if as_json:
            click.echo(json.dumps({k: v for k, v in e.items() if k != "at"}, default=str))
            continue
        alerts = ",".join(e.get("alerts") or []) or "-"
        detail = e.get("error") or (f"sha256 {e['sha256']}" if e.get("sha256") else "")
        click.echo(f"{_when(e.get('at_ts'))}  {e.get('rule')}  {e.get('kind'):<6} {e.get('outcome'):<7} "
                   f"attempt={e.get('attempt')} alerts={alerts}  {detail}")  # fmt: skip


@notify_group.command("dead")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
@async_command
async def notify_dead(app: AppContext, limit: int) -> None:
    """Deliveries that failed every attempt, with their last error."""
    async with _service(app) as service:
        jobs = await service.dead(limit)
    for job in jobs:
        last = (job.get("errors") or ["?"])[-1]
        click.echo(f"{job['_id']}  attempts={job['attempts']}  {last}")


@notify_group.command("requeue")
@click.argument("delivery_ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="requeue every dead delivery")
@pass_app
@async_command
async def notify_requeue(app: AppContext, delivery_ids: tuple[str, ...], all_dead: bool) -> None:
    """Try dead deliveries again (attempts reset, error history kept)."""
    if not delivery_ids and not all_dead:
        raise click.UsageError("name DELIVERY_IDS or use --all-dead")
    async with _service(app) as service:
        n = await service.requeue(list(delivery_ids), all_dead=all_dead)
    click.echo(f"requeued {n} deliver{'y' if n == 1 else 'ies'}")


@notify_group.command("deliver")
@click.option("--until-empty", is_flag=True, help="exit once nothing is ready to send (cron, tests)")
@pass_app
@async_command
async def notify_deliver(app: AppContext, until_empty: bool) -> None:
    """Send pending notifications (runs until SIGTERM; ``tgwatch run`` and ``serve`` also do this)."""
    async with _service(app) as service:
        if until_empty:
            counts = await service.dispatcher.drain()
            click.echo("notify deliver: " + json.dumps(counts, sort_keys=True), err=True)
            return
        await service.dispatcher.run(asyncio.Event())
