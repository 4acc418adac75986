"""``tgwatch hashes …``: known-hash lists and local matching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from crawler.cli.app import AppContext, async_command, pass_app
from crawler.hashing import lists as hashlists
from crawler.hashing.exchanges import EXCHANGES, ExchangeUnavailable, configured
from crawler.hashing.pool import HashPool, MediaHashes
from crawler.media.exchange_sync import sync_exchange
from crawler.media.hygiene import list_row
from crawler.media.matcher import ROLES, Matcher
from crawler.media.retro import RetroResult, UnknownList, retro_match
from crawler.pipeline import hash_options, policy_hook
from crawler.takedowns.models import Reason
from crawler.takedowns.policy import PolicyRefused, TakedownPolicy, check_policy
from foundation.errors import TooLarge
from storage.client import Store, open_store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo


@click.group("hashes")
def hashes_group() -> None:
    """Known-hash lists (StopNCII, ThreatExchange, CSV, JSON Lines) and matching."""


POLICIES = [p.value for p in TakedownPolicy]
takedown_option = click.option(
    "--takedown", "takedown", type=click.Choice(POLICIES),
    help="what a match does: manual (an alert), draft (a request waits for review), auto (sent at once; trusted only)",
)  # fmt: skip
trusted_option = click.option(
    "--trusted/--untrusted", "trusted", default=None,
    help="an admin vouches for the list (needed for --takedown auto); the CLI is the local admin",
)  # fmt: skip
reason_option = click.option(
    "--takedown-reason", "takedown_reason", type=click.Choice([r.value for r in Reason]),
    help="the reason drafted requests name (default sexual_deepfake)",
)  # fmt: skip


def _checked_policy(doc: dict[str, Any] | None, takedown: str | None, trusted: bool | None) -> None:
    """Refuse a policy the list may not have (``auto`` on an untrusted list) before anything changes."""
    is_trusted = trusted if trusted is not None else bool((doc or {}).get("trusted"))
    policy = takedown if takedown is not None else (doc or {}).get("takedown_policy")
    if policy is None:
        return
    try:
        check_policy(policy, trusted=is_trusted, alert_kind="hash_match")
    except PolicyRefused as exc:
        raise click.UsageError(exc.message) from exc


@hashes_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "name", required=True, help="list name (importing again adds to it)")
@click.option("--format", "fmt", type=click.Choice(hashlists.FORMATS), default="csv", show_default=True)
@click.option("--retro/--no-retro", default=True, show_default=True,
              help="match the new entries against every media item already stored")  # fmt: skip
@takedown_option
@trusted_option
@reason_option
@pass_app
@async_command
async def hashes_import(
    app: AppContext,
    file: Path,
    name: str,
    fmt: str,
    retro: bool,
    takedown: str | None,
    trusted: bool | None,
    takedown_reason: str | None,
) -> None:
    """Validate every value; import the good rows, report the bad ones with line numbers."""
    parsed = hashlists.parse_file(file, fmt)
    result: RetroResult | None = None
    async with open_store(app.settings) as store:
        repo = HashListRepo(store)
        _checked_policy(await repo.get(name), takedown, trusted)
        added = await repo.add_entries(name, fmt, ((r.signal_type, r.signal, r.label) for r in parsed.rows))
        if takedown is not None or trusted is not None or takedown_reason is not None:
            await repo.set_takedown(name, policy=takedown, trusted=trusted, reason=takedown_reason)
        if retro and (added or parsed.rows):
            result = await _retro(store, app, name, "import")
    for error in parsed.errors:
        click.echo(f"{file}:{error.line}: {error.message}", err=True)
    total_new = sum(added.values())
    per_type = ", ".join(f"{k}={v}" for k, v in sorted(added.items())) or "none"
    click.echo(
        f"list {name!r}: {len(parsed.rows)} valid rows, {total_new} new ({per_type}), {len(parsed.errors)} rejected"
    )
    if result is not None:
        _echo_retro(result)
    if parsed.errors and not parsed.rows:
        raise SystemExit(1)


def _echo_retro(result: RetroResult) -> None:
    if result.status == "disabled":
        click.echo(f"list {result.list!r} is disabled: no retroactive matching until it is enabled")
        return
    click.echo(
        f"retroactive: {result.entries} entries against {result.media_scanned} stored media, "
        f"{result.media_matched} matched, {result.alerts_raised} new alerts "
        f"({result.seconds:.2f} s, run {result.run_id})"
    )


@hashes_group.command("rematch")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def hashes_rematch(app: AppContext, name: str, as_json: bool) -> None:
    """Match the list's entries not yet matched against every media item already stored."""
    async with open_store(app.settings) as store:
        try:
            result = await _retro(store, app, name, "manual")
        except UnknownList as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        _echo_retro(result)


