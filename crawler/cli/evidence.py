"""``tgwatch evidence …``, ``tgwatch auth …``, ``tgwatch case …``: the evidence ledger from the shell.

Every command that reads collected evidence writes an audit entry (and through the ledger's audit
hook a ``query`` entry); changes (grants, revocations, attachments, exports) are ledger entries of
their own. The acting person is the OS user (``--actor`` overrides it), the role ``operator``
unless ``--role`` says otherwise (the export's media rule reads it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from config import Settings
from config.evidence import EvidenceSettings
from crawler.audit import AuditLog
from crawler.cli.app import AppContext, async_command, cli_actor, pass_app
from crawler.cli.case_option import case_id_param
from crawler.evidence import verify_bundle
from crawler.evidence.authorizations import Authorizations
from crawler.evidence.cases import Cases
from crawler.evidence.export import DirectoryMediaSource, Exporter
from crawler.evidence.heads import sign_head_now
from crawler.evidence.hooks import audit_hook
from crawler.evidence.ledger import Ledger
from crawler.evidence.members import CaseMembers
from crawler.evidence.signing import generate_key, key_id, load_public_key
from crawler.evidence.verify_ledger import verify_ledger_async
from crawler.evidence.wiring import build_ledger, evidence_settings
from foundation.errors import ConfigError
from foundation.models import ChannelRef
from storage.client import Store
from storage.repos.channels import ChannelRepo


@dataclass
class EvidenceContext:
    store: Store
    ledger: Ledger
    audit: AuditLog
    settings: Settings
    evidence: EvidenceSettings


@asynccontextmanager
async def opened(app: AppContext) -> AsyncIterator[EvidenceContext]:
    async with app.open() as o:
        ledger = build_ledger(o.store, app.settings)
        audit = AuditLog(o.store, hooks=[audit_hook(ledger)])
        yield EvidenceContext(o.store, ledger, audit, app.settings, evidence_settings(app.settings))


def _actor(actor: str | None) -> str:
    return cli_actor(actor)


def _public_key_bytes(ctx: EvidenceContext) -> bytes:
    path = ctx.evidence.public_key_path(ctx.settings.data_dir)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"no evidence public key at {path}: run `tgwatch evidence keygen` first") from exc


def _day(value: str | None, *, end: bool = False) -> str | None:
    """``2026-01-02`` or a full ISO time → the RFC 3339 UTC spelling ledger ``at`` values use."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if len(value) == 10 and end:
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


actor_option = click.option("--actor", help="who is acting (default: the OS user)")


# --- evidence ------------------------------------------------------------------------------------
@click.group("evidence")
def evidence_group() -> None:
    """Signing key, case bundles, and the whole-ledger check."""


@evidence_group.command("keygen")
@pass_app
def keygen(app: AppContext) -> None:
    """Create the Ed25519 signing key (private key 0600, never stored in the database)."""
    ev = evidence_settings(app.settings)
    private = ev.private_key_path(app.settings.data_dir)
    try:
        files = generate_key(private.parent, name=private.name)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"public key: {files.public_path}")
    click.echo(f"key id:     {files.key_id}")
    click.echo("publish this key id: bundle recipients compare it with the one their verifier prints")


@evidence_group.command("sign-head")
@pass_app
@async_command
async def sign_head(app: AppContext) -> None:
    """Sign a tree head over the whole ledger now (and ask the TSA, when configured)."""
    async with opened(app) as ctx:
        if ctx.ledger.signer is None:
            raise ConfigError("no signing key here: run `tgwatch evidence keygen` on the signing host")
        head = await sign_head_now(ctx.ledger, ctx.ledger.signer)
    click.echo(json.dumps(head.to_dict()))


@evidence_group.command("export")
@click.option("--case", "case_id", required=True, callback=case_id_param)
@click.option("--from", "since", help="first day/time (UTC) of entries to include")
@click.option("--to", "until", help="last day/time (UTC) of entries to include")
@click.option(
    "--role",
    default="operator",
    show_default=True,
    help="recipient role (decides media vs digests, and whether watchlist entries are withheld)",
)
@click.option("--media-dir", type=click.Path(file_okay=False, path_type=Path), help="media files named by SHA-256")
@actor_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
@async_command
async def export_cmd(
    app: AppContext,
    case_id: str,
    since: str | None,
    until: str | None,
    role: str,
    media_dir: Path | None,
    actor: str | None,
    out: Path,
) -> None:
    """Write the case bundle OUT.zip (verifiable offline with the verify_bundle.py inside it)."""
    async with opened(app) as ctx:
        exporter = Exporter(
            ctx.ledger,
            load_public_key(_public_key_bytes(ctx)),
            signer=ctx.ledger.signer,
            media=DirectoryMediaSource(media_dir) if media_dir else None,
            media_roles=ctx.evidence.export_media_roles,
        )
        result = await exporter.export(
            case_id, out, actor=_actor(actor), role=role, since=_day(since), until=_day(until, end=True)
        )
    click.echo(
        f"{result.path}: {result.entries} entries, {result.files} files, {result.withheld} withheld; "
        f"tree head size {result.tree_size}, key id {result.key_id}"
    )


