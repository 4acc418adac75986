"""``tgwatch crawl channel NAME|URL``: read a public channel's web preview into the store.

A live progress line on a TTY (rich), one JSON summary line otherwise (``--json`` forces it), so the
command is as usable by a person as by a scheduler or a script.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from crawler.cli.app import AppContext, async_command, pass_app

crawl = click.Group("crawl", help="Crawl public sources (the t.me web preview) into the store.")


@crawl.command("channel")
@click.argument("target")
@click.option("--pages", type=click.IntRange(min=1), help="walk back at most N pages (about 20 messages each)")
@click.option("--since", type=click.IntRange(min=0), help="stop once message ids <= ID are reached")
@click.option("--full", is_flag=True, help="walk back to the channel's first message (resumable)")
@click.option("--base-url", help="web preview base URL (default: settings telegram_web_base, https://t.me)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
@pass_app
@async_command
async def channel_cmd(
    app: AppContext,
    target: str,
    pages: int | None,
    since: int | None,
    full: bool,
    base_url: str | None,
    as_json: bool,
) -> None:
    """Crawl TARGET (a username, @name, t.me/NAME, t.me/s/NAME or telegram.me/NAME).

    Without --pages/--since/--full: everything newer than the last crawl (all of it on the first
    crawl); an interrupted crawl resumes where it stopped.
    """
    from spiders.runner import ensure_asyncio_reactor  # before anything imports Twisted's reactor

    ensure_asyncio_reactor()
    from crawler.crawl_web import StoreRunRecorder, crawl_channel
    from foundation.egress import allowing_private_hosts, check_base_url
    from spiders.tme_channel import CrawlMode

    if sum(x is not None and x is not False for x in (pages, since, full or None)) > 1:
        raise click.UsageError("choose one of --pages, --since and --full")
    mode = CrawlMode(pages=pages, since=since, full=full)
    settings = app.settings
    if base_url is not None:
        # the operator named this site: its pages and the media it serves may be on a private address
        app._settings = settings = allowing_private_hosts(settings, check_base_url(base_url))
    live = sys.stdout.isatty() and not as_json
    async with app.open() as opened:
        recorder = StoreRunRecorder(opened.store)
        if live:
            summary = await _with_progress(
                lambda progress: crawl_channel(
                    settings, opened.ingest, target, mode=mode, base_url=base_url, recorder=recorder, progress=progress
                )
            )
        else:
            summary = await crawl_channel(
                settings, opened.ingest, target, mode=mode, base_url=base_url, recorder=recorder
            )
    _print_summary(summary, as_json=not live)
    if summary.status == "failed":
        raise SystemExit(1)


async def _with_progress(run: Any) -> Any:
    from rich.console import Console
    from rich.live import Live

    from crawler.crawl_web import CrawlSummary

    console = Console()
    with Live(console=console, refresh_per_second=8, transient=True) as live:

        def progress(summary: CrawlSummary, url: str) -> None:
            live.update(
                f"[bold]{summary.username}[/]  pages {summary.pages}  messages {summary.messages}  "
                f"new {summary.new}  updated {summary.updated}  media {summary.media_refs}  "
                f"errors {len(summary.errors)}  [dim]{url}[/]"
            )

        return await run(progress)


def _print_summary(summary: Any, *, as_json: bool) -> None:
    data = summary.as_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"crawl {data['target']} ({data['status']})", show_header=False)
    for key in ("username", "state", "pages", "messages", "new", "updated", "unchanged", "media_refs", "errors"):
        table.add_row(key, str(data[key]))
    table.add_row("range", f"{data['oldest_id']}..{data['newest_id']}{' (complete)' if data['complete'] else ''}")
    if data["state_reason"]:
        table.add_row("reason", str(data["state_reason"]))
    for err in summary.errors[:10]:
        table.add_row("error", f"{err.get('kind')}: {err.get('message')} {err.get('url') or ''}")
    Console().print(table)
