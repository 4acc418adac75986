"""Set-up and inspection commands: ``init``, ``config show``, ``db status``."""

from __future__ import annotations

import json

import click

from crawler.cli.app import AppContext, async_command, pass_app
from storage import schema
from storage.client import translate_errors
from storage.status import collection_counts


@click.command("init")
@pass_app
@async_command
async def init_cmd(app: AppContext) -> None:
    """Create every collection and index (idempotent)."""
    async with app.open() as opened:
        applied = await schema.apply(opened.store.db)
    click.echo(f"schema applied to {opened.store.kind} store: {len(applied)} collections")
    for name, indexes in applied.items():
        click.echo(f"  {name}: {', '.join(indexes)}")


@click.group("config")
def config_group() -> None:
    """Inspect the effective settings."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of TOML-like lines")
@pass_app
def config_show(app: AppContext, as_json: bool) -> None:
    """Print the effective settings (defaults < file < env < flags) with every secret masked."""
    data = app.settings.masked()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"[{key}]")
            for sub, subval in value.items():
                click.echo(f"  {sub} = {json.dumps(subval, ensure_ascii=False)}")
        else:
            click.echo(f"{key} = {json.dumps(value, ensure_ascii=False)}")


@click.group("db")
def db_group() -> None:
    """Inspect the store."""


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def db_status(app: AppContext, as_json: bool) -> None:
    """Server kind, URI (password masked) and documents per collection."""
    async with app.open() as opened:
        store = opened.store
        with translate_errors("db status"):
            info = await store.client.admin.command("buildInfo")
        counts = await collection_counts(store)
    status = {
        "kind": store.kind,
        "server": f"{info.get('process', 'mongod')} {info.get('version', '?')}",
        "uri": store.masked_uri,
        "database": store.db.name,
        "collections": counts,
    }
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"store:    {status['kind']} ({status['server']})")
    click.echo(f"uri:      {status['uri']}")
    click.echo(f"database: {status['database']}")
    for name, count in counts.items():
        click.echo(f"  {name:<20} {count:>10}")
