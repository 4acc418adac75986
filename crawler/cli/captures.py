"""``tgwatch channels gaps``, ``graph export``, ``capture …``: court-ready captures and analyst views."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.evidence.wiring import audit_log, build_ledger
from foundation.models import ChannelRef
from storage.client import Store

if TYPE_CHECKING:
    from crawler.captures.warc import HttpPage, WebCapture
    from crawler.ingest import Ingest


async def _channel_key(ingest: Ingest, name: str) -> str:
    clean = name.rstrip("/").rsplit("/", 1)[-1].lstrip("@").lower()
    return await ingest.resolve_channel(ChannelRef(username=clean)) or clean


async def _audit(store: Store, app: AppContext, action: str, filter_: dict[str, object], count: int) -> None:
    await audit_log(store, build_ledger(store, app.settings)).record_access(
        actor=cli_actor(), role="cli", action=action, via="cli", filter=filter_, result_count=count
    )


# --- channels gaps (a command of ``tgwatch channels``, crawler/cli/channels.py) --------------------
@click.command("gaps")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="one JSON document")
@pass_app
@async_command
async def channels_gaps(app: AppContext, name: str, as_json: bool) -> None:
    """Message ids held for NAME, the ids missing between them and why, where known."""
    from crawler.captures.gaps import gap_report, render_text

    async with app.open() as opened:
        key = await _channel_key(opened.ingest, name)
        report = await gap_report(opened.store, key)
        await _audit(opened.store, app, "channel gaps", {"channel": key}, report.held)
    if report.held == 0 and not report.streams:
        raise click.ClickException(f"no messages and no checkpoint for channel {name!r}")
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else render_text(report))


# --- graph --------------------------------------------------------------------------------------
@click.group("graph")
def graph_group() -> None:
    """Channel networks: forwards, mentions, links and shared media as a graph file."""


@graph_group.command("export")
@click.option("--channel", "channels", multiple=True, help="start from these channels (repeatable); default all")
@click.option("--depth", type=click.IntRange(0, 10), default=1, show_default=True, help="hops out from --channel")
@click.option("--format", "fmt", type=click.Choice(["graphml", "gexf"]), default="graphml", show_default=True)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
@async_command
async def graph_export(app: AppContext, channels: tuple[str, ...], depth: int, fmt: str, out: Path) -> None:
    """Write channels and bots as nodes, forwards/mentions/links/shared media as weighted, dated edges."""
    from crawler.captures.graph import build_graph, write_graph

    async with app.open() as opened:
        keys = [await _channel_key(opened.ingest, c) for c in channels]
        graph = await build_graph(opened.store, seeds=keys or None, depth=depth)
        await _audit(opened.store, app, "graph export", {"channels": keys, "depth": depth}, graph.number_of_edges())
    write_graph(graph, out, fmt)
    click.echo(f"wrote {out} ({fmt}): {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges")


# --- capture ------------------------------------------------------------------------------------
@click.group("capture")
def capture_group() -> None:
    """Court-ready captures: web archives (WARC) of fetched pages, screenshots of posts."""


@capture_group.command("warc")
@click.option("--channel", "channels", multiple=True, help="only these channels' pages (repeatable); default all")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
@async_command
async def capture_warc(app: AppContext, channels: tuple[str, ...], out: Path) -> None:
    """Write every web fetch the ledger records as WARC request/response records (gzip WARC, or WACZ for .wacz)."""
    from crawler.captures.warc import pages_of, write_wacz, write_warc

    async with app.open() as opened:
        keys = [await _channel_key(opened.ingest, c) for c in channels]
        captures, pages = await _ledger_web_captures(opened.store, app, keys)
        await _audit(opened.store, app, "capture warc", {"channels": keys}, len(captures) + len(pages))
    warc = write_warc(captures, (), pages)
    listed = pages_of(captures, (), pages)
    data = write_wacz(warc, listed, title="tgwatch captures") if out.suffix == ".wacz" else warc
    _write_file(out, data)
    click.echo(f"wrote {out}: {len(pages)} whole pages and {len(captures)} captures as request/response records")


@capture_group.command("screenshot")
@click.argument("post")
@click.option("--base-url", help="the web preview's base URL (default: telegram_web_base), e.g. the sample site")
@click.option("--reason", default="on demand", show_default=True, help="why it is taken (written to the ledger)")
@click.option(
    "--timeout",
    "seconds",
    type=click.FloatRange(1, 600),
    default=45.0,
    show_default=True,
    help="seconds for the browser",
)
@pass_app
@async_command
async def capture_screenshot(app: AppContext, post: str, base_url: str | None, reason: str, seconds: float) -> None:
    """Screenshot the post CHANNEL/ID as the web preview shows it; stored encrypted and in the ledger."""
    from crawler.evidence.screenshots import Screenshots
    from foundation.egress import check_base_url

    channel, _, msg_id = post.rstrip("/").rpartition("/")
    if not channel or not msg_id.isdigit():
        raise click.BadParameter(f"expected CHANNEL/ID, got {post!r}", param_hint="POST")
    async with app.open() as opened:
        key = await _channel_key(opened.ingest, channel)
        shots = Screenshots(
            opened.store, app.settings, build_ledger(opened.store, app.settings),
            web_base=check_base_url(base_url) if base_url else None,
        )  # fmt: skip
        result = await shots.capture(f"{key}/{int(msg_id)}", actor=cli_actor(), reason=reason, seconds=seconds)
    if result.sha256:
        click.echo(f"screenshot of {result.message}: sha256 {result.sha256} (ledger seq {result.seq})")
    else:
        click.echo(f"no screenshot of {result.message}: {result.unavailable} (recorded, ledger seq {result.seq})")


async def _ledger_web_captures(
    store: Store, app: AppContext, keys: list[str]
) -> tuple[list[WebCapture], list[HttpPage]]:
    """The ledger's web capture entries (URL, fetch time, raw digest) with the bytes they digest, and
    its whole pages (``item: page``) with their bodies."""
    import hashlib

    from crawler.captures.warc import HttpPage, WebCapture, is_web_url, post_of
    from crawler.evidence.capture import RecordStore
    from storage.repos.messages import MessageRepo
    from storage.repos.pages import PageRepo

    ledger = build_ledger(store, app.settings)
    docs = await ledger.about("", [f"channel:{k}" for k in keys]) if keys else await ledger.entries()
    records, messages, bodies = RecordStore(store), MessageRepo(store), PageRepo(store)
    captures: list[WebCapture] = []
    pages: list[HttpPage] = []
    seen: set[str] = set()
    for doc in docs:
        payload = json.loads(doc["payload"])
        if payload.get("kind") == "capture" and payload.get("item") == "page":
            page_sha = str(payload.get("page_sha256"))
            body = await bodies.body(page_sha)
            if body is None or hashlib.sha256(body).hexdigest() != page_sha:
                click.echo(f"skipped page {page_sha}: bytes missing or altered in the store", err=True)
                continue
            page = HttpPage.from_entry(payload, body, int(doc["seq"]))
            if page is not None:
                pages.append(page)
            continue
        sha, url = payload.get("raw_sha256"), payload.get("source_url")
        if payload.get("kind") != "capture" or not isinstance(sha, str) or sha in seen or not is_web_url(url):
            continue
        seen.add(sha)
        data = (await records.get([sha])).get(sha)
        if data is None:
            raw = await messages.raw_capture(sha)
            data = str(raw["content"]).encode("utf-8") if raw else None
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            click.echo(f"skipped {sha}: bytes missing or altered in the store", err=True)
            continue
        fetched = datetime.fromisoformat(str(payload.get("captured_at")))
        captures.append(WebCapture(url=str(url), fetched_at=fetched, sha256=sha, content=data, seq=int(doc["seq"]),
                                   title=str(payload.get("message") or payload.get("channel") or ""),
                                   post=post_of(payload)))  # fmt: skip
    return captures, pages


def _write_file(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
