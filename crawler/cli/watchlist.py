"""``tgwatch watchlist …`` (consent-based enrollment; an operator at the terminal) and
``tgwatch detector faces`` (the faces detector; docs/watchlist.md)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import click

from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.cli.case_option import case_id_param
from crawler.cli.detection import detector_token
from crawler.cli.evidence import opened


@click.group("watchlist")
def watchlist_group() -> None:
    """Consent-based watchlist: enroll a person who asked for help, list, withdraw."""


def _expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"--expires {value!r} is not an ISO date or date-time") from None
    if len(value) == 10:
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@watchlist_group.command("enroll")
@click.argument("person")
@click.option("--consent-ref", help="reference of the person's signed consent (required)")
@click.option("--case", "case_id", callback=case_id_param, help="the case whose members review matches (required)")
@click.option(
    "--photo",
    "photos",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="a photo of the person alone (repeatable); read once, never stored",
)
@click.option("--expires", help="ISO date/time the consent ends (required)")
@click.option("--actor", help="who is enrolling (default: the OS user)")
@pass_app
@async_command
async def watchlist_enroll(
    app: AppContext,
    person: str,
    consent_ref: str | None,
    case_id: str | None,
    photos: tuple[Path, ...],
    expires: str | None,
    actor: str | None,
) -> None:
    """Enroll PERSON (a pseudonymous reference) from photos under a signed consent; stores only
    sealed embeddings and a ledger consent record."""
    from crawler.watchlist.faces import FaceModel
    from crawler.watchlist.service import WatchlistService

    expires_at = _expiry(expires)
    # refuse before anything is read or opened: no consent, case or expiry, no enrollment
    WatchlistService.check_request(person=person, consent_ref=consent_ref, case=case_id, expires_at=expires_at)
    if not photos:
        raise click.UsageError("give at least one --photo")
    limit = app.settings.watchlist.max_photo_bytes
    data = []
    for path in photos:
        try:  # at most one byte past the limit: a huge file, a device or a pipe is never read whole
            with path.open("rb") as fh:
                blob = fh.read(limit + 1)
        except OSError as exc:
            raise click.UsageError(f"cannot read --photo {path}: {exc.strerror}") from None
        if len(blob) > limit:
            raise click.UsageError(f"--photo {path} is larger than watchlist.max_photo_bytes ({limit} bytes)")
        data.append(blob)
    model = FaceModel()
    async with opened(app) as ctx:
        doc = await WatchlistService(ctx.store, ctx.settings, ctx.ledger).enroll(
            person=person,
            consent_ref=consent_ref,
            case=case_id,
            photos=data,
            expires_at=expires_at,
            actor=cli_actor(actor),
            model=model,
        )
    del data
    click.echo(json.dumps(_shown(doc), ensure_ascii=False))


def _shown(doc: dict[str, object]) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in doc.items() if k != "sealed"}


@watchlist_group.command("list")
@click.option("--actor", help="who is reading (default: the OS user)")
@pass_app
@async_command
async def watchlist_list(app: AppContext, actor: str | None) -> None:
    """Enrollments (consent records), one JSON object per line; never embeddings."""
    from crawler.watchlist.service import WatchlistService

    async with opened(app) as ctx:
        docs = await WatchlistService(ctx.store, ctx.settings, ctx.ledger).list()
        await ctx.audit.record_access(
            actor=cli_actor(actor), role="operator", action="watchlist.list", result_count=len(docs), via="cli"
        )
    for doc in docs:
        click.echo(json.dumps(_shown(doc), ensure_ascii=False))


@watchlist_group.command("withdraw")
@click.argument("person")
@click.option("--reason")
@click.option("--actor", help="who is withdrawing (default: the OS user)")
@pass_app
@async_command
async def watchlist_withdraw(app: AppContext, person: str, reason: str | None, actor: str | None) -> None:
    """Withdraw PERSON's consent: erase the embeddings now and record it in the ledger."""
    from crawler.watchlist.service import WatchlistService

    async with opened(app) as ctx:
        doc = await WatchlistService(ctx.store, ctx.settings, ctx.ledger).withdraw(
            person, actor=cli_actor(actor), reason=reason
        )
    click.echo(json.dumps(_shown(doc), ensure_ascii=False))


@watchlist_group.command("expire")
@pass_app
@async_command
async def watchlist_expire(app: AppContext) -> None:
    """Withdraw every enrollment past its expiry now (reads of the watchlist also do it)."""
    from crawler.watchlist.service import WatchlistService

    async with opened(app) as ctx:
        refs = await WatchlistService(ctx.store, ctx.settings, ctx.ledger).expire()
    click.echo(json.dumps({"expired": refs}))


@click.command("faces")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="tgwatch API base URL")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="file holding the detector token (or set env TGWATCH_DETECTOR_TOKEN)",
)
@click.option("--name", default=f"faces-{os.getpid()}", show_default="faces-PID", help="consumer name")
@click.option("--until-empty", is_flag=True, help="exit when no job is ready")
@click.option("--lease", "lease_seconds", type=float, default=120.0, show_default=True)
@pass_app
@async_command
async def detector_faces(
    app: AppContext, url: str, token_file: Path | None, name: str, until_empty: bool, lease_seconds: float
) -> None:
    """Match faces in queued media against the consenting persons enrolled (needs tgwatch[faces]
    and TGWATCH_WATCHLIST__KEY)."""
    from crawler.detection.client import DetectionClient
    from crawler.detection.consumer import run_consumer
    from crawler.watchlist.detector import DETECTOR_NAME, FacesDetector
    from crawler.watchlist.faces import FaceModel
    from crawler.watchlist.sealing import Sealer, watchlist_key

    sealer = Sealer(watchlist_key(app.settings))  # off → a clear error, before any job is leased
    token = detector_token(token_file, None)
    model = FaceModel()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with DetectionClient(url, token) as client:
        detector = FacesDetector(client, sealer, model, app.settings.watchlist.gallery_refresh_seconds)
        await detector.refresh(force=True)
        stats = await run_consumer(
            client,
            detector,
            until_empty=until_empty,
            lease_seconds=lease_seconds,
            stop=stop,
            detector_name=DETECTOR_NAME,
        )
    click.echo(json.dumps({"consumer": name, "enrolled": len(detector.gallery), **stats.__dict__}))
