"""``tgwatch accounts|backfill|watch|invite|bot``: the MTProto side of tgwatch.

Secrets are typed at hidden prompts (or piped: ``--session-string -`` reads stdin) and stored only
encrypted; no command ever prints a phone number or a session string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import click

from crawler.cli.app import AppContext, Opened, async_command, pass_app
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.wiring import build_ledger, private_read_gate
from crawler.pipeline import open_pipeline
from foundation.errors import NotAuthorized, TgwatchError
from foundation.keys import load_or_create
from foundation.models import Source
from storage.client import open_store
from storage.repos.accounts import AccountRepo
from storage.repos.authorizations import AuthorizationRepo
from storage.repos.runs import RunRepo
from telegram_watch.accounts import Accounts, SessionInUse, check_account, import_session, login_interactive, summary
from telegram_watch.backfill import Backfill
from telegram_watch.bots import track_bots
from telegram_watch.client import ClientFactory, real_client_factory
from telegram_watch.crypto import SecretBox
from telegram_watch.entities import Target
from telegram_watch.invites import Invites
from telegram_watch.live import Watcher
from telegram_watch.media import MediaFetcher
from telegram_watch.pool import AccountPool
from telegram_watch.stories import StoryReader


@dataclass
class Telegram:
    opened: Opened
    accounts: Accounts
    factory: ClientFactory


@asynccontextmanager
async def open_telegram(app: AppContext) -> AsyncIterator[Telegram]:
    """Store + decrypting account store + client factory; refuses to run without a secrets key.

    The ingest door opened here has no MTProto media fetcher (account commands ingest nothing);
    ``open_pool`` opens one that does.
    """
    box = SecretBox.from_settings(app.settings)
    async with app.open() as opened:
        accounts = Accounts(AccountRepo(opened.store), box)
        yield Telegram(opened, accounts, real_client_factory(app.settings))


@asynccontextmanager
async def open_pool(app: AppContext) -> AsyncIterator[tuple[Telegram, AccountPool]]:
    """The account pool, and an ingest door whose media stage downloads MTProto media through it."""
    box = SecretBox.from_settings(app.settings)
    settings = app.settings
    async with open_store(settings) as store:
        accounts = Accounts(AccountRepo(store), box)
        factory = real_client_factory(settings)
        pool = await AccountPool.load(
            accounts,
            factory,
            pacing=settings.telegram.request_pacing_seconds,
            lease_seconds=settings.telegram.lease_seconds,
        )
        fetcher = MediaFetcher(
            pool,
            max_bytes=settings.limits.max_media_bytes,
            partial_dir=settings.data_dir / "downloads",
            key=load_or_create(None, settings.data_dir, "downloads"),
        )
        reporter = None
        if settings.takedowns.senders.mtproto.enabled:  # `auto` takedowns report in-app through this pool
            from telegram_watch.report import MtprotoReporter

            reporter = MtprotoReporter(pool, pacing=settings.takedowns.senders.mtproto.pacing)
        try:
            async with open_pipeline(
                store, settings, fetchers={Source.MTPROTO: fetcher}, takedown_reporter=reporter
            ) as ingest:
                yield Telegram(Opened(store=store, ingest=ingest), accounts, factory), pool
        finally:
            await pool.close()


# --- accounts -----------------------------------------------------------------------------------


@click.group("accounts")
def accounts_group() -> None:
    """The pool of Telegram accounts (sessions and phones stored encrypted)."""


@accounts_group.command("add")
@click.argument("name")
@click.option("--session-string", help="import an existing Telethon StringSession ('-' reads it from stdin)")
@click.option("--proxy", help="socks5://[user:pass@]host:port for this account")
@pass_app
@async_command
async def accounts_add(app: AppContext, name: str, session_string: str | None, proxy: str | None) -> None:
    """Log in interactively (phone, code, 2FA password) or import --session-string."""
    async with open_telegram(app) as tg:
        if session_string is not None:
            if session_string != "-":
                click.echo(
                    "warning: --session-string puts the session in the process list, readable by every "
                    "local user; use --session-string - and pipe it on stdin",
                    err=True,
                )
            session = sys.stdin.readline().strip() if session_string == "-" else session_string.strip()
            user_id = await import_session(tg.accounts, tg.factory, name, session, proxy=proxy)
        else:
            user_id = await login_interactive(
                tg.accounts,
                tg.factory,
                name,
                phone=lambda: click.prompt("Phone number (international format)", hide_input=True),
                code=lambda: click.prompt("Login code", hide_input=True),
                password=lambda: click.prompt("2FA password", hide_input=True, default="", show_default=False),
                proxy=proxy,
            )
    click.echo(f"account {name} added (user id {user_id})")


@accounts_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def accounts_list(app: AppContext, as_json: bool) -> None:
    """Accounts with their state; never shows phone numbers or sessions."""
    async with open_telegram(app) as tg:
        rows = await tg.accounts.summaries()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            wait = f" flood-wait {row['flood_wait_left']}s" if row["flood_wait_left"] else ""
            reason = f" ({row['reason']})" if row["reason"] else ""
            lease = f" leased-by {row['leased_by']}" if row["leased_by"] else ""
            click.echo(f"{row['name']:<20} {row['state']}{reason}{wait}{lease} waits={row['flood_waits']}")


@accounts_group.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def accounts_check(app: AppContext, names: tuple[str, ...], as_json: bool) -> None:
    """Connect with each stored session and record whether it still works (active, frozen, banned...).

    A session leased by a running worker is not opened (that would duplicate it); its stored state is
    shown with the lease instead."""
    async with open_telegram(app) as tg:
        selected = names or tuple(r["name"] for r in await tg.accounts.summaries())
        for name in selected:
            account = await tg.accounts.get(name)
            with contextlib.suppress(SessionInUse):
                await check_account(tg.accounts, tg.factory, account, lease_seconds=app.settings.telegram.lease_seconds)
            doc = await tg.accounts.repo.get(name)
            row = summary(doc) if doc else {"name": name, "state": "missing"}
            if as_json:
                click.echo(json.dumps(row))
                continue
            notes = [f"({row['reason']})"] if row.get("reason") else []
            if row.get("parked"):
                notes.append("parked")
            if row.get("flood_wait_left"):
                notes.append(f"flood-wait {row['flood_wait_left']}s")
            if row.get("leased_by"):
                notes.append(f"leased by {row['leased_by']} ({row['lease_left']}s left, not checked)")
            click.echo(" ".join([f"{name}: {row['state']}", *notes]))


@accounts_group.command("remove")
@click.argument("name")
@pass_app
@async_command
async def accounts_remove(app: AppContext, name: str) -> None:
    """Forget an account (its encrypted session is deleted)."""
    async with open_telegram(app) as tg:
        removed = await tg.accounts.repo.remove(name)
    if not removed:
        raise click.ClickException(f"no account named {name!r}")
    click.echo(f"account {name} removed")


# --- backfill / watch ---------------------------------------------------------------------------


def reach_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--comments/--topics/--bots``: what is followed beyond the history (all on by default)."""
    fn = click.option(
        "--bots/--no-bots", default=True, show_default=True, help="track bots named in buttons and links"
    )(fn)
    fn = click.option("--topics/--no-topics", default=True, show_default=True, help="keep a forum's topic list")(fn)
    return click.option(
        "--comments/--no-comments", default=True, show_default=True, help="read each post's comment thread"
    )(fn)