@evidence_group.command("verify")
@click.option("--expect-key", metavar="KEYID", help="fail unless the bundle is signed by this key id (64 hex digits)")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def verify_cmd(app: AppContext, expect_key: str | None, bundle: Path) -> None:
    """Verify a bundle offline (exactly what the bundled verify_bundle.py does).

    Warns when the bundle is signed by another key than this installation's.
    """
    if expect_key is not None and not _is_key_id(expect_key):
        raise click.BadParameter("a key id is 64 hex digits", param_hint="--expect-key")
    result = verify_bundle.verify_bundle(bundle, expect_key=expect_key)
    click.echo(result.summary(), err=not result.ok)
    if result.ok:
        ours = _installation_key_id(app)
        if ours is not None and ours != result.key_id:
            click.echo(
                f"WARNING: this bundle is signed by key id {result.key_id}, not by this installation's key "
                f"{ours}: it comes from another tgwatch installation (or a forger); check the key id it "
                "should have with whoever exported it",
                err=True,
            )
    sys.exit(0 if result.ok else 1)


def _is_key_id(value: str) -> bool:
    text = value.strip().lower()
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _installation_key_id(app: AppContext) -> str | None:
    """This installation's evidence key id, or None when it has no (readable) key."""
    ev = evidence_settings(app.settings)
    try:
        return key_id(load_public_key(ev.public_key_path(app.settings.data_dir).read_bytes()))
    except (OSError, ValueError, TypeError, ConfigError):
        return None


@evidence_group.command("verify-ledger")
@actor_option
@pass_app
@async_command
async def verify_ledger_cmd(app: AppContext, actor: str | None) -> None:
    """Recompute every leaf and root of the stored ledger; name the first bad seq (exit 1)."""
    async with opened(app) as ctx:
        public = load_public_key(_public_key_bytes(ctx))
        heads = [
            {k: h[k] for k in ("size", "root_hash", "timestamp", "signature", "key_id")}
            for h in await ctx.ledger.heads()
        ]
        result = await verify_ledger_async(ctx.ledger.iter_entries(), heads, public)
        await ctx.audit.record_access(
            actor=_actor(actor), role="operator", action="ledger.verify", result_count=result.entries, via="cli"
        )
    click.echo(result.summary(), err=not result.ok)
    if not result.ok:
        sys.exit(1)


# --- auth ------------------------------------------------------------------------------------------
@click.group("auth")
def auth_group() -> None:
    """Authorizations for undercover collection (private joins and reads)."""


@auth_group.command("grant")
@click.option("--case", "case_id", required=True, callback=case_id_param)
@click.option("--warrant", required=True, help="warrant or legal-basis reference")
@click.option("--approved-by", required=True)
@click.option(
    "--scope",
    required=True,
    multiple=True,
    help="invite link/hash or channel (repeatable, or comma-separated)",
)
@click.option("--accounts", required=True, multiple=True, help="accounts allowed to act (repeatable, comma-separated)")
@click.option("--valid-until", required=True, help="ISO date/time (UTC when no offset)")
@click.option("--note")
@actor_option
@pass_app
@async_command
async def auth_grant(
    app: AppContext,
    case_id: str,
    warrant: str,
    approved_by: str,
    scope: tuple[str, ...],
    accounts: tuple[str, ...],
    valid_until: str,
    note: str | None,
    actor: str | None,
) -> None:
    """Record a new authorization (a ledger entry)."""
    until = datetime.fromisoformat(_day(valid_until, end=True) or valid_until)
    async with opened(app) as ctx:
        auth_id = await Authorizations(ctx.ledger).grant(
            case_id=case_id,
            warrant=warrant,
            approved_by=approved_by,
            scope=[s for item in scope for s in item.split(",") if s.strip()],
            accounts=[a.strip() for item in accounts for a in item.split(",") if a.strip()],
            valid_until=until,
            actor=_actor(actor),
            note=note,
        )
    click.echo(auth_id)


