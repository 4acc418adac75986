"""``tgwatch query …``: read what is stored."""

from __future__ import annotations

import json

import click

from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.evidence.wiring import audit_log, build_ledger
from crawler.investigate.export import message_line
from foundation.models import ChannelRef
from storage.repos import MessageRepo


@click.group("query")
def query_group() -> None:
    """Read collected records."""


@query_group.command("messages")
@click.option("--channel", help="username, t.me link or channel key")
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one message per line")
@pass_app
@async_command
async def query_messages(app: AppContext, channel: str | None, limit: int, as_json: bool) -> None:
    """Newest messages first (per channel: highest id first)."""
    async with app.open() as opened:
        key = None
        if channel:
            name = channel.rstrip("/").rsplit("/", 1)[-1].lstrip("@").lower()
            key = await opened.ingest.resolve_channel(ChannelRef(username=name)) or name
        docs = await MessageRepo(opened.store).query(channel=key, limit=limit)
        await audit_log(opened.store, build_ledger(opened.store, app.settings)).record_access(
            actor=cli_actor(), role="cli", action="query messages", via="cli",
            filter={"channel": key, "limit": limit}, result_count=len(docs),
        )  # fmt: skip
    for doc in docs:
        line = message_line(doc)
        if as_json:
            click.echo(json.dumps(line, ensure_ascii=False))
        else:
            flags = "".join(f for f, on in (("E", line["edited"]), ("D", line["deleted"])) if on)
            text = line["text"].replace("\n", " ")
            click.echo(
                f"{line['channel']}/{line['msg_id']:<6} {line['date'] or '-':<25} v{line['version']} {flags:<2} "
                f"media={len(line['media'])} {text[:80]}"
            )