@click.command("backfill")
@click.argument("channel")
@reach_options
@click.option("--limit", type=click.IntRange(1), help="read at most N messages in this run")
@click.option(
    "--since-date", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), help="stop at messages older (UTC)"
)
@click.option("--stories", is_flag=True, help="also store the channel's visible stories")
@pass_app
@async_command
async def backfill_cmd(
    app: AppContext,
    channel: str,
    limit: int | None,
    since_date: datetime | None,
    stories: bool,
    comments: bool,
    topics: bool,
    bots: bool,
) -> None:
    """Read CHANNEL's history into the store; resumable (rerun after any interruption)."""
    since = since_date.replace(tzinfo=UTC) if since_date else None
    async with open_pool(app) as (tg, pool):
        runs = RunRepo(tg.opened.store)
        run_id = await runs.start(channel, "backfill")
        private_gate = private_read_gate(tg.opened.store, app.settings, run_id)

        runner = Backfill(
            pool,
            tg.opened.ingest,
            batch_size=app.settings.ingest.batch_size,
            run_id=run_id,
            web_base=app.settings.telegram_web_base,
            private_gate=private_gate,
            comments=comments,
            topics=topics,
            bots=bots,
        )
        status = "failed"
        try:
            result = await runner.run(Target.parse(channel), limit=limit, since=since)
            status = "ok" if result.state == "ok" else result.state
            if stories and result.state == "ok":
                reader = StoryReader(
                    pool, tg.opened.ingest, run_id=run_id, web_base=app.settings.telegram_web_base,
                    private_gate=private_gate,
                )  # fmt: skip
                story_result = await reader.read(Target.parse(channel))
                click.echo(f"stories: new {story_result.new if story_result else 0}")
        finally:
            await runs.finish(run_id, status, stats=dict(pool.stats))
    click.echo(
        f"{result.channel}: fetched {result.fetched}, new {result.stored.new}, updated {result.stored.updated},"
        f" state {result.state}, complete {result.complete}"
    )
    if result.threads or result.topics or result.bots:
        click.echo(
            f"{result.channel}: comments {result.comments} in {result.threads} threads, topics {result.topics},"
            f" bots tracked {len(result.bots)}"
        )


