"""``tgwatch demo``: the whole path on generated data (see ``crawler.demo`` and ``crawler.demo_site``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.demo import DEMO_CHANNEL, ingest_synthetic, next_steps, print_stored, tgwatch_command
from crawler.evidence.signing import generate_key
from crawler.evidence.wiring import build_ledger
from foundation.egress import allowing_private_hosts

#: where ``spiders.sample_site.SampleSite.serve`` listens by default
SAMPLE_SITE_HOST = "127.0.0.1"


@click.command("demo")
@click.option("--quick", is_flag=True, help="only the ingest-door step (no sample site)")
@pass_app
@async_command
async def demo_cmd(app: AppContext, quick: bool) -> None:
    """Run tgwatch end to end on the bundled offline sample site, in the embedded (or configured) store."""
    from spiders.runner import ensure_asyncio_reactor  # before anything imports Twisted's reactor

    ensure_asyncio_reactor()
    settings = app.settings
    # the offline sample site (pages and media) is on loopback: name it to the egress guard
    app._settings = settings = allowing_private_hosts(settings, SAMPLE_SITE_HOST)
    key = settings.evidence.private_key_path(settings.data_dir)
    if not key.exists():
        files = generate_key(key.parent, name=key.name)
        click.echo(f"created the evidence signing key {files.private_path} (key id {files.key_id[:16]}…)")
    async with app.open() as opened:
        click.echo(f"store: {opened.store.kind} at {opened.store.masked_uri}")
        click.echo("== 1. the ingest door (synthetic batch) ==")
        await ingest_synthetic(opened.ingest, click.echo)
        key_name = await opened.ingest.resolve_channel(DEMO_CHANNEL)
        click.echo("stored:")
        await print_stored(opened.store, key_name or DEMO_CHANNEL.natural_key(), click.echo)
        if not quick:
            from crawler import demo_site

            ledger = build_ledger(opened.store, settings)
            await demo_site.run(settings, opened.store, opened.ingest, ledger, click.echo)
    command = tgwatch_command(sys.argv[0], Path.cwd(), shutil.which("tgwatch"))
    channel = DEMO_CHANNEL.natural_key() if quick else "korea_now"
    for line in next_steps(command, settings.data_dir, Path.cwd(), channel):
        click.echo(line)