@hashes_group.command("lists")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@async_command
async def hashes_lists(app: AppContext, as_json: bool) -> None:
    """Lists with source, last sync, entries, withdrawn, quarantined and reviewers' precision."""
    async with open_store(app.settings) as store:
        docs = await HashListRepo(store).lists()
        reviews = await AlertRepo(store).match_reviews()
    for doc in docs:
        row = list_row(doc, reviews.get(doc["_id"], {}))
        if as_json:
            click.echo(json.dumps({**doc, **row}, default=str))
            continue
        state = "enabled" if doc.get("enabled", True) else "disabled"
        counts = ", ".join(f"{k}={v}" for k, v in sorted(doc.get("counts", {}).items())) or "-"
        policy = f"takedown={doc.get('takedown_policy') or 'manual'}" + (" trusted" if doc.get("trusted") else "")
        precision = "-" if row["precision"] is None else f"{row['precision']:.2f}"
        click.echo(
            f"{doc['_id']:<24} {state:<9} {row['source']:<24} last_sync={row['last_sync']} entries={row['entries']} "
            f"({counts}) withdrawn={row['withdrawn']} quarantined={row['quarantined']} "
            f"precision={precision} ({row['confirmed']}/{row['confirmed'] + row['rejected']}) role={row['role']}"
            + (f" max_distance={doc['max_distance']}" if doc.get("max_distance") is not None else "")
            + f"  {policy}"
        )


@hashes_group.command("policy")
@click.argument("name")
@takedown_option
@trusted_option
@reason_option
@pass_app
@async_command
async def hashes_policy(
    app: AppContext, name: str, takedown: str | None, trusted: bool | None, takedown_reason: str | None
) -> None:
    """Show or set what a match on list NAME does (manual, draft, auto) and whether the list is trusted."""
    async with open_store(app.settings) as store:
        repo = HashListRepo(store)
        doc = await repo.get(name)
        if doc is None:
            raise click.ClickException(f"no list {name!r}")
        if takedown is not None or trusted is not None or takedown_reason is not None:
            _checked_policy(doc, takedown, trusted)
            doc = await repo.set_takedown(name, policy=takedown, trusted=trusted, reason=takedown_reason) or doc
    click.echo(
        f"list {name!r}: takedown {doc.get('takedown_policy') or 'manual'}, "
        f"{'trusted' if doc.get('trusted') else 'untrusted'}, reason {doc.get('takedown_reason') or 'sexual_deepfake'}"
    )


@hashes_group.command("disable")
@click.argument("name")
@pass_app
@async_command
async def hashes_disable(app: AppContext, name: str) -> None:
    """Stop matching against a list (its entries are kept)."""
    await _set_enabled(app, name, False)


@hashes_group.command("enable")
@click.argument("name")
@pass_app
@async_command
async def hashes_enable(app: AppContext, name: str) -> None:
    """Match against a disabled list again (first catching up on what was stored meanwhile)."""
    await _set_enabled(app, name, True)