@click.command("watch")
@click.argument("channels", nargs=-1, required=True)
@click.option("--resync", type=float, default=300.0, show_default=True, help="seconds between safety catch-ups")
@click.option("--stories", is_flag=True, help="also store the channels' visible stories at every resync")
@reach_options
@pass_app
@async_command
async def watch_cmd(
    app: AppContext, channels: tuple[str, ...], resync: float, stories: bool, comments: bool, topics: bool, bots: bool
) -> None:
    """Follow CHANNELS live: new, edited and deleted messages (Ctrl-C to stop)."""
    async with open_pool(app) as (tg, pool):
        runs = RunRepo(tg.opened.store)
        run_id = await runs.start(",".join(channels), "watch")
        private_gate = private_read_gate(tg.opened.store, app.settings, run_id)

        runner = Backfill(
            pool,
            tg.opened.ingest,
            run_id=run_id,
            web_base=app.settings.telegram_web_base,
            private_gate=private_gate,
            comments=comments,
            topics=topics,
            bots=bots,
        )
        watcher = Watcher(
            pool,
            tg.opened.ingest,
            [Target.parse(c) for c in channels],
            backfill=runner,
            resync_seconds=resync,
            run_id=run_id,
        )
        story_task = None
        if stories:
            reader = StoryReader(
                pool, tg.opened.ingest, run_id=run_id, web_base=app.settings.telegram_web_base,
                private_gate=private_gate,
            )  # fmt: skip
            story_task = asyncio.create_task(_read_stories(reader, channels, resync))
        try:
            await watcher.run(asyncio.Event())
        finally:
            if story_task is not None:
                story_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await story_task
            await runs.finish(run_id, "stopped", counts=watcher.counts, stats=dict(pool.stats))


async def _read_stories(reader: StoryReader, channels: tuple[str, ...], every: float) -> None:
    """Stories expire within a day: read them again at every resync (a failure waits for the next)."""
    while True:
        for channel in channels:
            try:
                await reader.read(Target.parse(channel))
            except TgwatchError as exc:
                await reader.ingest.record_error(exc)
        await asyncio.sleep(every)


# --- invites ------------------------------------------------------------------------------------


@click.group("invite")
def invite_group() -> None:
    """Invite links: check (always allowed) or join (only under an authorization)."""


@invite_group.command("check")
@click.argument("link")
@pass_app
@async_command
async def invite_check(app: AppContext, link: str) -> None:
    """Title, member count and kind behind an invite, without joining."""
    async with open_pool(app) as (tg, pool):
        info = await Invites(pool, tg.opened.ingest, AuthorizationRepo(tg.opened.store)).check(link)
    click.echo(json.dumps({**asdict(info), "state": str(info.state)}, ensure_ascii=False))


@invite_group.command("join")
@click.argument("link")
@click.option("--account", help="the (authorized) account that joins")
@pass_app
@async_command
async def invite_join(app: AppContext, link: str, account: str | None) -> None:
    """Join through an invite; refused unless an active authorization covers it."""
    async with open_pool(app) as (tg, pool):
        ledger = build_ledger(tg.opened.store, app.settings)
        invites = Invites(
            pool, tg.opened.ingest, AuthorizationRepo(tg.opened.store), ledger_gate=Authorizations(ledger)
        )
        try:
            channel = await invites.join(link, account=account)
        except NotAuthorized as exc:
            raise click.ClickException(f"not_authorized: {exc.message}") from exc
    click.echo(f"joined {channel.ref.natural_key()} ({channel.title})")


# --- bots ---------------------------------------------------------------------------------------


@click.command("bot")
@click.argument("names", nargs=-1, required=True)
@pass_app
@async_command
async def bot_cmd(app: AppContext, names: tuple[str, ...]) -> None:
    """Record bots (name, description, commands) by username or t.me link; refreshes known ones.

    Each bot recorded is proposed as a crawl target (see ``tgwatch targets proposed``)."""
    from telegram_watch.bots import bot_username

    usernames = [bot_username(n if "/" in n else f"t.me/{n.lstrip('@')}") or n.lstrip("@").lower() for n in names]
    from crawler.cli.app import cli_actor
    from crawler.scheduling import manage

    async with open_pool(app) as (tg, pool):
        tracked, _ = await track_bots(pool, tg.opened.ingest, usernames, refresh=True, limit=len(usernames))
        # one path for every bot: a proposed target, crawled once a monitor or admin approves it
        proposed = await manage.propose_named_bots(
            tg.opened.store, [str(b.ref.username) for b in tracked], by="bot_command",
            actor=manage.Actor(cli_actor(), "cli", "cli"),
        )  # fmt: skip
    found = {str(b.ref.username) for b in tracked}
    for bot in tracked:
        click.echo(f"{bot.ref.username}: {bot.title} ({len(bot.bot_commands)} commands)")
    for key in proposed:
        click.echo(f"{key}: proposed as a target (tgwatch targets approve {key})")
    for name in usernames:
        if name not in found:
            click.echo(f"{name}: not recorded (not a bot, or not found)", err=True)


COMMANDS = (accounts_group, backfill_cmd, watch_cmd, invite_group, bot_cmd)
