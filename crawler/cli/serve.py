"""``tgwatch serve`` and ``tgwatch tokens …``."""

from __future__ import annotations

import asyncio
import contextlib
import json

import click
from aiohttp import web

from crawler.api.app import build_app, runner_args
from crawler.cli.app import AppContext, async_command, pass_app
from crawler.evidence.hooks import notification_hook
from crawler.evidence.wiring import build_ledger
from crawler.notify.service import notifier
from crawler.scheduling.groups import target_groups
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--notify/--no-notify", default=True, show_default=True, help="also deliver notifications here")
@pass_app
@async_command
async def serve_cmd(app: AppContext, host: str, port: int, notify: bool) -> None:
    """Serve the HTTP API (and console) until interrupted."""
    async with app.open(keep_alive=True) as opened, contextlib.AsyncExitStack() as stack:
        if notify:
            on_sent = notification_hook(build_ledger(opened.store, app.settings).append)
            groups = target_groups(opened.store, app.settings)
            await stack.enter_async_context(
                notifier(opened.store, app.settings, on_sent=on_sent, channel_groups=groups)
            )
        web_app = build_app(opened.store, app.settings, ALL_MODULES)
        runner = web.AppRunner(web_app, **runner_args(app.settings))
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0] if runner.addresses else (host, port)
        click.echo(f"tgwatch API on http://{bound[0]}:{bound[1]}/ (OpenAPI: /api/v1/openapi.json)", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


@click.group("tokens")
def tokens_group() -> None:
    """API tokens (stored hashed; shown once)."""


@tokens_group.command("create")
@click.option("--name", required=True, help="who or what uses the token")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@pass_app
@async_command
async def tokens_create(app: AppContext, name: str, role: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    async with app.open() as opened:
        token, doc = await TokenRepo(opened.store, server_secret(app.settings)).create(name, Role(role))
    click.echo(token)
    click.echo(
        f"token id {doc['token_id']} for {name!r} with role {role}: store it now, it is not shown again", err=True
    )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def tokens_list(app: AppContext, as_json: bool) -> None:
    """Tokens without their secrets."""
    async with app.open() as opened:
        docs = await TokenRepo(opened.store, server_secret(app.settings)).list()
    for doc in docs:
        if as_json:
            click.echo(json.dumps(doc, default=str))
        else:
            # legacy = stored as plain SHA-256 before the keyed digest: it no longer signs in; re-create it
            state = "revoked" if doc.get("revoked_at") else "legacy" if doc.get("legacy") else "active"
            click.echo(f"{doc['token_id']}  {doc['role']:<13} {state:<8} {doc['name']}")


@tokens_group.command("revoke")
@click.argument("token_id_or_name")
@pass_app
@async_command
async def tokens_revoke(app: AppContext, token_id_or_name: str) -> None:
    """Revoke by token id or name."""
    async with app.open() as opened:
        n = await TokenRepo(opened.store, server_secret(app.settings)).revoke(token_id_or_name)
    if not n:
        raise click.ClickException(f"no active token {token_id_or_name!r}")
    click.echo(f"revoked {n} token(s)")
