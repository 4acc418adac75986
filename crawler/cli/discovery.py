"""``tgwatch crawl aggregator``, ``tgwatch discover run`` and ``tgwatch candidates …``.

Click objects only; the lead attaches them: ``crawl_group.add_command(aggregator_cmd)`` (``crawl``
is defined in ``crawler.cli.crawl``), ``cli.add_command(discover_group)`` and
``cli.add_command(candidates_group)``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from config.discovery import discovery_settings
from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.discovery.models import CandidateStatus
from crawler.discovery.service import DiscoveryService, summary_line

STATUSES = [s.value for s in CandidateStatus]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


@click.command("aggregator")
@click.argument("name_or_url")
@click.option("--base-url", help="where a rule's relative start URLs live (e.g. the sample site's address)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@pass_app
@async_command
async def aggregator_cmd(app: AppContext, name_or_url: str, base_url: str | None, as_json: bool) -> None:
    """Crawl an aggregator site by its rule NAME (config/aggregators.toml) or a URL (generic rule
    when no rule matches); every Telegram room link found becomes a candidate with its context."""
    from crawler.discovery.run import crawl_aggregator

    async with app.open() as opened:
        summary = await crawl_aggregator(app.settings, opened.store, name_or_url, base_url=base_url)
    if as_json:
        click.echo(_dumps(summary.as_dict()))
    else:
        click.echo(
            f"{summary.site}: {summary.pages} pages, {summary.links} links, {summary.new} new candidates, "
            f"{summary.ignored} ignored, {len(summary.errors)} errors ({summary.status})"
        )


@click.group("discover")
def discover_group() -> None:
    """Triage discovery candidates."""


@discover_group.command("run")
@click.option("--limit", type=click.IntRange(1, 100_000), help="at most this many candidates (default from settings)")
@click.option("--base-url", help="preview pages base URL (default: settings telegram_web_base)")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def discover_run(app: AppContext, limit: int | None, base_url: str | None, as_json: bool) -> None:
    """Fetch and score the preview page of every new candidate (highest priority first)."""
    from crawler.discovery.run import run_triage

    async with app.open() as opened:
        summary = await run_triage(app.settings, opened.store, limit=limit, base_url=base_url)
    if as_json:
        click.echo(_dumps(summary.as_dict()))
    else:
        states = ", ".join(f"{k} {v}" for k, v in sorted(summary.states.items())) or "nothing pending"
        click.echo(f"triaged {summary.checked}: {states}; {len(summary.errors)} errors ({summary.status})")


def _found_line(result: Any, found: list[Any]) -> str:
    return f"found {len(found)} rooms: {result.new} new candidates, {result.merged} already known"


@discover_group.command("recommendations")
@click.argument("channels", nargs=-1, required=True)
@pass_app
@async_command
async def discover_recommendations(app: AppContext, channels: tuple[str, ...]) -> None:
    """Channels Telegram recommends next to CHANNELS become candidates (rate-limited per account)."""
    from crawler.cli.telegram import open_pool
    from foundation.models import utcnow
    from telegram_watch.discover import Discoverer

    async with open_pool(app) as (tg, pool):
        finder = Discoverer(pool, interval=app.settings.telegram.discovery_interval_seconds, store=tg.accounts)
        service = _service(app, tg.opened.store)
        for channel in channels:
            found = await finder.recommendations(channel)
            result = await service.record_mtproto(found, utcnow())
            click.echo(f"{channel}: {_found_line(result, found)}")


@discover_group.command("search")
@click.argument("terms", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True, help="results per term")
@pass_app
@async_command
async def discover_search(app: AppContext, terms: tuple[str, ...], limit: int) -> None:
    """Telegram's global search for TERMS (words or #hashtags): rooms of public posts found become
    candidates (rate-limited per account)."""
    from crawler.cli.telegram import open_pool
    from foundation.models import utcnow
    from telegram_watch.discover import Discoverer

    async with open_pool(app) as (tg, pool):
        finder = Discoverer(pool, interval=app.settings.telegram.discovery_interval_seconds, store=tg.accounts)
        service = _service(app, tg.opened.store)
        for term in terms:
            try:
                found = await finder.search(term, limit=limit)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            result = await service.record_mtproto(found, utcnow())
            click.echo(f"{term}: {_found_line(result, found)}")


@click.group("candidates")
def candidates_group() -> None:
    """Review discovered rooms: list, approve into crawl targets, reject, add tips."""


def _service(app: AppContext, store: Any) -> DiscoveryService:
    return DiscoveryService(store, discovery_settings(app.settings))


@candidates_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="only candidates with this status")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--sort", "order", type=click.Choice(["priority", "score"]), default="priority", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: link, kind, type, title, members, state, …")
@pass_app
@async_command
async def candidates_list(app: AppContext, status: str | None, limit: int, order: str, as_json: bool) -> None:
    """Candidates, highest priority (or score) first."""
    async with app.open() as opened:
        docs = await _service(app, opened.store).list(
            statuses=[CandidateStatus(status)] if status else [], limit=limit, order=order
        )
    for doc in docs:
        line = summary_line(doc)
        if as_json:
            click.echo(_dumps(line))
            continue
        sources = ",".join(sorted({f"{p['source_kind']}:{p['source']}" for p in line["provenance"]}))
        score = "-" if line["score"] is None else f"{line['score']:g}"
        click.echo(
            f"{line['status']:<9} {score:>6}  {line['link']:<40} {line['type'] or '-':<8} "
            f"{line['state'] or '-':<14} {line['members'] if line['members'] is not None else '-':>8}  "
            f"{(line['title'] or '')[:40]}  [{sources}]"
        )


@candidates_group.command("approve")
@click.argument("link")
@click.option("--method", type=click.Choice(["web", "mtproto"]), help="how to crawl it (public: web by default)")
@click.option("--authorization", "authorization_id", help="authorization id (required for invite links)")
@click.option("--note", help="why")
@click.option("--by", "actor", help="who approves (default: the OS user)")
@pass_app
@async_command
async def candidates_approve(
    app: AppContext, link: str, method: str | None, authorization_id: str | None, note: str | None, actor: str | None
) -> None:
    """Approve a candidate: it becomes a crawl target (invites only with an active authorization)."""
    async with app.open() as opened:
        target = await _service(app, opened.store).approve(
            link,
            actor=cli_actor(actor),
            method="mtproto" if method == "mtproto" else ("web" if method == "web" else None),
            authorization_id=authorization_id,
            note=note,
        )
    click.echo(f"approved: target {target['_id']} ({target['method']})")


@candidates_group.command("reject")
@click.argument("link")
@click.option("--note", help="why")
@click.option("--by", "actor", help="who rejects (default: the OS user)")
@pass_app
@async_command
async def candidates_reject(app: AppContext, link: str, note: str | None, actor: str | None) -> None:
    """Reject a candidate (it stays recorded, with the reason)."""
    async with app.open() as opened:
        doc = await _service(app, opened.store).reject(link, actor=cli_actor(actor), note=note)
    click.echo(f"rejected: {doc['_id']}")


@candidates_group.command("add")
@click.argument("link")
@click.option("--source", required=True, help="who reported it (hotline, victim support case, …)")
@click.option("--note", help="what the reporter said")
@pass_app
@async_command
async def candidates_add(app: AppContext, link: str, source: str, note: str | None) -> None:
    """Add a tip: a candidate with this provenance and the tip priority."""
    async with app.open() as opened:
        doc = await _service(app, opened.store).add_tip(link, source=source, note=note)
    click.echo(f"added: {doc['_id']} (status {doc['status']}, priority {doc['priority']})")
