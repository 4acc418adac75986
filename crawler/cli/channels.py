"""``tgwatch channels growth|growing``: audience figures over time, and who grows fastest."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.cli.captures import channels_gaps
from crawler.growth import KINDS, growth_of, ranking
from foundation.models import ChannelRef
from storage.repos.audience import FIGURES, AudienceRepo


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


def entity_name(name: str) -> str:
    """``@name``, ``t.me/name`` or a key → the bare lower-cased name."""
    return name.strip().rstrip("/").rsplit("/", 1)[-1].lstrip("@").lower()


@click.group("channels")
def channels_group() -> None:
    """Channels, groups and bots: audience growth, gaps in what was held."""


@channels_group.command("growth")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one point per line")
@pass_app
@async_command
async def channels_growth(app: AppContext, name: str, as_json: bool) -> None:
    """NAME's audience figures over time (every crawl and triage), oldest first."""
    bare = entity_name(name)
    if not bare:
        raise click.UsageError("give a channel, group or bot name")
    async with app.open() as opened:
        repo = AudienceRepo(opened.store)
        entity = await opened.ingest.resolve_channel(ChannelRef(username=bare))
        points = await repo.series(entity) if entity else []
        if not points:  # a channel key (``id123``) or a discovered bot that has no channel document
            points = await repo.series(bare)
    if not points:
        raise click.ClickException(f"no audience figures recorded for {name!r}")
    for point in points:
        row = {"at": point["at"], "source": point.get("source"), **{f: point.get(f) for f in FIGURES}}
        if as_json:
            click.echo(_dumps({"entity": point["entity"], **row}))
        else:
            figures = "  ".join(f"{f}={point[f]}" for f in FIGURES if point.get(f) is not None)
            click.echo(f"{point['at']:%Y-%m-%d %H:%M:%S}  {point.get('source') or '-':<8} {figures}")
    growth = growth_of(points[0]["entity"], points)
    if growth is not None and not as_json:
        click.echo(f"change {growth.change:+d} ({growth.kind}, {growth.points} points)")


@channels_group.command("growing")
@click.option("--days", type=click.IntRange(1, 3650), default=7, show_default=True, help="look back this many days")
@click.option("--kind", type=click.Choice(KINDS), help="only bots, channels or groups")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one entity per line")
@pass_app
@async_command
async def channels_growing(app: AppContext, days: int, kind: str | None, limit: int, as_json: bool) -> None:
    """The fastest-growing rooms and bots: reach gained over the last DAYS days, largest first."""
    async with app.open() as opened:
        points = await AudienceRepo(opened.store).since(time.time() - days * 86_400)
    ranked = ranking(points, kind=kind, limit=limit)
    for rank, growth in enumerate(ranked, 1):
        if as_json:
            click.echo(_dumps({"rank": rank, **growth.as_dict()}))
        else:
            ratio = f"{growth.ratio:+.1%}" if growth.ratio is not None else "-"
            click.echo(
                f"{rank:>3}. {growth.entity:<32} {growth.kind:<8} {growth.first:>10} -> {growth.last:>10}"
                f"  {growth.change:+d} ({ratio})"
            )
    if not ranked and not as_json:
        click.echo("no entity has two audience figures in that window")


channels_group.add_command(channels_gaps)