async def _retro(store: Store, app: AppContext, name: str, trigger: str) -> RetroResult:
    """Retroactive matching with the list's takedown policy acting on each new alert (draft/auto)."""
    async with policy_hook(store, app.settings) as hook:
        return await retro_match(store, app.settings, name, trigger=trigger, on_alert=hook)


async def _set_enabled(app: AppContext, name: str, enabled: bool) -> None:
    result: RetroResult | None = None
    async with open_store(app.settings) as store:
        if not await HashListRepo(store).set_enabled(name, enabled):
            raise click.ClickException(f"no list {name!r}")
        if enabled:
            result = await _retro(store, app, name, "enable")
    click.echo(f"list {name!r} {'enabled' if enabled else 'disabled'}")
    if result is not None:
        _echo_retro(result)


@hashes_group.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete the list and all its entries?")
@pass_app
@async_command
async def hashes_delete(app: AppContext, name: str) -> None:
    """Remove a list and its entries."""
    async with open_store(app.settings) as store:
        removed = await HashListRepo(store).delete(name)
    click.echo(f"list {name!r} deleted ({removed} entries)")


@hashes_group.command("match")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per file")
@click.option("--dihedral/--no-dihedral", default=None, help="also match rotated and mirrored copies")
@pass_app
@async_command
async def hashes_match(app: AppContext, files: tuple[Path, ...], as_json: bool, dihedral: bool | None) -> None:
    """Hash local files and print their hashes and matches against the imported lists; writes nothing."""
    settings = app.settings
    if dihedral is not None:
        settings = settings.model_copy(update={"matching": settings.matching.model_copy(update={"dihedral": dihedral})})
    async with open_store(settings) as store, HashPool(options=hash_options(settings)) as pool:
        matcher = Matcher(store, settings.matching)
        for path in files:
            line = await _match_one(pool, matcher, path)
            if as_json:
                click.echo(json.dumps(line, ensure_ascii=False))
            else:
                found = ", ".join(f"{m['list']}:{m['signal_type']}@{m['distance']:g}" for m in line["matches"]) or "-"
                err = f" error={line['error']}" if line["error"] else ""
                click.echo(f"{path}  sha256={line['sha256']}  pdq={line['pdq'] or '-'}{err}  matches: {found}")


async def _match_one(pool: HashPool, matcher: Matcher, path: Path) -> dict[str, Any]:
    try:
        hashes: MediaHashes = await pool.hash_media(path)
    except TooLarge as exc:
        return {"path": str(path), "sha256": None, "md5": None, "pdq": None, "pdq_quality": None,
                "error": exc.kind, "matches": []}  # fmt: skip
    matches = await matcher.match(hashes)
    return {
        "path": str(path),
        "sha256": hashes.sha256,
        "md5": hashes.md5,
        "pdq": hashes.pdq.hash if hashes.pdq else None,
        "pdq_quality": hashes.pdq.quality if hashes.pdq else None,
        # a file that is neither image nor video (whatever its name) gets digests only: say so
        "error": hashes.error.kind if hashes.error else None if hashes.kind in ("image", "video") else "not_media",
        "matches": [
            {"list": m.list, "signal_type": m.signal_type, "distance": m.distance, "label": m.label} for m in matches
        ],
    }


