"""``tgwatch demo``: the whole path on generated data (see ``crawler.demo``)."""

from __future__ import annotations

import click

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.demo import DEMO_CHANNEL, ingest_synthetic, print_stored


@click.command("demo")
@pass_app
@async_command
async def demo_cmd(app: AppContext) -> None:
    """Run tgwatch end to end on generated data in the embedded (or configured) store."""
    async with app.open() as opened:
        click.echo(f"store: {opened.store.kind} at {opened.store.masked_uri}")
        click.echo("== 1. the ingest door (synthetic batch) ==")
        await ingest_synthetic(opened.ingest, click.echo)
        key = await opened.ingest.channels.resolve(DEMO_CHANNEL)
        click.echo("stored:")
        await print_stored(opened.ingest, key or DEMO_CHANNEL.natural_key(), click.echo)