@auth_group.command("list")
@click.option("--case", "case_id", callback=case_id_param)
@click.option("--active", is_flag=True, help="only unrevoked, unexpired ones")
@actor_option
@pass_app
@async_command
async def auth_list(app: AppContext, case_id: str | None, active: bool, actor: str | None) -> None:
    """Authorizations, oldest first (one JSON object per line)."""
    async with opened(app) as ctx:
        docs = await Authorizations(ctx.ledger).list(case_id=case_id, active_only=active)
        await ctx.audit.record_access(
            actor=_actor(actor),
            role="operator",
            action="auth.list",
            filter={"case": case_id, "active": active or None},
            result_count=len(docs),
            via="cli",
        )
    for doc in docs:
        until = datetime.fromtimestamp(float(doc["valid_until"]), UTC).isoformat()
        line = {k: doc.get(k) for k in ("_id", "case_id", "warrant_ref", "approver", "scope", "accounts", "revoked")}
        click.echo(json.dumps({**line, "valid_until": until}, ensure_ascii=False))


@auth_group.command("revoke")
@click.argument("auth_id")
@click.option("--reason")
@actor_option
@pass_app
@async_command
async def auth_revoke(app: AppContext, auth_id: str, reason: str | None, actor: str | None) -> None:
    """Revoke an authorization (a ledger entry); joins and reads under it stop at once."""
    async with opened(app) as ctx:
        done = await Authorizations(ctx.ledger).revoke(auth_id, actor=_actor(actor), reason=reason)
    if not done:
        raise click.ClickException(f"no active authorization {auth_id}")
    click.echo(f"revoked {auth_id}")


# --- case --------------------------------------------------------------------------------------------
@click.group("case")
def case_group() -> None:
    """Cases: what belongs to an investigation."""


@case_group.command("add")
@click.argument("case_id", callback=case_id_param)
@click.option("--channel", help="channel username, t.me link or key")
@click.option("--message", help="CHANNEL/ID")
@click.option("--note")
@actor_option
@pass_app
@async_command
async def case_add(
    app: AppContext, case_id: str, channel: str | None, message: str | None, note: str | None, actor: str | None
) -> None:
    """Attach a channel (all its captures) or one message to a case (a ledger entry)."""
    if (channel is None) == (message is None):
        raise click.UsageError("give exactly one of --channel NAME or --message CHANNEL/ID")
    async with opened(app) as ctx:
        channels = ChannelRepo(ctx.store)

        async def key_of(name: str) -> str:
            name = name.rstrip("/").rsplit("/", 1)[-1].lstrip("@").lower()
            if name.startswith("id") and name[2:].isdigit():
                return name
            return await channels.resolve(ChannelRef(username=name)) or name

        cases = Cases(ctx.ledger)
        if channel is not None:
            seq = await cases.add(case_id, channel=await key_of(channel), actor=_actor(actor), note=note)
        else:
            assert message is not None
            chan, _, msg_id = message.rstrip("/").rpartition("/")
            if not chan or not msg_id.isdigit():
                raise click.UsageError("--message takes CHANNEL/ID, e.g. durov/123")
            key = f"{await key_of(chan)}/{int(msg_id)}"
            seq = await cases.add(case_id, message=key, actor=_actor(actor), note=note)
    click.echo(f"attached to {case_id} (ledger seq {seq})")


@case_group.group("members")
def members_group() -> None:
    """Who belongs to a case: investigators see, search within and export only their cases."""


@members_group.command("add")
@click.argument("case_id", callback=case_id_param)
@click.option("--token-name", "name", required=True, help="the API/console token name to add")
@actor_option
@pass_app
@async_command
async def members_add(app: AppContext, case_id: str, name: str, actor: str | None) -> None:
    """Add a token name to a case (a ledger entry)."""
    async with opened(app) as ctx:
        added = await CaseMembers(ctx.ledger).add(case_id, name, actor=_actor(actor))
    click.echo(f"{name} {'added to' if added else 'already a member of'} {case_id}")


@members_group.command("remove")
@click.argument("case_id", callback=case_id_param)
@click.option("--token-name", "name", required=True, help="the token name to remove")
@actor_option
@pass_app
@async_command
async def members_remove(app: AppContext, case_id: str, name: str, actor: str | None) -> None:
    """Remove a token name from a case (a ledger entry); its next request sees the change."""
    async with opened(app) as ctx:
        removed = await CaseMembers(ctx.ledger).remove(case_id, name, actor=_actor(actor))
    if not removed:
        raise click.ClickException(f"{name} is not a member of {case_id}")
    click.echo(f"{name} removed from {case_id}")


@members_group.command("list")
@click.argument("case_id", required=False, callback=case_id_param)
@pass_app
@async_command
async def members_list(app: AppContext, case_id: str | None) -> None:
    """Members of CASE (or of every case), one JSON object per line."""
    async with opened(app) as ctx:
        docs = await CaseMembers(ctx.ledger).list(case_id)
    for doc in docs:
        line = {k: doc.get(k) for k in ("case", "member", "added_by", "seq")}
        click.echo(json.dumps({**line, "added_at": str(doc.get("added_at"))}, ensure_ascii=False))


COMMANDS = (evidence_group, auth_group, case_group)