@hashes_group.command("sync")
@click.argument("exchange", required=False, type=click.Choice(EXCHANGES))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per exchange list")
@pass_app
@async_command
async def hashes_sync(app: AppContext, exchange: str | None, as_json: bool) -> None:
    """Sync hash lists from the configured exchanges (StopNCII, NCMEC, ThreatExchange), or one.

    Fetches from the stored checkpoint, removes withdrawn hashes, matches new entries against the
    stored media and reports reviewers' verdicts back (StopNCII). Exit status 1 if any sync failed."""
    try:
        exchanges = configured(app.settings, exchange)
    except ExchangeUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if not exchanges:
        raise click.ClickException("no exchange is configured (see docs/hash_exchanges.md)")
    failed = False
    async with open_store(app.settings) as store, policy_hook(store, app.settings) as hook:
        for one in exchanges:
            result = await sync_exchange(store, app.settings, one, trigger="manual", on_alert=hook)
            failed = failed or result.status != "ok"
            if as_json:
                click.echo(json.dumps(result.to_json()))
                continue
            click.echo(
                f"{result.exchange} -> list {result.list!r}: {result.status}, {result.pages} pages, "
                f"{result.added} added, {result.withdrawn} withdrawn, {result.skipped} skipped, "
                f"{result.feedback_sent} feedback sent (run {result.run_id})"
                + (f": {result.error}" if result.error else "")
            )
            if result.retro is not None:
                _echo_retro(result.retro)
    if failed:
        raise SystemExit(1)


@hashes_group.command("rules")
@click.argument("name")
@click.option("--max-distance", type=click.IntRange(0, 255), help="this list's own near-match threshold")
@click.option("--global-distance", "clear", is_flag=True, help="drop the list's own threshold")
@click.option("--role", type=click.Choice(ROLES), help="block: matches alert; allow: matches suppress all others")
@pass_app
@async_command
async def hashes_rules(app: AppContext, name: str, max_distance: int | None, clear: bool, role: str | None) -> None:
    """Show or set a list's hygiene: its own threshold and its role (block or allow-list)."""
    if max_distance is not None and max_distance > app.settings.matching.pdq_max_distance:
        raise click.UsageError(
            f"--max-distance may only narrow the global threshold ({app.settings.matching.pdq_max_distance})"
        )
    async with open_store(app.settings) as store:
        repo = HashListRepo(store)
        if max_distance is None and not clear and role is None:
            doc = await repo.get(name)
        else:
            doc = await repo.set_hygiene(name, max_distance=max_distance, clear_distance=clear, role=role)
    if doc is None:
        raise click.ClickException(f"no list {name!r}")
    own = doc.get("max_distance")
    click.echo(
        f"list {name!r}: role {doc.get('role') or 'block'}, max distance "
        f"{own if own is not None else f'global ({app.settings.matching.pdq_max_distance})'}"
    )


@hashes_group.command("quarantined")
@click.argument("name", required=False)
@pass_app
@async_command
async def hashes_quarantined(app: AppContext, name: str | None) -> None:
    """Entries held for review because they matched too many distinct media."""
    async with open_store(app.settings) as store:
        docs = await HashListRepo(store).quarantined(name)
    for doc in docs:
        click.echo(f"{doc['_id']}  {doc.get('quarantine_reason', '')}")
    if not docs:
        click.echo("no quarantined entries")


@hashes_group.command("release")
@click.argument("entry")
@pass_app
@async_command
async def hashes_release(app: AppContext, entry: str) -> None:
    """A reviewer found a quarantined entry sound: it matches again (ENTRY: <list>/<type>/<value>)."""
    async with open_store(app.settings) as store:
        released = await HashListRepo(store).release(entry)
    if not released:
        raise click.ClickException(f"no quarantined entry {entry!r}")
    click.echo(f"entry {entry!r} released")


@hashes_group.command("review")
@click.argument("alert_key")
@click.argument("verdict", type=click.Choice(["confirmed", "rejected"]))
@click.option("--by", default="cli", show_default=True, help="the reviewer's name")
@pass_app
@async_command
async def hashes_review(app: AppContext, alert_key: str, verdict: str, by: str) -> None:
    """Record a reviewer's verdict on a match (list precision; StopNCII: blocked / not blocked)."""
    async with open_store(app.settings) as store:
        repo = AlertRepo(store)
        doc = await repo.get(alert_key)
        if doc is None or doc.get("kind") != "hash_match":
            raise click.ClickException(f"no hash-match alert {alert_key!r}")
        await repo.set_review(alert_key, verdict, by)
    click.echo(f"alert {alert_key!r}: {verdict}")
